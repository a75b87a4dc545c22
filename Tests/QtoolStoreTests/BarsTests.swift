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

  static func chunks(_ database: QtoolDatabase) throws -> [(count: Int, first: Int64, last: Int64)] {
    try database.read {
      try Row.fetchAll($0, sql: "SELECT row_count, first_ts, last_ts FROM bar_chunks WHERE dataset_id = 1 ORDER BY first_ts").map {
        ($0[0], $0[1], $0[2])
      }
    }
  }

  /// Bars live in chunks of `chunkCapacity`; reads across chunk edges, appends that fill the
  /// last chunk, and rewrites in the middle must all read back as one series would.
  @Test func chunksReadBackAsOneSeries() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    let capacity = QtoolDatabase.chunkCapacity
    let series = syntheticSeries(count: 2 * capacity + 5)
    // In three pieces, as a download writes months: the partial chunks are filled up.
    for range in [0..<100, 100..<(capacity + 3), (capacity + 3)..<series.count] {
      try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, series.slice(range)) }
    }
    #expect(try Self.chunks(database).map(\.count) == [capacity, capacity, 5])
    #expect(try database.bars(datasetID: 1) == series)
    for (from, to) in [
      (series.timestamps[100], series.timestamps[capacity + 1]), (series.timestamps[capacity - 1], series.timestamps[capacity]),
      (series.timestamps[7] + 1, Int64.max), (Int64.min, series.timestamps[3]), (series.timestamps.last! + 1, Int64.max),
    ] {
      #expect(try database.bars(datasetID: 1, from: from, to: to) == series.between(from: from, to: to))
    }
    #expect(try database.timestamps(datasetID: 1) == series.timestamps)
  }

  @Test func upsertsInTheMiddleReplaceAndFillGaps() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    let capacity = QtoolDatabase.chunkCapacity
    let series = syntheticSeries(count: 3 * capacity)
    // A hole in the middle, filled later; prices rewritten across a chunk edge.
    let hole = (capacity - 10)..<(capacity + 10)
    try database.write { db in
      _ = try QtoolDatabase.upsertBars(db, datasetID: 1, series.slice(0..<hole.lowerBound))
      _ = try QtoolDatabase.upsertBars(db, datasetID: 1, series.slice(hole.upperBound..<series.count))
    }
    #expect(try database.bars(datasetID: 1).count == series.count - hole.count)
    try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, series.slice(hole)) }
    #expect(try database.bars(datasetID: 1) == series)
    var changed = series.slice((capacity - 2)..<(capacity + 2))
    changed.close = [1, 2, 3, 4]
    try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, changed) }
    let read = try database.bars(datasetID: 1)
    #expect(read.count == series.count)
    #expect(Array(read.close[(capacity - 2)..<(capacity + 2)]) == [1, 2, 3, 4])
    #expect(read.close[capacity + 2] == series.close[capacity + 2])
    // Chunks never overlap and stay in order.
    let chunks = try Self.chunks(database)
    #expect(zip(chunks, chunks.dropFirst()).allSatisfy { $0.last < $1.first })
    #expect(chunks.reduce(0) { $0 + $1.count } == series.count)
  }

  @Test func unsortedInputWithRepeatsKeepsTheLastOfEachTimestamp() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    var series = BarSeries()
    for (ts, close) in [(3, 30.0), (1, 10), (2, 20), (1, 11), (3, 31)] {
      series.append(timestamp: Int64(ts) * 3_600_000, open: close, high: close, low: close, close: close, volume: 1)
    }
    #expect(try database.write { try QtoolDatabase.upsertBars($0, datasetID: 1, series) } == 5)
    let read = try database.bars(datasetID: 1)
    #expect(read.timestamps == [1, 2, 3].map { Int64($0) * 3_600_000 })
    #expect(read.close == [11, 20, 31])
  }

  @Test func deletingADatasetDeletesItsChunks() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    try insertDataset(database)
    try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, syntheticSeries(count: 5_000)) }
    #expect(try Self.chunks(database).count == 2)
    try database.deleteDataset(id: 1)
    #expect(try database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM bar_chunks") } == 0)
  }
}
