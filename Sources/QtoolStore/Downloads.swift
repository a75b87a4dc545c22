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
  /// Other keys of the metadata are kept.
  public static func mergeEvents(_ db: Database, datasetID: Int64, _ events: [MarketEvent]) throws {
    var existing: [MarketEvent] = []
    try updateMetadata(db, datasetID: datasetID) { object in
      if let value = object["events"], let data = try? JSONSerialization.data(withJSONObject: value),
        let decoded = try? JSONDecoder().decode([MarketEvent].self, from: data)
      {
        existing = decoded
      }
      let merged = Array(Set(existing + events)).sorted { ($0.date, $0.type) < ($1.date, $1.type) }
      let encoder = JSONEncoder()
      encoder.outputFormatting = .sortedKeys
      object["events"] = try JSONSerialization.jsonObject(with: try encoder.encode(merged))
    }
  }

  /// Sets `key` of a dataset's metadata JSON object to `json` (any JSON text), or removes it
  /// when nil, keeping the other keys. Inside the caller's write transaction.
  public static func setMetadata(_ db: Database, datasetID: Int64, key: String, json: Data?) throws {
    try updateMetadata(db, datasetID: datasetID) { object in
      object[key] = try json.map { try JSONSerialization.jsonObject(with: $0, options: .fragmentsAllowed) }
    }
  }

  /// Reads a dataset's metadata as a JSON object, lets `body` change it, writes it back
  /// (sorted keys; NULL when it ends up empty).
  static func updateMetadata(_ db: Database, datasetID: Int64, _ body: (inout [String: Any]) throws -> Void) throws {
    var object: [String: Any] = [:]
    if let text = try String.fetchOne(db, sql: "SELECT metadata FROM datasets WHERE id = ?", arguments: [datasetID]),
      let decoded = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
    {
      object = decoded
    }
    try body(&object)
    let json =
      object.isEmpty
      ? nil : String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]), as: UTF8.self)
    try db.execute(sql: "UPDATE datasets SET metadata = ? WHERE id = ?", arguments: [json, datasetID])
  }

  /// Rows and gaps of a dataset right now (inside a transaction).
  public static func counts(_ db: Database, datasetID: Int64) throws -> (rows: Int, gaps: Int) {
    let row = try Row.fetchOne(db, sql: "SELECT row_count, gap_count FROM datasets WHERE id = ?", arguments: [datasetID])
    return (row?["row_count"] ?? 0, row?["gap_count"] ?? 0)
  }
}
