import Foundation
import QtoolCore

#if canImport(Glibc)
  import Glibc
#endif

/// A file written under a temporary name in its target directory and renamed into place when
/// complete, so a half-written file never appears under its name. Every write is checked (a
/// full disk is an error, not a short file); the temporary name is unique across processes,
/// hosts and containers (`.NAME.RANDOM.qtool-partial`), is removed if the process is
/// interrupted, and ones left by a crash more than a day ago are swept on the next write there.
///
/// ```swift
/// let file = try AtomicFile(path: "report.html", overwrite: false)
/// try file.write(Data(html.utf8))
/// try file.commit()
/// ```
public final class AtomicFile {
  public let path: String
  public let temporary: String
  private var descriptor: Int32

  /// Opens the temporary file; throws `exists` when `path` exists and `overwrite` is false.
  public init(path: String, overwrite: Bool) throws {
    self.path = path
    try Self.checkReplaceable(path, overwrite: overwrite)
    let url = URL(fileURLWithPath: path)
    let directory = url.deletingLastPathComponent().path
    var random = SystemRandomNumberGenerator()
    temporary = directory + "/." + url.lastPathComponent + "." + String(random.next(), radix: 36) + ".qtool-partial"
    Self.sweep(directory: directory, name: url.lastPathComponent)
    descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw AtomicFileError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
    TemporaryFiles.register(temporary)
  }

  deinit { abandon() }

  public func write(_ data: Data) throws {
    try data.withUnsafeBytes { try write($0) }
  }

  public func write(_ text: String) throws {
    var text = text
    try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
  }

  public func write(_ bytes: UnsafeRawBufferPointer) throws {
    var offset = 0
    while offset < bytes.count {
      let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
      if written < 0 {
        if errno == EINTR { continue }
        let reason = String(cString: strerror(errno))
        abandon()
        throw AtomicFileError.cannotWrite(path: path, reason: reason)
      }
      offset += written
    }
  }

  /// Flushes the file to disk and renames it into place.
  public func commit() throws {
    guard descriptor >= 0 else { throw AtomicFileError.cannotWrite(path: path, reason: "already closed") }
    let failed = fsync(descriptor) != 0 || close(descriptor) != 0
    let reason = String(cString: strerror(errno))
    descriptor = -1
    guard !failed else {
      abandon()
      throw AtomicFileError.cannotWrite(path: path, reason: reason)
    }
    guard rename(temporary, path) == 0 else {
      let reason = String(cString: strerror(errno))
      abandon()
      throw AtomicFileError.cannotWrite(path: path, reason: reason)
    }
    TemporaryFiles.unregister(temporary)
  }

  /// Removes the temporary file (when not committed).
  public func abandon() {
    if descriptor >= 0 {
      close(descriptor)
      descriptor = -1
    }
    if TemporaryFiles.isRegistered(temporary) {
      unlink(temporary)
      TemporaryFiles.unregister(temporary)
    }
  }

  /// Writes `data` to `path` atomically.
  public static func write(_ data: Data, to path: String, overwrite: Bool) throws {
    let file = try AtomicFile(path: path, overwrite: overwrite)
    try file.write(data)
    try file.commit()
  }

  /// A unique temporary name for `path` for writers that open files themselves (SQLite's
  /// backup, libarchive), registered for removal on Ctrl-C.
  /// What every writer that renames a finished file into place checks first: `path` is absent,
  /// or a regular file and `overwrite` is set. The rename would replace a device (/dev/null), a
  /// FIFO a reader waits on, a directory or a symbolic link rather than write into it, so those
  /// are refused even with --force.
  public static func checkReplaceable(_ path: String, overwrite: Bool) throws {
    var status = stat()
    guard lstat(path, &status) == 0 else { return }
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw AtomicFileError.cannotWrite(
        path: path,
        reason: "it is not a regular file (a device, FIFO, directory or symbolic link) and would be replaced, not written; write to - and redirect instead")
    }
    if !overwrite { throw AtomicFileError.exists(path: path) }
  }

  public static func temporaryPath(for path: String) -> String {
    let url = URL(fileURLWithPath: path)
    var random = SystemRandomNumberGenerator()
    sweep(directory: url.deletingLastPathComponent().path, name: url.lastPathComponent)
    return url.deletingLastPathComponent().path + "/." + url.lastPathComponent + "." + String(random.next(), radix: 36) + ".qtool-partial"
  }

  /// Removes temporary files of `name` left in `directory` by a process that died more than a day ago.
  static func sweep(directory: String, name: String) {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
    let prefix = "." + name + "."
    let dayAgo = Date().addingTimeInterval(-86_400)
    for entry in entries where entry.hasPrefix(prefix) && entry.hasSuffix(".qtool-partial") {
      let full = directory + "/" + entry
      if let modified = (try? FileManager.default.attributesOfItem(atPath: full))?[.modificationDate] as? Date, modified < dayAgo {
        unlink(full)
      }
    }
  }
}

public enum AtomicFileError: QtoolError, Equatable {
  case exists(path: String)
  case cannotWrite(path: String, reason: String)

  public var category: ErrorCategory {
    switch self {
    case .exists: return .alreadyExists
    case .cannotWrite: return .cannotWrite
    }
  }
  public var code: String {
    switch self {
    case .exists: return "file_exists"
    case .cannotWrite: return "cannot_write"
    }
  }
  public var message: String {
    switch self {
    case .exists(let path): return "\(path) exists"
    case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .exists(let path), .cannotWrite(let path, _): return ["path": .string(path)]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .exists: return "replace it with {force}, or choose another path"
    case .cannotWrite: return nil
    }
  }
}
