import Foundation
import GRDB
import QtoolCore
import Testing

@testable import QtoolStore

func insertDataset(_ database: QtoolDatabase, id: Int64 = 1) throws {
  try database.write { db in
    try db.execute(sql: "INSERT OR IGNORE INTO instruments (id, source, symbol) VALUES (1, 'csv', 'TEST')")
    try db.execute(
      sql: """
        INSERT INTO datasets (id, name, instrument_id, timeframe, calendar, origin, created_at, updated_at)
        VALUES (?, ?, 1, '1h', '24x7', 'imported', 0, 0)
        """, arguments: [id, "test-\(id)"])
  }
}

func syntheticSeries(count: Int, start: Int64 = 1_700_000_000_000, step: Int64 = 3_600_000) -> BarSeries {
  var series = BarSeries(reservingCapacity: count)
  for i in 0..<count {
    let price = 100 + Double(i % 50)
    series.append(timestamp: start + Int64(i) * step, open: price, high: price + 1, low: price - 1, close: price + 0.5, volume: Double(i))
  }
  return series
}

/// Each test runs on a pool on disk and on an in-memory queue, as GRDB's own tests do.
@Suite struct BarsTests {
  static func stores() throws -> [QtoolDatabase] {
    [try QtoolDatabase.open(path: temporaryDatabasePath()), try QtoolDatabase.inMemory()]
  }

  @Test func roundTrip() throws {
    for database in try Self.stores() {
      try insertDataset(database)
      let series = syntheticSeries(count: 1000)
      let written = try database.write { try QtoolDatabase.upsertBars($0, datasetID: 1, series) }
      #expect(written == 1000)
      let read = try database.read { try QtoolDatabase.readBars($0, datasetID: 1) }
      #expect(read == series)
    }
  }

  @Test func upsertReplacesBarsWithTheSameTimestamp() throws {
    for database in try Self.stores() {
      try insertDataset(database)
      try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, syntheticSeries(count: 10)) }
      var changed = syntheticSeries(count: 2, start: 1_700_000_000_000 + 8 * 3_600_000)
      changed.close = [1, 2]
      try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, changed) }
      let read = try database.read { try QtoolDatabase.readBars($0, datasetID: 1) }
      #expect(read.count == 10)
      #expect(read.close[8] == 1)
      #expect(read.close[9] == 2)
    }
  }

  @Test func rangeReadIsHalfOpen() throws {
    for database in try Self.stores() {
      try insertDataset(database)
      let series = syntheticSeries(count: 100)
      try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, series) }
      let read = try database.read {
        try QtoolDatabase.readBars($0, datasetID: 1, from: series.timestamps[10], to: series.timestamps[20])
      }
      #expect(read.timestamps == Array(series.timestamps[10..<20]))
    }
  }

  @Test func failedTransactionLeavesNothing() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    struct Abort: Error {}
    #expect(throws: Abort.self) {
      try database.write { db in
        _ = try QtoolDatabase.upsertBars(db, datasetID: 1, syntheticSeries(count: 500))
        throw Abort()
      }
    }
    #expect(try database.read { try QtoolDatabase.readBars($0, datasetID: 1) }.count == 0)
  }

  static func snapshotCount(_ database: QtoolDatabase) throws -> Int {
    try database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM bar_snapshots") ?? 0 }
  }

  @Test func largeDatasetReadsComeFromASnapshotThatMatchesTheTable() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    let series = syntheticSeries(count: QtoolDatabase.snapshotMinimumBars + 5)
    try database.write { db in
      _ = try QtoolDatabase.upsertBars(db, datasetID: 1, series)
      try QtoolDatabase.refreshStatistics(db, datasetID: 1)
    }
    #expect(try Self.snapshotCount(database) == 0)
    #expect(try database.bars(datasetID: 1) == series)
    #expect(try Self.snapshotCount(database) == 1)
    // Whole, ranged, open-ended and empty reads through the snapshot equal the table's.
    #expect(try database.bars(datasetID: 1) == series)
    for (from, to) in [
      (series.timestamps[100], series.timestamps[20_000]), (series.timestamps[7] + 1, Int64.max), (Int64.min, series.timestamps[3]),
      (series.timestamps.last! + 1, Int64.max), (Int64.min, Int64.max),
    ] {
      let table = try database.read { try QtoolDatabase.readBarRows($0, datasetID: 1, from: from, to: to) }
      let snapshot = try database.read { try QtoolDatabase.readSnapshot($0, datasetID: 1, from: from, to: to) }
      #expect(snapshot == table)
      #expect(try database.bars(datasetID: 1, from: from, to: to) == table)
    }
  }

  @Test func writingBarsRetiresTheSnapshot() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    let series = syntheticSeries(count: QtoolDatabase.snapshotMinimumBars)
    try database.write { db in
      _ = try QtoolDatabase.upsertBars(db, datasetID: 1, series)
      try QtoolDatabase.refreshStatistics(db, datasetID: 1)
    }
    _ = try database.bars(datasetID: 1)
    #expect(try Self.snapshotCount(database) == 1)
    // Same timestamps, new prices: the row count stays, the snapshot must not.
    var changed = series.slice(10..<12)
    changed.close = [1, 2]
    try database.write { db in
      _ = try QtoolDatabase.upsertBars(db, datasetID: 1, changed)
      try QtoolDatabase.refreshStatistics(db, datasetID: 1)
    }
    #expect(try Self.snapshotCount(database) == 0)
    let read = try database.bars(datasetID: 1)
    #expect(read.close[10] == 1 && read.close[11] == 2)
    #expect(try database.bars(datasetID: 1, from: series.timestamps[11], to: series.timestamps[12]).close == [2])
    // Deleting the dataset takes its snapshot with it.
    try database.deleteDataset(id: 1)
    #expect(try Self.snapshotCount(database) == 0)
  }
}
