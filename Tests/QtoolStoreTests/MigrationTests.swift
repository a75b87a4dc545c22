import Foundation
import GRDB
import Testing

@testable import QtoolStore

func temporaryDatabasePath() -> String {
  FileManager.default.temporaryDirectory.appendingPathComponent("qtool-store-\(UUID().uuidString)/qtool.db").path
}

@Suite struct MigrationTests {
  @Test func newStoreGetsEveryMigrationAndWAL() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    #expect(try database.appliedMigrations() == QtoolDatabase.knownMigrations)
    #expect(try database.pendingMigrations() == [])
    let info = try database.info()
    #expect(info.journalMode == "wal")
    #expect(Set(info.rowCounts.keys).isSuperset(of: ["bars", "bar_chunks", "datasets", "instruments", "strategies", "backtest_runs"]))
  }

  /// A new store's schema, created in one transaction, is the one the migrations give run one
  /// by one, and records the same migrations as applied.
  @Test func newStoreSchemaInOneTransactionIsTheMigrationsOne() throws {
    func schema(_ db: Database) throws -> [String] {
      try Row.fetchAll(db, sql: "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").map { "\($0)" }
        + String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier")
    }
    let fast = try QtoolDatabase.open(path: temporaryDatabasePath())
    let path = temporaryDatabasePath()
    try FileManager.default.createDirectory(
      atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
    let stepByStep = try DatabaseQueue(path: path)
    try Migrations.migrator.migrate(stepByStep)
    let expected = try stepByStep.read(schema)
    #expect(expected.count > 40)
    #expect(try fast.read(schema) == expected)
    // A store that is not empty is migrated one by one (and createSchema changes nothing).
    #expect(try stepByStep.writeWithoutTransaction { try Migrations.steps.createSchema($0) } == false)
  }

  @Test func existingStoreIsUpgradedAndKeepsItsData() throws {
    let path = temporaryDatabasePath()
    try FileManager.default.createDirectory(
      atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
    // A store written by a qtool that knew only the first migration.
    let old = try DatabaseQueue(path: path)
    try Migrations.migrator.migrate(old, upTo: "001-market-data")
    try old.write { db in
      try db.execute(sql: "INSERT INTO instruments (id, source, symbol) VALUES (1, 'csv', 'AAPL')")
    }
    try old.close()

    let unopened = try QtoolDatabase.open(path: path, migrate: false)
    let later = Array(QtoolDatabase.knownMigrations.dropFirst())
    #expect(later.first == "002-strategies-and-backtests")
    #expect(try unopened.pendingMigrations() == later)
    #expect(try unopened.migrate() == later)
    #expect(try unopened.migrate() == [])
    let symbol = try unopened.read { try String.fetchOne($0, sql: "SELECT symbol FROM instruments WHERE id = 1") }
    #expect(symbol == "AAPL")
  }

  /// Migration 006 moves bars from a row each into chunks, unchanged.
  @Test func barRowsBecomeChunks() throws {
    let path = temporaryDatabasePath()
    try FileManager.default.createDirectory(
      atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
    let old = try DatabaseQueue(path: path)
    try Migrations.migrator.migrate(old, upTo: "005-bar-snapshots")
    let series = syntheticSeries(count: QtoolDatabase.chunkCapacity + 7)
    try old.write { db in
      try db.execute(sql: "INSERT INTO instruments (id, source, symbol) VALUES (1, 'csv', 'TEST')")
      try db.execute(
        sql: """
          INSERT INTO datasets (id, name, instrument_id, timeframe, calendar, origin, created_at, updated_at, row_count)
          VALUES (1, 'TEST-1h', 1, '1h', '24x7', 'imported', 0, 0, ?)
          """, arguments: [series.count])
      for i in 0..<series.count {
        try db.execute(
          sql: "INSERT INTO bars VALUES (1, ?, ?, ?, ?, ?, ?)",
          arguments: [series.timestamps[i], series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i]])
      }
    }
    try old.close()
    let database = try QtoolDatabase.open(path: path)
    #expect(try database.bars(datasetID: 1) == series)
    #expect(try database.info().rowCounts["bars"] == series.count)
    #expect(try database.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM sqlite_master WHERE name IN ('bars', 'bar_snapshots')") } == 0)
  }

  @Test func storeFromANewerQtoolIsRefused() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    try database.write { try $0.execute(sql: "INSERT INTO grdb_migrations VALUES ('999-from-the-future')") }
    #expect(throws: StoreError.newerSchema(path: path, unknown: ["999-from-the-future"])) {
      try QtoolDatabase.open(path: path)
    }
  }

  @Test func notADatabase() throws {
    let path = temporaryDatabasePath()
    try FileManager.default.createDirectory(
      atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
    try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
    #expect(throws: StoreError.notADatabase(path: path)) { try QtoolDatabase.open(path: path) }
  }
}
