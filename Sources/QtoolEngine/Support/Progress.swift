/// How an operation reports progress; the CLI draws a bar on a TTY, the server will publish
/// job progress, tests record the calls.
public protocol ProgressReporter: Sendable {
  /// A new phase: `total` units (nil when unknown) of `unit`.
  func begin(_ label: String, total: Int?, unit: ProgressUnit)
  /// `done` units of the current phase are complete.
  func update(done: Int)
  func finish()
}

public enum ProgressUnit: String, Sendable {
  case items, bytes, bars, pages, files
}

/// Reports nothing.
public struct SilentProgress: ProgressReporter {
  public init() {}
  public func begin(_ label: String, total: Int?, unit: ProgressUnit) {}
  public func update(done: Int) {}
  public func finish() {}
}
