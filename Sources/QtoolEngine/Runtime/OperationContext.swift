import Foundation
import Logging
import QtoolCore
import QtoolStore

/// What every operation is handed: the store, the clock it reads time from, the token that
/// cancels it, where its progress goes, a logger, and the leases of the store. No operation
/// reads the system clock or installs signal handlers itself; the CLI, the server and tests
/// each build the context they need.
///
/// ```swift
/// let context = OperationContext(database: try QtoolDatabase.open(path: path))
/// let report = try DataOperations(context).importFiles(request)
/// ```
public struct OperationContext: Sendable {
  public var database: QtoolDatabase
  public var clock: any WallClock
  public var cancellation: CancellationToken
  public var progress: ProgressTracker
  public var logger: Logger
  public var leases: LeaseManager
  /// The job the operation runs as, once the job runner has made one.
  public var jobID: String?
  /// Called with a job's id as soon as its row exists (the server answers 202 with it).
  public var onJobStart: (@Sendable (String) -> Void)?
  public var hooks: OperationHooks

  public init(
    database: QtoolDatabase, clock: any WallClock = SystemClock(), cancellation: CancellationToken = CancellationToken(),
    progress: any ProgressSink = SilentProgress(), logger: Logger = Logger(label: "qtool"), hooks: OperationHooks = OperationHooks()
  ) {
    self.database = database
    self.clock = clock
    self.cancellation = cancellation
    self.progress = ProgressTracker(sink: progress, clock: clock)
    self.logger = logger
    self.leases = LeaseManager(for: database)
    self.hooks = hooks
  }

  /// The same context reporting progress to `sink` as well.
  func reporting(also sink: any ProgressSink) -> OperationContext {
    var copy = self
    copy.progress = ProgressTracker(sink: ProgressFanOut([progress.sink, sink]), clock: clock)
    return copy
  }

  /// This process as a lease holder, for `purpose`.
  func holder(_ purpose: String) -> LeaseHolder {
    LeaseHolder.current(jobID: jobID, purpose: purpose, at: clock.now())
  }
}

/// Points where a test can stop an operation deterministically: the operation calls
/// `checkpoint(name, index)` at block boundaries; a configured pause (`name` at `index`, from
/// the `QTOOL_TEST_PAUSE=name:index` environment variable in the CLI) announces itself on
/// stderr and holds the operation there until it is cancelled. Nothing else uses it.
public struct OperationHooks: Sendable {
  public var pause: (name: String, index: Int)?
  public var announce: (@Sendable (String) -> Void)?

  public init(pause: (name: String, index: Int)? = nil, announce: (@Sendable (String) -> Void)? = nil) {
    self.pause = pause
    self.announce = announce
  }

  /// Parses `name:index`.
  public init(environment value: String?, announce: @escaping @Sendable (String) -> Void) {
    self.announce = announce
    guard let value, let colon = value.lastIndex(of: ":"), let index = Int(value[value.index(after: colon)...]) else { return }
    pause = (String(value[..<colon]), index)
  }

  public func checkpoint(_ name: String, _ index: Int, cancellation: CancellationToken) throws {
    guard let pause, pause.name == name, pause.index == index else { return }
    announce?("paused at \(name):\(index)")
    while !cancellation.isCancelled { usleep(5_000) }
    try cancellation.check()
  }
}
