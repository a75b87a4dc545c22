import Foundation
import GRDB
import QtoolCore

/// A dataset as the catalog shows it: its instrument, timeframe, calendar, origin and statistics.
public struct DatasetSummary: Codable, Sendable, Equatable, FetchableRecord {
  public var id: Int64
  public var name: String
  public var source: String
  public var symbol: String
  public var timeframe: String
  public var calendar: String
  public var origin: String
  public var parentName: String?
  public var pipeline: String?
  public var contentHash: String?
  public var rowCount: Int
  public var gapCount: Int
  public var firstTs: Int64?
  public var lastTs: Int64?
  public var metadata: String?
  public var createdAt: Int64
  public var updatedAt: Int64

  enum CodingKeys: String, CodingKey {
    case id, name, source, symbol, timeframe, calendar, origin
    case parentName = "parent_name", pipeline, contentHash = "content_hash", rowCount = "row_count"
    case gapCount = "gap_count", firstTs = "first_ts", lastTs = "last_ts", metadata
    case createdAt = "created_at", updatedAt = "updated_at"
  }

  public var parsedTimeframe: Timeframe { Timeframe(timeframe) ?? Timeframe(count: 1, unit: .day) }

  enum PublicKeys: String, CodingKey {
    case dataset, source, symbol, timeframe, calendar, origin, parent, pipeline, contentHash = "content_hash", bars, gaps, first, last
    case metadata, createdAt = "created_at", updatedAt = "updated_at"
  }

  /// The catalog entry in qtool's JSON vocabulary (`qtool help json`): `dataset` names it,
  /// `bars` counts them, times are ISO-8601, stored JSON is nested, not quoted.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: PublicKeys.self)
    func object(_ text: String?) -> JSONValue? { text.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) } }
    try container.encode(name, forKey: .dataset)
    try container.encode(source, forKey: .source)
    try container.encode(symbol, forKey: .symbol)
    try container.encode(timeframe, forKey: .timeframe)
    try container.encode(calendar, forKey: .calendar)
    try container.encode(origin, forKey: .origin)
    try container.encode(parentName, forKey: .parent)
    try container.encode(object(pipeline), forKey: .pipeline)
    try container.encode(contentHash, forKey: .contentHash)
    try container.encode(rowCount, forKey: .bars)
    try container.encode(gapCount, forKey: .gaps)
    try container.encode(firstTs.map { UTCCalendar.format($0, alwaysTime: true) }, forKey: .first)
    try container.encode(lastTs.map { UTCCalendar.format($0, alwaysTime: true) }, forKey: .last)
    try container.encode(object(metadata), forKey: .metadata)
    try container.encode(UTCCalendar.format(createdAt, alwaysTime: true), forKey: .createdAt)
    try container.encode(UTCCalendar.format(updatedAt, alwaysTime: true), forKey: .updatedAt)
  }

  /// Imported with zero and negative prices allowed (metadata `allow_nonpositive`).
  public var allowsNonPositive: Bool {
    guard let metadata, let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any] else { return false }
    return object["allow_nonpositive"] as? Bool == true
  }
  public var parsedCalendar: TradingCalendar { TradingCalendar(rawValue: calendar) ?? .allDays }

  static let selectSQL = """
    SELECT d.id, d.name, i.source, i.symbol, d.timeframe, d.calendar, d.origin, p.name AS parent_name,
           d.pipeline, d.content_hash, d.row_count, d.gap_count, d.first_ts, d.last_ts, d.metadata,
           d.created_at, d.updated_at
    FROM datasets d JOIN instruments i ON i.id = d.instrument_id LEFT JOIN datasets p ON p.id = d.parent_id
    """
}

/// What `storeBars` did: the write's counts and the dataset's statistics after it.
public struct StoredBars: Sendable, Equatable {
  public var datasetID: Int64
  public var counts: BarWriteCounts
  public var rows: Int
  public var gaps: Int
}

/// What a new dataset is.
public struct DatasetDefinition: Sendable, Equatable {
  public var name: String
  public var source: String
  public var symbol: String
  public var timeframe: Timeframe
  public var calendar: TradingCalendar
  public var origin: String
  public var parentID: Int64?
  public var pipeline: String?
  public var metadata: String?

  public init(
    name: String, source: String, symbol: String, timeframe: Timeframe, calendar: TradingCalendar, origin: String,
    parentID: Int64? = nil, pipeline: String? = nil, metadata: String? = nil
  ) {
    self.name = name
    self.source = source
    self.symbol = symbol
    self.timeframe = timeframe
    self.calendar = calendar
    self.origin = origin
    self.parentID = parentID
    self.pipeline = pipeline
    self.metadata = metadata
  }
}

public enum DatasetError: QtoolError, Equatable {
  case notFound(name: String, suggestion: String?)
  case conflict(name: String, existing: String)

  public var category: ErrorCategory {
    switch self {
    case .notFound: return .notFound
    case .conflict: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .notFound: return "dataset_not_found"
    case .conflict: return "dataset_name_taken"
    }
  }

  public var message: String {
    switch self {
    case .notFound(let name, let suggestion):
      return "no dataset named '\(name)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
    case .conflict(let name, let existing):
      return "dataset '\(name)' already exists as \(existing)"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .notFound(let name, let suggestion): return ["dataset": .string(name), "suggestion": JSONValue(suggestion)]
    case .conflict(let name, let existing): return ["dataset": .string(name), "existing": .string(existing)]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .notFound: return "`qtool data list` shows the stored datasets"
    case .conflict: return "store this one under another name with {name}"
    }
  }
}

extension QtoolDatabase {
  public func datasets() throws -> [DatasetSummary] {
    try read { try DatasetSummary.fetchAll($0, sql: DatasetSummary.selectSQL + " ORDER BY d.name") }
  }

  public func dataset(named name: String) throws -> DatasetSummary {
    let found = try read {
      try DatasetSummary.fetchOne($0, sql: DatasetSummary.selectSQL + " WHERE d.name = ?", arguments: [name])
    }
    if let found { return found }
    let names = try datasetNames()
    throw DatasetError.notFound(name: name, suggestion: Similarity.closest(to: name, among: names))
  }

  /// The dataset named `definition.name`, created (with its instrument) when missing. Inside a
  /// write transaction. Throws `conflict` when the name is taken by another symbol, source or timeframe.
  public static func findOrCreateDataset(_ db: Database, _ definition: DatasetDefinition, at time: Int64? = nil) throws -> Int64 {
    if let row = try Row.fetchOne(
      db,
      sql: "SELECT d.id, i.source, i.symbol, d.timeframe FROM datasets d JOIN instruments i ON i.id = d.instrument_id WHERE d.name = ?",
      arguments: [definition.name])
    {
      let source: String = row["source"]
      let symbol: String = row["symbol"]
      let timeframe: String = row["timeframe"]
      guard source == definition.source, symbol == definition.symbol, timeframe == definition.timeframe.description else {
        throw DatasetError.conflict(name: definition.name, existing: "\(symbol) \(timeframe) from \(source)")
      }
      return row["id"]
    }
    try db.execute(
      sql: "INSERT INTO instruments (source, symbol) VALUES (?, ?) ON CONFLICT (source, symbol) DO NOTHING",
      arguments: [definition.source, definition.symbol])
    let instrumentID = try Int64.fetchOne(
      db, sql: "SELECT id FROM instruments WHERE source = ? AND symbol = ?", arguments: [definition.source, definition.symbol])!
    let now = time ?? SystemClock().now()
    try db.execute(
      sql: """
        INSERT INTO datasets (name, instrument_id, timeframe, calendar, origin, parent_id, pipeline, metadata, created_at, updated_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        definition.name, instrumentID, definition.timeframe.description, definition.calendar.rawValue, definition.origin,
        definition.parentID, definition.pipeline, definition.metadata, now, now,
      ])
    return db.lastInsertedRowID
  }

  /// Recomputes row count, first/last timestamps and gap count after bars changed; clears the
  /// content hash, which is recomputed on demand. Inside the same write transaction.
  public static func refreshStatistics(_ db: Database, datasetID: Int64) throws {
    guard let row = try Row.fetchOne(db, sql: "SELECT timeframe, calendar FROM datasets WHERE id = ?", arguments: [datasetID])
    else { return }
    let timeframe = Timeframe(row["timeframe"] as String) ?? Timeframe(count: 1, unit: .day)
    let calendar = TradingCalendar(rawValue: row["calendar"] as String) ?? .allDays
    let timestamps = try readTimestamps(db, datasetID: datasetID)
    let gaps = DatasetVerifier.gapCount(timestamps, timeframe: timeframe, calendar: calendar)
    try db.execute(
      sql: """
        UPDATE datasets SET row_count = ?, gap_count = ?, first_ts = ?, last_ts = ?, content_hash = NULL, updated_at = ?
        WHERE id = ?
        """,
      arguments: [timestamps.count, gaps, timestamps.first, timestamps.last, SystemClock().now(), datasetID])
  }

  /// The one way bars enter the store — download, import and the live feed — inside the
  /// caller's transaction: finds or creates the dataset, merges `series` into its bars (a bar at
  /// a stored timestamp replaces it) and brings the catalog's statistics up to date. Appending
  /// after the last stored bar (or before the first) updates them from the new bars alone, so
  /// storing k bars costs O(k); a write inside the stored range recounts the dataset.
  /// `cancellation` is checked between chunks; throwing rolls the transaction back.
  public static func storeBars(
    _ db: Database, into definition: DatasetDefinition, _ series: BarSeries, at time: Int64, cancellation: CancellationToken = .never
  ) throws -> StoredBars {
    let id = try findOrCreateDataset(db, definition, at: time)
    guard
      let row = try Row.fetchOne(
        db, sql: "SELECT row_count, gap_count, first_ts, last_ts FROM datasets WHERE id = ?", arguments: [id])
    else { throw StoreError.sqlite("dataset \(definition.name) vanished during a write") }
    let (rows, gaps): (Int, Int) = (row["row_count"], row["gap_count"])
    let (first, last): (Int64?, Int64?) = (row["first_ts"], row["last_ts"])
    let counts = try writeBars(db, datasetID: id, series, cancellation: cancellation)
    guard !series.isEmpty else { return StoredBars(datasetID: id, counts: counts, rows: rows, gaps: gaps) }
    let incoming = series.sortedAndDeduplicated().timestamps
    let timeframe = definition.timeframe
    let calendar = definition.calendar
    var updated = StoredBars(datasetID: id, counts: counts, rows: rows + counts.added, gaps: gaps)
    if let first, let last, incoming[0] > last {
      updated.gaps += DatasetVerifier.gapCount([last] + incoming, timeframe: timeframe, calendar: calendar)
    } else if let first, incoming[incoming.count - 1] < first {
      updated.gaps += DatasetVerifier.gapCount(incoming + [first], timeframe: timeframe, calendar: calendar)
    } else if first == nil {
      updated.gaps = DatasetVerifier.gapCount(incoming, timeframe: timeframe, calendar: calendar)
    } else {
      let all = try readTimestamps(db, datasetID: id)
      updated.rows = all.count
      updated.gaps = DatasetVerifier.gapCount(all, timeframe: timeframe, calendar: calendar)
    }
    let newFirst = min(first ?? .max, incoming[0])
    let newLast = max(last ?? .min, incoming[incoming.count - 1])
    try db.execute(
      sql: "UPDATE datasets SET row_count = ?, gap_count = ?, first_ts = ?, last_ts = ?, content_hash = NULL, updated_at = ? WHERE id = ?",
      arguments: [updated.rows, updated.gaps, newFirst, newLast, time, id])
    return updated
  }

  /// The timestamps stored for a dataset (for incremental downloads).
  public func timestamps(datasetID: Int64) throws -> [Int64] {
    try read { try Self.readTimestamps($0, datasetID: datasetID) }
  }

  public func setContentHash(datasetID: Int64, _ hash: String) throws {
    try write { try $0.execute(sql: "UPDATE datasets SET content_hash = ? WHERE id = ?", arguments: [hash, datasetID]) }
  }

  /// Deletes the dataset and its bars in one transaction; derived datasets keep their bars and
  /// lose their parent link.
  public func deleteDataset(id: Int64) throws {
    try write { db in
      try db.execute(sql: "DELETE FROM bar_chunks WHERE dataset_id = ?", arguments: [id])
      try db.execute(sql: "DELETE FROM datasets WHERE id = ?", arguments: [id])
    }
  }

  /// All bars of a dataset in `[from, to)`.
  public func bars(datasetID: Int64, from: Int64 = .min, to: Int64 = .max) throws -> BarSeries {
    try read { try Self.attachColumns($0, datasetID: datasetID, to: Self.readBars($0, datasetID: datasetID, from: from, to: to)) }
  }

  /// The bars of a dataset in `[from, to)` and up to `count` stored bars before `from` (a
  /// backtest's warm-up), and how many of those there are. Reads the chunks that hold them
  /// rather than everything before `from`.
  public func bars(datasetID: Int64, from: Int64, to: Int64 = .max, withBarsBefore count: Int) throws -> (bars: BarSeries, before: Int) {
    try read { db in
      var start = Int64.min
      if count > 0 {
        // Whole chunks before `from`, latest first, until they hold `count` bars; the chunk
        // holding `from` adds its own earlier bars on top.
        let rows = try Row.fetchCursor(
          db, sql: "SELECT first_ts, row_count FROM bar_chunks WHERE dataset_id = ? AND last_ts < ? ORDER BY first_ts DESC",
          arguments: [datasetID, from])
        var held = 0
        while let row = try rows.next() {
          held += row["row_count"] as Int
          if held >= count {
            start = row["first_ts"]
            break
          }
        }
      } else {
        start = from
      }
      let series = try Self.attachColumns(db, datasetID: datasetID, to: Self.readBars(db, datasetID: datasetID, from: start, to: to))
      let firstTraded = series.index(atOrAfter: from)
      let kept = max(0, firstTraded - count)
      return (kept == 0 ? series : series.slice(kept..<series.count), firstTraded - kept)
    }
  }
}
