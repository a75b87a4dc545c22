import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A `qtool` process running in the background, its stderr collected as it comes, so a test
/// can wait for a line (e.g. `qtool-test: paused at import.store:0`), signal it, and wait.
final class BackgroundQtool: @unchecked Sendable {
  let process = Process()
  /// Bytes read from a pipe so far; the pipe's handler holds it, so it outlives this object.
  final class Buffer: Sendable {
    let data = Mutex(Data())
    var text: String { String(decoding: data.withLock { $0 }, as: UTF8.self) }
    func collect(_ handle: FileHandle) {
      let chunk = handle.availableData
      if chunk.isEmpty { handle.readabilityHandler = nil } else { data.withLock { $0.append(chunk) } }
    }
  }
  private let errors = Buffer()
  private let output = Buffer()

  init(_ qtool: QtoolProcess, _ arguments: [String], environment extra: [String: String] = [:]) throws {
    process.executableURL = QtoolProcess.binary
    process.arguments = arguments
    process.environment = qtool.environment(extra)
    let err = Pipe()
    let out = Pipe()
    process.standardError = err
    process.standardOutput = out
    err.fileHandleForReading.readabilityHandler = { [errors] in errors.collect($0) }
    out.fileHandleForReading.readabilityHandler = { [output] in output.collect($0) }
    try process.run()
  }

  var pid: Int32 { process.processIdentifier }
  var stderr: String { errors.text }
  var stdout: String { output.text }

  /// Waits until stderr contains `text` (false after `timeout` seconds or if the process ended).
  @discardableResult
  func waitForStderr(_ text: String, timeout: Double = 60) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
      if stderr.contains(text) { return true }
      if !process.isRunning { return stderr.contains(text) }
      usleep(10_000)
    }
    return false
  }

  func signal(_ number: Int32) { kill(process.processIdentifier, number) }

  /// Waits for the process to end; its exit status.
  func wait() -> Int32 {
    process.waitUntilExit()
    // Let the readability handlers drain what is left in the pipes.
    usleep(50_000)
    return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
  }
}

/// The `{"error": …}` object a failing command prints on stderr with `--json`.
func errorObject(_ stderr: String) throws -> [String: Any] {
  let line = try #require(stderr.split(separator: "\n").last { $0.hasPrefix("{\"error\"") }, "no JSON error in: \(stderr)")
  let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
  return object["error"] as! [String: Any]
}

func jsonArray(_ text: String) throws -> [[String: Any]] {
  try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [[String: Any]]
}

func jsonObject(_ text: String) throws -> [String: Any] {
  try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
}

/// A JSON value as compact text with sorted keys (slashes unescaped), to compare with a literal.
func jsonText(_ value: Any?) -> String? {
  guard let value, JSONSerialization.isValidJSONObject(value) else { return nil }
  guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
  return String(decoding: data, as: UTF8.self)
}
