import Foundation
import GRDB
import QtoolCore

/// One request of a finished download, as recorded in `download_tasks`.
public struct DownloadTaskRecord: Sendable, Codable, Equatable {
  public var url: String
  public var datasetID: Int64?
  public var status: String
  public var attempts: Int
  public var bytes: Int
  public var bars: Int
  public var error: String?

  enum CodingKeys: String, CodingKey { case url, datasetID = "dataset_id", status, attempts, bytes, bars, error }

  public init(url: String, datasetID: Int64?, status: String, attempts: Int, bytes: Int, bars: Int, error: String?) {
    self.url = url
    self.datasetID = datasetID
    self.status = status
    self.attempts = attempts
    self.bytes = bytes
    self.bars = bars
    self.error = error
  }
}

extension QtoolDatabase {
  /// Records one request of a download job, inside the caller's transaction (the one that
  /// stored its bars, so the record and the bars commit together).
  public static func recordDownloadTask(_ db: Database, jobID: String, _ task: DownloadTaskRecord) throws {
    try db.execute(
      sql: """
        INSERT INTO download_tasks (job_id, dataset_id, url, status, attempts, bytes, bars, error)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [jobID, task.datasetID, task.url, task.status, task.attempts, task.bytes, task.bars, task.error])
  }

  /// The requests a download job made, in the order they finished.
  public func downloadTasks(jobID: String) throws -> [DownloadTaskRecord] {
    try read { db in
      try Row.fetchAll(
        db, sql: "SELECT dataset_id, url, status, attempts, bytes, bars, error FROM download_tasks WHERE job_id = ? ORDER BY id",
        arguments: [jobID]
      ).map {
        DownloadTaskRecord(
          url: $0["url"], datasetID: $0["dataset_id"], status: $0["status"], attempts: $0["attempts"], bytes: $0["bytes"], bars: $0["bars"],
          error: $0["error"])
      }
    }
  }

  /// Adds splits and dividends to a dataset's metadata (`{"events": […]}`), without duplicates.
  public static func mergeEvents(_ db: Database, datasetID: Int64, _ events: [MarketEvent]) throws {
    var metadata: [String: [MarketEvent]] = [:]
    if let text = try String.fetchOne(db, sql: "SELECT metadata FROM datasets WHERE id = ?", arguments: [datasetID]),
      let decoded = try? JSONDecoder().decode([String: [MarketEvent]].self, from: Data(text.utf8))
    {
      metadata = decoded
    }
    metadata["events"] = Array(Set((metadata["events"] ?? []) + events)).sorted { ($0.date, $0.type) < ($1.date, $1.type) }
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let json = String(decoding: try encoder.encode(metadata), as: UTF8.self)
    try db.execute(sql: "UPDATE datasets SET metadata = ? WHERE id = ?", arguments: [json, datasetID])
  }

  /// Rows and gaps of a dataset right now (inside a transaction).
  public static func counts(_ db: Database, datasetID: Int64) throws -> (rows: Int, gaps: Int) {
    let row = try Row.fetchOne(db, sql: "SELECT row_count, gap_count FROM datasets WHERE id = ?", arguments: [datasetID])
    return (row?["row_count"] ?? 0, row?["gap_count"] ?? 0)
  }
}
