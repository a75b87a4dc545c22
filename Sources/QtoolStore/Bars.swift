import Foundation
import GRDB
import GRDBSQLite
import QtoolCore

/// Bars are stored in chunks of up to `chunkCapacity` consecutive bars of one dataset, one
/// blob per column (`bar_chunks`, migration 006). A row per bar cost SQLite about 2.4 µs to
/// insert and 0.4 µs to read on the reference machine; a chunk costs a copy. Chunks of a
/// dataset never overlap in time, and all I/O goes through the raw handle: GRDB's layers cost
/// more than the copies.
/// What a write of bars did to the stored ones.
public struct BarWriteCounts: Sendable, Equatable, Codable {
  /// Bars at timestamps not stored before.
  public var added = 0
  /// Bars at stored timestamps, with other values.
  public var replaced = 0
  /// Bars at stored timestamps, with the same values.
  public var unchanged = 0

  public init(added: Int = 0, replaced: Int = 0, unchanged: Int = 0) {
    self.added = added
    self.replaced = replaced
    self.unchanged = unchanged
  }
}

extension QtoolDatabase {
  static let chunkCapacity = 4096

  /// Inserts or replaces `series` into `datasetID` inside the caller's transaction: a bar
  /// whose timestamp is stored already replaces it (the last of equal timestamps in `series`
  /// wins). Chunks holding any of the new bars' span, and the one before it while it has
  /// room, are merged with them and written again. Returns the number of bars given.
  public static func upsertBars(_ db: Database, datasetID: Int64, _ series: BarSeries) throws -> Int {
    _ = try writeBars(db, datasetID: datasetID, series)
    return series.count
  }

  /// `upsertBars`, telling what the write changed, and checking `cancellation` between chunks
  /// (throwing rolls the caller's transaction back).
  static func writeBars(_ db: Database, datasetID: Int64, _ series: BarSeries, cancellation: CancellationToken = .never) throws -> BarWriteCounts {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    // The content hash no longer holds; every write of bars comes through here.
    try db.execute(sql: "UPDATE datasets SET content_hash = NULL WHERE id = ?", arguments: [datasetID])
    guard !series.isEmpty else { return BarWriteCounts() }
    let incoming = series.sortedAndDeduplicated()
    let (first, last) = (incoming.timestamps[0], incoming.timestamps[incoming.count - 1])
    var merging = try Row.fetchAll(
      db, sql: "SELECT id, row_count FROM bar_chunks WHERE dataset_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY first_ts",
      arguments: [datasetID, first, last])
    if let previous = try Row.fetchOne(
      db, sql: "SELECT id, row_count FROM bar_chunks WHERE dataset_id = ? AND last_ts < ? ORDER BY last_ts DESC LIMIT 1",
      arguments: [datasetID, first]),
      (previous["row_count"] as Int) < chunkCapacity
    {
      merging.insert(previous, at: 0)
    }
    var merged = incoming
    var counts = BarWriteCounts(added: incoming.count)
    if !merging.isEmpty {
      let stored = try readChunks(handle, sql: "SELECT ts, open, high, low, close, volume FROM bar_chunks WHERE id = ?", rows: merging)
      (merged, counts) = merge(stored: stored, incoming: incoming)
      try db.execute(sql: "DELETE FROM bar_chunks WHERE id IN (\(merging.map { String($0["id"] as Int64) }.joined(separator: ",")))")
    }
    try writeChunks(handle, datasetID: datasetID, merged, cancellation: cancellation)
    return counts
  }

  /// Stored and incoming bars (each sorted, unique) in one series; an incoming bar replaces a
  /// stored one at its timestamp. Counts what was added, what changed and what was resent as it was.
  static func merge(stored: BarSeries, incoming: BarSeries) -> (BarSeries, BarWriteCounts) {
    var result = BarSeries(reservingCapacity: stored.count + incoming.count)
    var counts = BarWriteCounts()
    var (i, j) = (0, 0)
    while i < stored.count || j < incoming.count {
      if j == incoming.count || (i < stored.count && stored.timestamps[i] < incoming.timestamps[j]) {
        result.append(stored, at: i)
        i += 1
        continue
      }
      if i < stored.count, stored.timestamps[i] == incoming.timestamps[j] {
        let same =
          stored.open[i] == incoming.open[j] && stored.high[i] == incoming.high[j] && stored.low[i] == incoming.low[j]
          && stored.close[i] == incoming.close[j] && stored.volume[i] == incoming.volume[j]
        if same { counts.unchanged += 1 } else { counts.replaced += 1 }
        i += 1
      } else {
        counts.added += 1
      }
      result.append(incoming, at: j)
      j += 1
    }
    return (result, counts)
  }

  /// Removes the bars of `datasetID` at `timestamps` inside the caller's transaction: the
  /// chunks holding them are written again without them. Returns how many were removed.
  public static func removeBars(_ db: Database, datasetID: Int64, timestamps: [Int64]) throws -> Int {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    guard let first = timestamps.min(), let last = timestamps.max() else { return 0 }
    try db.execute(sql: "UPDATE datasets SET content_hash = NULL WHERE id = ?", arguments: [datasetID])
    let chunks = try Row.fetchAll(
      db, sql: "SELECT id, row_count FROM bar_chunks WHERE dataset_id = ? AND last_ts >= ? AND first_ts <= ? ORDER BY first_ts",
      arguments: [datasetID, first, last])
    guard !chunks.isEmpty else { return 0 }
    let stored = try readChunks(handle, sql: "SELECT ts, open, high, low, close, volume FROM bar_chunks WHERE id = ?", rows: chunks)
    let removing = Set(timestamps)
    var kept = BarSeries(reservingCapacity: stored.count)
    for i in 0..<stored.count where !removing.contains(stored.timestamps[i]) {
      kept.append(
        timestamp: stored.timestamps[i], open: stored.open[i], high: stored.high[i], low: stored.low[i], close: stored.close[i],
        volume: stored.volume[i])
    }
    try db.execute(sql: "DELETE FROM bar_chunks WHERE id IN (\(chunks.map { String($0["id"] as Int64) }.joined(separator: ",")))")
    if !kept.isEmpty { try writeChunks(handle, datasetID: datasetID, kept) }
    return stored.count - kept.count
  }

  /// Writes `series` (sorted, unique timestamps, none stored yet) as full chunks and a last partial one.
  static func writeChunks(_ handle: OpaquePointer, datasetID: Int64, _ series: BarSeries, cancellation: CancellationToken = .never) throws {
    let sql = """
      INSERT INTO bar_chunks (dataset_id, first_ts, last_ts, row_count, ts, open, high, low, close, volume)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    try series.timestamps.withUnsafeBytes { ts in
      try series.open.withUnsafeBytes { open in
        try series.high.withUnsafeBytes { high in
          try series.low.withUnsafeBytes { low in
            try series.close.withUnsafeBytes { close in
              try series.volume.withUnsafeBytes { volume in
                for start in stride(from: 0, to: series.count, by: chunkCapacity) {
                  try cancellation.check()
                  let end = min(start + chunkCapacity, series.count)
                  sqlite3_bind_int64(statement, 1, datasetID)
                  sqlite3_bind_int64(statement, 2, series.timestamps[start])
                  sqlite3_bind_int64(statement, 3, series.timestamps[end - 1])
                  sqlite3_bind_int64(statement, 4, Int64(end - start))
                  // The buffers outlive the step, so SQLite may read them in place.
                  for (index, column) in [ts, open, high, low, close, volume].enumerated() {
                    RawSQL.bindBlob(statement, Int32(index + 5), UnsafeRawBufferPointer(rebasing: column[(start * 8)..<(end * 8)]))
                  }
                  try RawSQL.expectDone(sqlite3_step(statement), handle)
                  sqlite3_reset(statement)
                }
              }
            }
          }
        }
      }
    }
  }

  /// Reads bars of `datasetID` with `from <= ts < to`, in time order, as columns.
  public static func readBars(_ db: Database, datasetID: Int64, from: Int64 = .min, to: Int64 = .max) throws -> BarSeries {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let ids = try Row.fetchAll(
      db, sql: "SELECT id, row_count FROM bar_chunks WHERE dataset_id = ? AND last_ts >= ? AND first_ts < ? ORDER BY first_ts",
      arguments: [datasetID, from, to])
    let series = try readChunks(handle, sql: "SELECT ts, open, high, low, close, volume FROM bar_chunks WHERE id = ?", rows: ids)
    // Only the first and last chunks can reach outside the range.
    guard let first = series.timestamps.first, let last = series.timestamps.last, first < from || last >= to else { return series }
    return series.between(from: from, to: to)
  }

  /// The timestamps stored for a dataset, in order.
  static func readTimestamps(_ db: Database, datasetID: Int64) throws -> [Int64] {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let ids = try Row.fetchAll(db, sql: "SELECT id, row_count FROM bar_chunks WHERE dataset_id = ? ORDER BY first_ts", arguments: [datasetID])
    return try readChunkColumns(handle, sql: "SELECT ts FROM bar_chunks WHERE id = ?", rows: ids).0
  }

  /// The chunks `rows` (id and bar count), in that order, concatenated: `sql` selects ts and
  /// then, if it selects more, open, high, low, close and volume of the chunk with the bound id.
  private static func readChunks(_ handle: OpaquePointer, sql: String, rows: [Row]) throws -> BarSeries {
    let (timestamps, prices) = try readChunkColumns(handle, sql: sql, rows: rows)
    return BarSeries(timestamps: timestamps, open: prices[0], high: prices[1], low: prices[2], close: prices[3], volume: prices[4])
  }

  /// The timestamps, and the price columns when `sql` selects them (else none), each
  /// allocated once and filled by copying the blobs into place.
  private static func readChunkColumns(_ handle: OpaquePointer, sql: String, rows: [Row]) throws -> ([Int64], [[Double]]) {
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    let total = rows.reduce(0) { $0 + ($1["row_count"] as Int) }
    var timestamps = [Int64](repeating: 0, count: total)
    var prices = [[Double]](repeating: [Double](repeating: 0, count: total), count: Int(sqlite3_column_count(statement)) - 1)
    var offset = 0
    for row in rows {
      let id: Int64 = row["id"]
      let count: Int = row["row_count"]
      sqlite3_bind_int64(statement, 1, id)
      guard sqlite3_step(statement) == SQLITE_ROW else {
        throw StoreError.sqlite("reading bar chunk \(id): " + String(cString: sqlite3_errmsg(handle)))
      }
      func copy(_ column: Int32, into destination: UnsafeMutableRawBufferPointer) throws {
        guard count > 0 else { return }
        guard Int(sqlite3_column_bytes(statement, column)) == count * 8, offset + count <= total,
          let blob = sqlite3_column_blob(statement, column)
        else { throw StoreError.sqlite("bar chunk \(id) is damaged; restore a backup (qtool db restore)") }
        destination.baseAddress!.advanced(by: offset * 8).copyMemory(from: blob, byteCount: count * 8)
      }
      try timestamps.withUnsafeMutableBytes { try copy(0, into: $0) }
      for index in prices.indices { try prices[index].withUnsafeMutableBytes { try copy(Int32(index + 1), into: $0) } }
      sqlite3_reset(statement)
      offset += count
    }
    return (timestamps, prices)
  }

  /// The rows of the `bars` table migration 006 replaced, for that migration.
  static func readLegacyBarRows(_ db: Database, datasetID: Int64) throws -> BarSeries {
    var series = BarSeries()
    let rows = try Row.fetchCursor(
      db, sql: "SELECT ts, open, high, low, close, volume FROM bars WHERE dataset_id = ? ORDER BY ts", arguments: [datasetID])
    while let row = try rows.next() {
      series.append(timestamp: row[0], open: row[1], high: row[2], low: row[3], close: row[4], volume: row[5])
    }
    return series
  }
}
