import Foundation
import QtoolCore
import QtoolStore

/// A job as `jobs list|show` and the API return it: JSON columns as nested objects.
public struct JobInfo: Codable, Sendable, Equatable {
  public var id: String
  public var kind: String
  public var status: JobStatus
  public var request: JSONValue
  public var progress: ProgressEvent?
  public var pid: Int?
  public var host: String?
  public var createdAt: String
  public var startedAt: String?
  public var finishedAt: String?
  public var heartbeatAt: String?
  public var cancelRequested: Bool
  public var error: ErrorReport?
  /// What the job made: `{"run_id": …}`, `{"dataset": …}`, `{"grid_id": …}`.
  public var result: [String: JSONValue]?
  /// Seconds from start to finish, or to now while running.
  public var seconds: Double?

  enum CodingKeys: String, CodingKey {
    case id, kind, status, request, progress, pid, host, createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
    case heartbeatAt = "heartbeat_at", cancelRequested = "cancel_requested", error, result, seconds
  }

  /// Every key always present (null when not known yet): one shape for scripts.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(id, forKey: .id)
    try container.encode(kind, forKey: .kind)
    try container.encode(status, forKey: .status)
    try container.encode(request, forKey: .request)
    try container.encode(progress, forKey: .progress)
    try container.encode(pid, forKey: .pid)
    try container.encode(host, forKey: .host)
    try container.encode(createdAt, forKey: .createdAt)
    try container.encode(startedAt, forKey: .startedAt)
    try container.encode(finishedAt, forKey: .finishedAt)
    try container.encode(heartbeatAt, forKey: .heartbeatAt)
    try container.encode(cancelRequested, forKey: .cancelRequested)
    try container.encode(error, forKey: .error)
    try container.encode(result, forKey: .result)
    try container.encode(seconds, forKey: .seconds)
  }

  init(_ record: JobRecord, now: Int64) {
    let decoder = JSONDecoder()
    id = record.id
    kind = record.kind
    status = JobStatus(rawValue: record.status) ?? .failed
    request = (try? decoder.decode(JSONValue.self, from: Data(record.request.utf8))) ?? .string(record.request)
    progress = record.progress.flatMap { try? decoder.decode(ProgressEvent.self, from: Data($0.utf8)) }
    pid = record.pid
    host = record.host
    createdAt = UTCCalendar.format(record.createdAt, alwaysTime: true)
    startedAt = record.startedAt.map { UTCCalendar.format($0, alwaysTime: true) }
    finishedAt = record.finishedAt.map { UTCCalendar.format($0, alwaysTime: true) }
    heartbeatAt = record.heartbeatAt.map { UTCCalendar.format($0, alwaysTime: true) }
    cancelRequested = record.cancelRequestedAt != nil
    error = record.error.flatMap { try? decoder.decode(ErrorReport.self, from: Data($0.utf8)) }
    result = record.result.flatMap { try? decoder.decode([String: JSONValue].self, from: Data($0.utf8)) }
    seconds = record.startedAt.map { Double((record.finishedAt ?? now) - $0) / 1000 }
  }
}

/// `qtool jobs …` and the API's job routes.
public struct JobOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  private var database: QtoolDatabase { context.database }

  /// Jobs newest first. Active jobs of this host whose process is gone are marked interrupted first.
  public func list(_ filter: JobFilter) throws -> [JobInfo] {
    let gone = reconcileQuietly()
    let now = context.clock.now()
    return try database.jobs(filter).map { gone[$0.id] ?? JobInfo($0, now: now) }
  }

  public func show(id: String) throws -> JobInfo {
    let gone = reconcileQuietly()
    let record = try database.job(id: id)
    return gone[record.id] ?? JobInfo(record, now: context.clock.now())
  }

  /// Asks a running job to stop: at once through the file its process watches, and in its row.
  /// Returns the job as it is then (still running until its process has stopped).
  public func cancel(id: String) throws -> JobInfo {
    let record = try database.job(id: id)
    guard record.isActive else { return try show(id: record.id) }
    let file = JobRunner.cancelFile(record.id, leases: context.leases)
    try? FileManager.default.createDirectory(atPath: context.leases.directory, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: file, contents: Data())
    try database.requestJobCancel(id: record.id, at: context.clock.now())
    return try show(id: record.id)
  }

  /// Waits until the job has finished (or `timeoutMilliseconds` passed: the job as it is then).
  public func wait(id: String, timeoutMilliseconds: Int64?) throws -> JobInfo {
    let record = try database.job(id: id)
    let deadline = timeoutMilliseconds.map { context.clock.now() + $0 }
    while true {
      let info = try show(id: record.id)
      if info.status.isFinished { return info }
      if let deadline, context.clock.now() >= deadline { return info }
      try context.clock.sleep(milliseconds: 100, cancellation: context.cancellation)
    }
  }

  /// Deletes finished jobs older than `age` milliseconds; returns how many went.
  public func prune(olderThan age: Int64) throws -> Int {
    try reconcile()
    return try database.pruneJobs(finishedBefore: context.clock.now() - age)
  }

  /// `reconcile` for readers: the jobs found gone are reported as interrupted even when the
  /// store cannot be written (a read-only open); writing the mark is left to a writer then.
  @discardableResult
  func reconcileQuietly() -> [String: JobInfo] {
    var gone: [String: JobInfo] = [:]
    do {
      try reconcile { record in gone[record.id] = JobInfo(record, now: context.clock.now()) }
    } catch {
      context.logger.info("jobs not reconciled: \(error)")
    }
    return gone
  }

  /// Marks interrupted the active jobs of this host whose lease is free: the kernel freed it,
  /// so the process that ran them is gone. Jobs of other hosts are left as their rows say.
  /// `found` gets each such job as marked, before the mark is written (a read-only store keeps
  /// its rows as they are).
  func reconcile(found: (JobRecord) -> Void = { _ in }) throws {
    for job in try database.activeJobs() where job.host == ProcessIdentity.host {
      guard context.leases.state(of: LeaseManager.jobKey(job.id)) == .free else { continue }
      // The lease may have been released by a job that finished a moment ago: read it again.
      guard try database.job(id: job.id).isActive else { continue }
      let report = ErrorReport(
        code: "process_gone", category: .failure,
        message: "the process running it (pid \(job.pid.map(String.init) ?? "?") on \(job.host ?? "?")) ended without finishing it",
        details: ["pid": job.pid.map { JSONValue($0) } ?? .null, "host": JSONValue(job.host)])
      let json = String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)
      var marked = job
      marked.status = JobStatus.interrupted.rawValue
      marked.error = json
      marked.finishedAt = marked.finishedAt ?? context.clock.now()
      found(marked)
      guard !database.isReadOnly else { continue }
      try database.markJobInterrupted(id: job.id, error: json, at: context.clock.now())
      context.leases.removeFile(of: LeaseManager.jobKey(job.id))
      unlink(JobRunner.cancelFile(job.id, leases: context.leases))
    }
  }
}

extension JobStatus {
  /// The exit code a script waiting for a job sees.
  public func exitStatus(error: ErrorReport?) -> ExitStatus {
    switch self {
    case .completed: return .success
    case .queued, .running: return .temporaryFailure
    case .cancelled: return error?.category.exitStatus ?? .interrupted
    case .interrupted: return .failure
    case .failed: return error?.category.exitStatus ?? .failure
    }
  }
}
