import Dispatch
import Foundation
import QtoolCore
import QtoolStore
import Synchronization

/// The kinds of long operation that run as jobs.
public enum JobKind: String, Codable, Sendable, CaseIterable {
  case download, `import`, preprocess, backtest, grid, walkForward = "walk_forward", train
}

/// Runs an operation as a job: a row in `jobs` from the moment it starts (kind, request, pid,
/// host), a lease that says the process is alive, progress written to the row as it goes,
/// cancellation requested from elsewhere (`qtool jobs cancel`, the API) turned into a
/// cancelled token, and the outcome — result link, structured error, cancelled — at the end.
enum JobRunner {
  /// How often a running job looks for a cancel request, and writes its progress at most.
  static let cancelPollMilliseconds = 100
  static let progressWriteMilliseconds = 500

  /// - parameter failure: for operations that return a report even when part of them failed
  ///   (a download with failed symbols): the error that makes the job `failed`.
  static func run<Request: Encodable, Result>(
    _ kind: JobKind, request: Request, context: OperationContext, link: (Result) -> [String: JSONValue],
    failure: (Result) -> (any QtoolError)? = { _ in nil }, _ body: (OperationContext) throws -> Result
  ) throws -> Result {
    let database = context.database
    let id = "j" + randomHex(10)
    let jobLease = try context.leases.acquire(
      LeaseManager.jobKey(id), holder: LeaseHolder.current(jobID: id, purpose: kind.rawValue, at: context.clock.now()), wait: false)
    defer {
      // The row says the job ended before its lease goes, so no reader takes it for dead.
      context.leases.removeFile(of: LeaseManager.jobKey(id))
      jobLease.release()
      unlink(cancelFile(id, leases: context.leases))
    }
    let requestJSON = String(decoding: try JSONCoding.encoder.encode(request), as: UTF8.self)
    try database.insertJob(id: id, kind: kind.rawValue, request: requestJSON, pid: Int(getpid()), host: ProcessIdentity.host, at: context.clock.now())
    context.onJobStart?(id)

    var jobContext = context
    jobContext.jobID = id
    let writer = JobProgressWriter(id: id, database: database, clock: context.clock)
    jobContext = jobContext.reporting(also: writer)
    let watcher = CancelWatcher(id: id, context: context)
    watcher.start()

    let outcome: Swift.Result<Result, any Error> = Swift.Result { try body(jobContext) }
    watcher.stop()
    let progress = writer.latestJSON()
    let finished = context.clock.now()
    do {
      switch outcome {
      case .success(let result):
        let linkJSON = String(decoding: try JSONCoding.encoder.encode(link(result)), as: UTF8.self)
        let errorJSON = try failure(result).map { String(decoding: try JSONCoding.encoder.encode($0.report), as: UTF8.self) }
        try database.finishJob(
          id: id, status: errorJSON == nil ? .completed : .failed, error: errorJSON, result: linkJSON, progress: progress, at: finished)
      case .failure(let error):
        let report = (error as? any QtoolError)?.report ?? ErrorReport(code: "internal", category: .internal, message: "\(error)")
        let status: JobStatus = error is OperationCancelled ? .cancelled : .failed
        let errorJSON = String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)
        try database.finishJob(id: id, status: status, error: errorJSON, result: nil, progress: progress, at: finished)
      }
    } catch {
      // The outcome stands; a reader will find the lease free and mark the job interrupted.
      context.logger.warning("could not record the end of job \(id): \(error)")
    }
    return try outcome.get()
  }

  static func cancelFile(_ id: String, leases: LeaseManager) -> String {
    leases.path(LeaseManager.jobKey(id)) + ".cancel"
  }

  static func randomHex(_ count: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in "0123456789abcdef".randomElement(using: &generator)! })
  }
}

/// Writes a job's latest progress to its row at most every half second, off the operation's
/// thread; a write that finds the store busy is dropped (the next one carries the news).
final class JobProgressWriter: ProgressSink {
  private struct State {
    var latest: ProgressEvent?
    var lastWritten: Int64 = 0
    var scheduled = false
  }
  private let id: String
  private let database: QtoolDatabase
  private let clock: any WallClock
  private let state = Mutex(State())
  private static let queue = DispatchQueue(label: "qtool.job-progress")

  init(id: String, database: QtoolDatabase, clock: any WallClock) {
    self.id = id
    self.database = database
    self.clock = clock
  }

  func emit(_ event: ProgressEvent) {
    let now = clock.now()
    let schedule = state.withLock { state -> Bool in
      state.latest = event
      guard !state.scheduled, now - state.lastWritten >= Int64(JobRunner.progressWriteMilliseconds) || event.finished else { return false }
      state.scheduled = true
      return true
    }
    guard schedule else { return }
    Self.queue.async { [self] in
      let json = latestJSON()
      try? database.updateJobProgress(id: id, progress: json, at: clock.now())
      state.withLock {
        $0.lastWritten = clock.now()
        $0.scheduled = false
      }
    }
  }

  func latestJSON() -> String? {
    guard let event = state.withLock({ $0.latest }) else { return nil }
    return (try? JSONCoding.encoder.encode(event)).map { String(decoding: $0, as: UTF8.self) }
  }
}

/// Watches for a request to cancel a job made by another process or thread: the cancel file
/// beside the job's lease (instant, needs no write to the store) and the row's
/// `cancel_requested_at` (set by `jobs cancel` and the API).
final class CancelWatcher: @unchecked Sendable {
  private let id: String
  private let context: OperationContext
  private let timer: any DispatchSourceTimer
  private let ticks = Atomic<Int>(0)

  init(id: String, context: OperationContext) {
    self.id = id
    self.context = context
    timer = DispatchSource.makeTimerSource(queue: .global())
  }

  func start() {
    let file = JobRunner.cancelFile(id, leases: context.leases)
    let (id, database, token) = (id, context.database, context.cancellation)
    timer.schedule(deadline: .now(), repeating: .milliseconds(JobRunner.cancelPollMilliseconds))
    timer.setEventHandler { [self] in
      let tick = ticks.add(1, ordering: .relaxed).newValue
      if access(file, F_OK) == 0 {
        token.cancel(.requested)
      } else if tick % 5 == 0, (try? database.jobCancelRequested(id: id)) == true {
        token.cancel(.requested)
      }
    }
    timer.resume()
  }

  func stop() { timer.cancel() }
}

/// The one JSON encoder for stored JSON: sorted keys, so equal values give equal text.
enum JSONCoding {
  static let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // A request is recorded as given, even one a check will refuse.
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return encoder
  }()
}
