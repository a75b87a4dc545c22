import Foundation
#if canImport(Glibc)
  import Glibc
#endif
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

  /// `path` opened for appending, created if missing (73 if it cannot be). Only a regular file:
  /// a symlink there would have the runner append to whatever it names, and a FIFO would block
  /// the open until a reader came — `strategy start` and `serve` hung, deaf to SIGTERM.
  public static func open(_ path: String) throws -> Int32 {
    func refuse(_ what: String) -> OperationError {
      .cannotWrite("the runner log \(path) is \(what), not a regular file; remove it, or runner logs cannot be written", path: path)
    }
    // O_NOFOLLOW refuses a symlink (ELOOP); O_NONBLOCK makes a FIFO without a reader fail
    // (ENXIO) instead of waiting; one with a reader opens and fstat refuses it.
    let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0o644)
    guard descriptor >= 0 else {
      switch errno {
      case ELOOP: throw refuse("a symbolic link")
      case ENXIO: throw refuse("a FIFO")
      case EISDIR: throw refuse("a directory")
      default: throw OperationError.cannotWrite("cannot open the runner log \(path): \(String(cString: strerror(errno)))", path: path)
      }
    }
    var status = stat()
    guard fstat(descriptor, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      close(descriptor)
      throw refuse("something else")
    }
    _ = fcntl(descriptor, F_SETFL, O_APPEND)
    return descriptor
  }

  /// A logger writing to `path` (appended) and to `alongside`'s handler: a hosted runner's.
  public static func logger(appendingTo path: String, alongside: Logger) throws -> Logger {
    let descriptor = try open(path)
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

  func log(event: LogEvent) {
    let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
    let fields = merged.isEmpty ? "" : " " + merged.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    file.append(
      "\(UTCCalendar.format(Int64(Date().timeIntervalSince1970 * 1000), alwaysTime: true)) \(event.level) \(label) :\(fields) [\(event.source)] \(event.message)")
  }
}
