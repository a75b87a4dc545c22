import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// `-` as a file argument means standard input (a file read) or standard output (a file
/// written), as in every Unix tool: `qtool strategy validate - < spec.yaml`,
/// `qtool backtest run s.yaml --report - > r.html`, `cat GOOG.csv | qtool data import - …`.
/// Once a written file has taken stdout, the command's other results go to stderr (nowhere with
/// --quiet), so stdout holds that file alone.
enum FileArgument {
  static func isStandard(_ path: String) -> Bool { path == "-" }

  /// Standard input was closed when qtool started (`<&-`).
  nonisolated(unsafe) private(set) static var standardInputWasClosed = false

  /// Run first in main, before anything opens a file: a closed descriptor 0, 1 or 2 would be
  /// taken by the next file opened (the store, an epoll descriptor), and reading "standard
  /// input" or printing results would then read or write that. Each is pointed at /dev/null
  /// opened the other way round, so reading stdin or writing stdout still fails with EBADF
  /// as on the closed descriptor (`qtool data list >&-` exits 74).
  static func reserveStandardDescriptors() {
    for descriptor: Int32 in 0...2 where fcntl(descriptor, F_GETFD) == -1 && errno == EBADF {
      if descriptor == 0 { standardInputWasClosed = true }
      let null = open("/dev/null", descriptor == 0 ? O_WRONLY : O_RDONLY)
      if null >= 0, null != descriptor {
        dup2(null, descriptor)
        close(null)
      }
    }
  }

  /// Standard input in pieces as they arrive. Ctrl-C stops the wait (a terminal waiting for
  /// Ctrl-D, a pipe that never closes); a closed or unreadable standard input is an error, not
  /// a crash.
  static func readStandardInput(_ body: (Data) throws -> Void) throws {
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    func failure(_ number: Int32) -> OperationError {
      OperationError(
        .notFound, code: "stdin_unreadable", "cannot read standard input: \(String(cString: strerror(number)))",
        hint: "pipe the file in (`… | qtool …`), or give its path instead of -")
    }
    if standardInputWasClosed { throw failure(EBADF) }
    while true {
      try Signals.cancellation.check()
      var descriptor = pollfd(fd: 0, events: Int16(POLLIN), revents: 0)
      let ready = poll(&descriptor, 1, 100)
      if ready < 0 {
        if errno == EINTR { continue }
        throw failure(errno)
      }
      if ready == 0 { continue }
      if descriptor.revents & Int16(POLLNVAL) != 0 { throw failure(EBADF) }
      let count = read(0, &buffer, buffer.count)
      if count == 0 { return }
      if count < 0 {
        if errno == EINTR || errno == EAGAIN { continue }
        throw failure(errno)
      }
      try body(Data(buffer[0..<count]))
    }
  }

  /// All of standard input (a spec, a pipeline: small files).
  static func readStandardInput() throws -> Data {
    var data = Data()
    try readStandardInput { data.append($0) }
    return data
  }

  /// A file's text, or standard input's for `-`; nil when it cannot be read as UTF-8.
  static func readText(_ path: String) throws -> String? {
    if isStandard(path) { return String(data: try readStandardInput(), encoding: .utf8) }
    return try? String(contentsOfFile: path, encoding: .utf8)
  }

  /// Writes `data` to `path` atomically (refusing to replace a file unless `overwrite`), or to
  /// standard output for `-`. True when it went to a file.
  @discardableResult
  static func write(_ data: Data, to path: String, overwrite: Bool, context: CommandContext) throws -> Bool {
    if isStandard(path) {
      context.claimStdout().write(data)
      return false
    }
    try AtomicFile.write(data, to: path, overwrite: overwrite)
    return true
  }

  /// Runs `write` with the path to write: `path` itself, or for `-` a temporary file (for
  /// writers that need a path: SQLite's backup, an archive) whose bytes then go to standard
  /// output and which is removed afterwards, also on Ctrl-C.
  static func writingThroughFile<T>(_ path: String, suffix: String, context: CommandContext, _ write: (String) throws -> T) throws -> T {
    guard isStandard(path) else { return try write(path) }
    let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-\(getpid())-\(UUID().uuidString).\(suffix)").path
    TemporaryFiles.register(temporary)
    defer {
      try? FileManager.default.removeItem(atPath: temporary)
      TemporaryFiles.unregister(temporary)
    }
    let result = try write(temporary)
    let stdout = context.claimStdout()
    // In pieces: a store copy can be larger than memory would like.
    guard let handle = FileHandle(forReadingAtPath: temporary) else {
      throw OperationError.cannotWrite("cannot read back \(temporary)", path: temporary)
    }
    defer { try? handle.close() }
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { stdout.write(chunk) }
    return result
  }

  /// Standard input copied to a temporary file piece by piece (memory stays bounded however
  /// much is piped in), for readers that need a path; its name ends in what the bytes are
  /// (`.gz`, `.zip`, else `.csv`) so format detection works as for a file.
  static func standardInputAsFile() throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-stdin-\(getpid())-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let partial = directory.appendingPathComponent("stdin.partial")
    FileManager.default.createFile(atPath: partial.path, contents: nil)
    guard let handle = FileHandle(forWritingAtPath: partial.path) else {
      throw OperationError.cannotWrite("cannot write \(partial.path)", path: partial.path)
    }
    var head = Data()
    TemporaryFiles.register(partial.path)
    defer { TemporaryFiles.unregister(partial.path) }
    do {
      defer { try? handle.close() }
      try readStandardInput { chunk in
        if head.count < 4 { head.append(chunk.prefix(4 - head.count)) }
        try handle.write(contentsOf: chunk)
      }
    } catch {
      // Interrupted or unreadable: the caller never learns the directory, so remove it here.
      try? FileManager.default.removeItem(at: directory)
      throw error
    }
    let bytes = [UInt8](head)
    let suffix = bytes.starts(with: [0x1f, 0x8b]) ? "csv.gz" : bytes.starts(with: [0x50, 0x4b]) ? "zip" : "csv"
    let file = directory.appendingPathComponent("stdin.\(suffix)")
    try FileManager.default.moveItem(at: partial, to: file)
    return file
  }

}

extension OutputStream {
  /// Bytes as they are (a .tar.gz, a report), with the same closed-pipe and error handling.
  func write(_ data: Data) {
    // Text and binary go through the same path: write(_ text:) takes a String, so write the
    // bytes in UTF-8-independent chunks with write(2) here.
    data.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in
      guard let base = buffer.baseAddress else { return }
      var offset = 0
      while offset < buffer.count {
        let written = Glibc.write(fd, base + offset, buffer.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          if errno == EPIPE { _exit(0) }
          let message = "qtool: error: cannot write to standard output: \(String(cString: strerror(errno)))\n"
          _ = message.withCString { Glibc.write(2, $0, strlen($0)) }
          _exit(ExitStatus.ioError.rawValue)
        }
        offset += written
      }
    }
  }
}
