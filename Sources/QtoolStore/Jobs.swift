import Foundation
import GRDB
import QtoolCore

/// A job as stored: JSON columns stay text here; the engine decodes them.
public struct JobRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var kind: String
  public var request: String
  public var status: String
  public var progress: String?
  public var pid: Int?
  public var host: String?
  public var createdAt: Int64
  public var startedAt: Int64?
  public var finishedAt: Int64?
  public var heartbeatAt: Int64?
  public var cancelRequestedAt: Int64?
  public var error: String?
  public var result: String?

  enum CodingKeys: String, CodingKey {
    case id, kind, request, status, progress, pid, host, createdAt = "created_at", startedAt = "started_at", finishedAt = "finished_at"
    case heartbeatAt = "heartbeat_at", cancelRequestedAt = "cancel_requested_at", error, result
  }

  /// Still queued or running, as far as the row says.
  public var isActive: Bool { status == "queued" || status == "running" }
}

/// The statuses a job can have.
public enum JobStatus: String, Codable, Sendable, CaseIterable {
  case queued, running, completed, failed, cancelled, interrupted

  public var isFinished: Bool { self != .queued && self != .running }
}

public enum JobError: QtoolError, Equatable {
  case notFound(String)
  case ambiguous(String, candidates: [String])

  public var category: ErrorCategory {
    switch self {
    case .notFound: return .notFound
    case .ambiguous: return .usage
    }
  }
  public var code: String {
    switch self {
    case .notFound: return "job_not_found"
    case .ambiguous: return "job_id_ambiguous"
    }
  }
  public var message: String {
    switch self {
    case .notFound(let id): return "no job '\(id)'"
    case .ambiguous(let id, let candidates): return "'\(id)' matches \(candidates.count) jobs: \(candidates.prefix(5).joined(separator: ", "))"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .notFound(let id): return ["job": .string(id)]
    case .ambiguous(let id, let candidates): return ["job": .string(id), "candidates": .array(candidates.map { .string($0) })]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .notFound: return "`qtool jobs list` shows the recent jobs"
    case .ambiguous: return "give more characters of the id"
    }
  }
}

/// Which jobs to list.
public struct JobFilter: Sendable, Equatable {
  public var since: Int64?
  public var statuses: [String]
  public var kinds: [String]
  public var limit: Int

  public init(since: Int64? = nil, statuses: [String] = [], kinds: [String] = [], limit: Int = 50) {
    self.since = since
    self.statuses = statuses
    self.kinds = kinds
    self.limit = limit
  }
}

extension QtoolDatabase {
  /// Records a job that starts now in this process.
  public func insertJob(id: String, kind: String, request: String, pid: Int, host: String, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO jobs (id, kind, request, status, pid, host, created_at, started_at, heartbeat_at)
          VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)
          """, arguments: [id, kind, request, pid, host, time, time, time])
    }
  }

  /// The latest progress of a running job (its JSON) and a heartbeat.
  public func updateJobProgress(id: String, progress: String?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: "UPDATE jobs SET progress = coalesce(?, progress), heartbeat_at = ? WHERE id = ? AND status = 'running'",
        arguments: [progress, time, id])
    }
  }

  /// Ends a job: its final status, its error (JSON) or result (JSON). A job already marked
  /// finished (interrupted by a reader who found its process gone) keeps that mark.
  public func finishJob(id: String, status: JobStatus, error: String?, result: String?, progress: String?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          UPDATE jobs SET status = ?, error = ?, result = ?, progress = coalesce(?, progress), finished_at = ?, heartbeat_at = ?
          WHERE id = ? AND status IN ('queued', 'running')
          """, arguments: [status.rawValue, error, result, progress, time, time, id])
    }
  }

  /// Marks a job as asked to stop; the process running it sees it and cancels.
  public func requestJobCancel(id: String, at time: Int64) throws {
    try write { db in
      try db.execute(sql: "UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, ?) WHERE id = ?", arguments: [time, id])
    }
  }

  public func jobCancelRequested(id: String) throws -> Bool {
    try read { db in try Int64.fetchOne(db, sql: "SELECT cancel_requested_at FROM jobs WHERE id = ?", arguments: [id]) != nil }
  }

  /// Marks a job whose process is known to be gone, with the error that says so.
  public func markJobInterrupted(id: String, error: String, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: "UPDATE jobs SET status = 'interrupted', error = ?, finished_at = ? WHERE id = ? AND status IN ('queued', 'running')",
        arguments: [error, time, id])
      // A run the job was writing never completed.
      try db.execute(sql: "DELETE FROM backtest_runs WHERE job_id = ? AND status = 'running'", arguments: [id])
    }
  }

  public func jobs(_ filter: JobFilter) throws -> [JobRecord] {
    var conditions: [String] = []
    var arguments: [any DatabaseValueConvertible] = []
    if let since = filter.since {
      conditions.append("created_at >= ?")
      arguments.append(since)
    }
    if !filter.statuses.isEmpty {
      conditions.append("status IN (\(filter.statuses.map { _ in "?" }.joined(separator: ",")))")
      arguments += filter.statuses as [any DatabaseValueConvertible]
    }
    if !filter.kinds.isEmpty {
      conditions.append("kind IN (\(filter.kinds.map { _ in "?" }.joined(separator: ",")))")
      arguments += filter.kinds as [any DatabaseValueConvertible]
    }
    let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
    arguments.append(filter.limit)
    return try read { db in
      try JobRecord.fetchAll(
        db, sql: "SELECT * FROM jobs \(whereClause) ORDER BY created_at DESC, id DESC LIMIT ?", arguments: StatementArguments(arguments))
    }
  }

  /// The active jobs (queued or running), to check their leases.
  public func activeJobs() throws -> [JobRecord] {
    try read { db in try JobRecord.fetchAll(db, sql: "SELECT * FROM jobs WHERE status IN ('queued', 'running')") }
  }

  /// The job with this id, or the one whose id starts with it.
  public func job(id: String) throws -> JobRecord {
    try read { db in
      if let exact = try JobRecord.fetchOne(db, sql: "SELECT * FROM jobs WHERE id = ?", arguments: [id]) { return exact }
      let matches = try JobRecord.fetchAll(
        db, sql: "SELECT * FROM jobs WHERE id LIKE ? ESCAPE '\\' ORDER BY created_at DESC LIMIT 20", arguments: [RawSQL.prefixPattern(id)])
      guard !id.isEmpty, let first = matches.first else { throw JobError.notFound(id) }
      guard matches.count == 1 else { throw JobError.ambiguous(id, candidates: matches.map(\.id)) }
      return first
    }
  }

  /// Deletes finished jobs created before `time` (with their download tasks); returns how many.
  public func pruneJobs(finishedBefore time: Int64) throws -> Int {
    try write { db in
      try db.execute(
        sql: "DELETE FROM jobs WHERE status NOT IN ('queued', 'running') AND coalesce(finished_at, created_at) < ?", arguments: [time])
      return db.changesCount
    }
  }
}
