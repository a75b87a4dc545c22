import Foundation
import Logging
import QtoolCore

/// Where a runner that is not in a terminal logs: `$QTOOL_HOME/logs/NAME.log`, every run of the
/// strategy appended. `strategy start` points its detached child's stderr there; `qtool serve`
/// writes its hosted runners' log lines there (and to its own log), so `strategy logs NAME` and
/// `GET /strategies/{name}/logs` read the same file whichever process ran the strategy.
public enum RunnerLog {
  /// The log file of `strategy`, its directory created. 73 when it cannot be.
  public static func path(strategy: String, settings: Settings) throws -> String {
    let directory = URL(fileURLWithPath: settings.home).appendingPathComponent("logs").path
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw OperationError.cannotWrite("cannot create the log directory \(directory)", path: directory)
    }
    return directory + "/\(strategy).log"
  }

  /// A logger writing to `path` (appended) and to `alongside`'s handler: a hosted runner's.
  public static func logger(appendingTo path: String, alongside: Logger) throws -> Logger {
    let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      throw OperationError.cannotWrite("cannot open the runner log \(path): \(String(cString: strerror(errno)))", path: path)
    }
    let file = FileLogHandler(file: LogFile(descriptor: descriptor), label: alongside.label)
    // Each handler keeps its level: the file has a runner's info lines even when the server
    // logs only warnings.
    return Logger(label: alongside.label) { _ in MultiplexLogHandler([alongside.handler, file]) }
  }
}

/// An open log file, closed when the last handler holding it goes.
final class LogFile: Sendable {
  let descriptor: Int32
  init(descriptor: Int32) { self.descriptor = descriptor }
  deinit { close(descriptor) }

  /// One `write` per line on an O_APPEND descriptor: lines of two writers never interleave.
  func append(_ line: String) {
    var bytes = Array(line.utf8)
    bytes.append(UInt8(ascii: "\n"))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
  }
}

/// The lines `StreamLogHandler` writes to stderr for a detached runner, to a file: a log read
/// by `strategy logs` looks the same whoever hosted the runner.
struct FileLogHandler: LogHandler {
  let file: LogFile
  let label: String
  var logLevel: Logger.Level = .info
  var metadata: Logger.Metadata = [:]

  init(file: LogFile, label: String) {
    self.file = file
    self.label = label
  }

  subscript(metadataKey key: String) -> Logger.Metadata.Value? {
    get { metadata[key] }
    set { metadata[key] = newValue }
  }

  func log(
    level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String, file _: String, function _: String,
    line _: UInt
  ) {
    let merged = metadata.merging(explicit ?? [:]) { _, new in new }
    let fields = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    file.append("\(UTCCalendar.format(Int64(Date().timeIntervalSince1970 * 1000), alwaysTime: true)) \(level) \(label) :\(fields) [\(source)] \(message)")
  }
}
