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
    var statement: OpaquePointer?
    let sql = """
      INSERT INTO bars (dataset_id, ts, open, high, low, close, volume) VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (dataset_id, ts) DO UPDATE SET open = excluded.open, high = excluded.high,
        low = excluded.low, close = excluded.close, volume = excluded.volume
      """
    guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
      throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle)))
    }
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
                  let code = sqlite3_step(statement)
                  guard code == SQLITE_DONE else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(handle)))
                  }
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

  /// Reads bars of `datasetID` with `from <= ts < to`, in time order, as columns.
  public static func readBars(_ db: Database, datasetID: Int64, from: Int64 = .min, to: Int64 = .max) throws -> BarSeries {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let expected =
      try Int.fetchOne(
        db, sql: "SELECT row_count FROM datasets WHERE id = ?", arguments: [datasetID]) ?? 0
    var series = BarSeries(reservingCapacity: max(0, expected))
    var statement: OpaquePointer?
    let sql = "SELECT ts, open, high, low, close, volume FROM bars WHERE dataset_id = ? AND ts >= ? AND ts < ? ORDER BY ts"
    guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
      throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle)))
    }
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
}
