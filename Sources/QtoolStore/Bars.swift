import Foundation
import GRDB
import GRDBSQLite
import QtoolCore

/// Bulk bar I/O on the raw SQLite handle: GRDB's statement layer costs ~2× and its record
/// layer ~6× on these loops (SWIFT-NOTES.md), and bars are the only table that big.
extension QtoolDatabase {
  /// Inserts or replaces `series` into `datasetID` inside the caller's transaction.
  /// Returns the number of rows written.
  public static func upsertBars(_ db: Database, datasetID: Int64, _ series: BarSeries) throws -> Int {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    try barsChanged(db, datasetID: datasetID)
    let sql = """
      INSERT INTO bars (dataset_id, ts, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (dataset_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high,
        low = excluded.low, close = excluded.close, volume = excluded.volume
      """
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    try series.timestamps.withUnsafeBufferPointer { ts in
      try series.open.withUnsafeBufferPointer { open in
        try series.high.withUnsafeBufferPointer { high in
          try series.low.withUnsafeBufferPointer { low in
            try series.close.withUnsafeBufferPointer { close in
              try series.volume.withUnsafeBufferPointer { volume in
                for i in 0..<ts.count {
                  sqlite3_bind_int64(statement, 1, datasetID)
                  sqlite3_bind_int64(statement, 2, ts[i])
                  sqlite3_bind_double(statement, 3, open[i])
                  sqlite3_bind_double(statement, 4, high[i])
                  sqlite3_bind_double(statement, 5, low[i])
                  sqlite3_bind_double(statement, 6, close[i])
                  sqlite3_bind_double(statement, 7, volume[i])
                  try RawSQL.expectDone(sqlite3_step(statement), handle)
                  sqlite3_reset(statement)
                }
              }
            }
          }
        }
      }
    }
    return series.count
  }

  /// Reads bars of `datasetID` with `from <= ts < to`, in time order, as columns: from the
  /// dataset's snapshot when it has a current one, from the bars table otherwise.
  public static func readBars(_ db: Database, datasetID: Int64, from: Int64 = .min, to: Int64 = .max) throws -> BarSeries {
    if let series = try readSnapshot(db, datasetID: datasetID, from: from, to: to) { return series }
    return try readBarRows(db, datasetID: datasetID, from: from, to: to)
  }

  static func readBarRows(_ db: Database, datasetID: Int64, from: Int64, to: Int64) throws -> BarSeries {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let expected =
      try Int.fetchOne(
        db, sql: "SELECT row_count FROM datasets WHERE id = ?", arguments: [datasetID]) ?? 0
    var series = BarSeries(reservingCapacity: max(0, expected))
    let sql = "SELECT ts, open, high, low, close, volume FROM bars WHERE dataset_id = ? AND ts >= ? AND ts < ? ORDER BY ts"
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    sqlite3_bind_int64(statement, 1, datasetID)
    sqlite3_bind_int64(statement, 2, from)
    sqlite3_bind_int64(statement, 3, to)
    while true {
      let code = sqlite3_step(statement)
      if code == SQLITE_DONE { break }
      guard code == SQLITE_ROW else {
        throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(handle)))
      }
      series.timestamps.append(sqlite3_column_int64(statement, 0))
      series.open.append(sqlite3_column_double(statement, 1))
      series.high.append(sqlite3_column_double(statement, 2))
      series.low.append(sqlite3_column_double(statement, 3))
      series.close.append(sqlite3_column_double(statement, 4))
      series.volume.append(sqlite3_column_double(statement, 5))
    }
    return series
  }

  /// Datasets smaller than this are read from the table, which is fast enough for them.
  public static let snapshotMinimumBars = 20_000

  /// Marks a dataset's bars as changed: its snapshot and content hash no longer hold.
  /// Every write to `bars` goes through here, inside the writing transaction.
  static func barsChanged(_ db: Database, datasetID: Int64) throws {
    try db.execute(
      sql: """
        UPDATE datasets SET bars_version = bars_version + 1, content_hash = NULL WHERE id = ?;
        DELETE FROM bar_snapshots WHERE dataset_id = ?;
        """, arguments: [datasetID, datasetID])
  }

  /// The current snapshot's bars in `[from, to)`, read straight into the columns through
  /// incremental blob I/O (a binary search on the timestamps finds the range), or nil when
  /// the dataset has no current snapshot.
  static func readSnapshot(_ db: Database, datasetID: Int64, from: Int64, to: Int64) throws -> BarSeries? {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    guard
      let count = try Int.fetchOne(
        db,
        sql: """
          SELECT s.row_count FROM bar_snapshots s JOIN datasets d ON d.id = s.dataset_id
          WHERE s.dataset_id = ? AND s.bars_version = d.bars_version AND s.row_count = d.row_count
          """, arguments: [datasetID])
    else { return nil }
    func open(_ column: String) throws -> OpaquePointer {
      var blob: OpaquePointer?
      guard sqlite3_blob_open(handle, "main", "bar_snapshots", column, datasetID, 0, &blob) == SQLITE_OK, let blob else {
        throw StoreError.sqlite("reading the bar snapshot: " + String(cString: sqlite3_errmsg(handle)))
      }
      guard Int(sqlite3_blob_bytes(blob)) == count * 8 else {
        sqlite3_blob_close(blob)
        throw StoreError.sqlite("the bar snapshot of dataset \(datasetID) is damaged; run `qtool db vacuum`")
      }
      return blob
    }
    let timestampBlob = try open("ts")
    defer { sqlite3_blob_close(timestampBlob) }
    func timestamp(at index: Int) throws -> Int64 {
      var value: Int64 = 0
      guard sqlite3_blob_read(timestampBlob, &value, 8, Int32(index * 8)) == SQLITE_OK else {
        throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle)))
      }
      return value
    }
    /// The first index whose timestamp is ≥ `bound`.
    func lowerBound(_ bound: Int64) throws -> Int {
      var low = 0
      var high = count
      while low < high {
        let middle = (low + high) / 2
        if try timestamp(at: middle) < bound { low = middle + 1 } else { high = middle }
      }
      return low
    }
    let first = from == .min ? 0 : try lowerBound(from)
    let end = to == .max ? count : try lowerBound(to)
    let length = max(0, end - first)
    func read<T>(_ blob: OpaquePointer, as: T.Type) throws -> [T] {
      try [T](unsafeUninitializedCapacity: length) { buffer, initialized in
        if length > 0 {
          guard sqlite3_blob_read(blob, buffer.baseAddress, Int32(length * 8), Int32(first * 8)) == SQLITE_OK else {
            throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle)))
          }
        }
        initialized = length
      }
    }
    func readColumn(_ name: String) throws -> [Double] {
      let blob = try open(name)
      defer { sqlite3_blob_close(blob) }
      return try read(blob, as: Double.self)
    }
    return BarSeries(
      timestamps: try read(timestampBlob, as: Int64.self), open: try readColumn("open"), high: try readColumn("high"),
      low: try readColumn("low"), close: try readColumn("close"), volume: try readColumn("volume"))
  }

  /// Writes `series` as the snapshot of a dataset whose bars it is, all of them, as of
  /// `barsVersion`; does nothing if the bars have changed since.
  static func writeSnapshot(_ db: Database, datasetID: Int64, barsVersion: Int64, _ series: BarSeries) throws {
    guard
      try Int64.fetchOne(
        db, sql: "SELECT bars_version FROM datasets WHERE id = ? AND row_count = ?", arguments: [datasetID, series.count]) == barsVersion
    else { return }
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let sql = """
      INSERT OR REPLACE INTO bar_snapshots (dataset_id, bars_version, row_count, ts, open, high, low, close, volume)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
      """
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    sqlite3_bind_int64(statement, 1, datasetID)
    sqlite3_bind_int64(statement, 2, barsVersion)
    sqlite3_bind_int64(statement, 3, Int64(series.count))
    // The column buffers outlive the statement's one step, so SQLite may use them in place.
    let code = series.timestamps.withUnsafeBytes { ts in
      series.open.withUnsafeBytes { open in
        series.high.withUnsafeBytes { high in
          series.low.withUnsafeBytes { low in
            series.close.withUnsafeBytes { close in
              series.volume.withUnsafeBytes { volume in
                for (index, column) in [ts, open, high, low, close, volume].enumerated() {
                  RawSQL.bindBlob(statement, Int32(index + 4), column)
                }
                return sqlite3_step(statement)
              }
            }
          }
        }
      }
    }
    try RawSQL.expectDone(code, handle)
  }
}
