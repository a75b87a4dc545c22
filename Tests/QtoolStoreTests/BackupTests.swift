import Foundation
import GRDB
import QtoolCore
import Synchronization
import Testing

@testable import QtoolStore

@Suite struct BackupTests {
  /// Another connection keeps committing 1,000-bar transactions while the backup runs; the copy
  /// must be a consistent snapshot: intact, and holding whole transactions only.
  @Test func backupIsConsistentWhileAnotherConnectionWrites() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    try insertDataset(database)
    try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, syntheticSeries(count: 50_000)) }

    let writer = try DatabaseQueue(path: path)
    let stop = Mutex(false)
    let done = DispatchSemaphore(value: 0)
    DispatchQueue.global().async {
      var batch = 0
      while !stop.withLock({ $0 }) && batch < 200 {
        let start = 2_000_000_000_000 + Int64(batch) * 1_000 * 3_600_000
        try? writer.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, syntheticSeries(count: 1_000, start: start)) }
        batch += 1
      }
      done.signal()
    }
    let target = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("backup.db").path
    var steps = 0
    try database.backup(to: target) { _, _ in steps += 1 }
    stop.withLock { $0 = true }
    done.wait()

    #expect(steps > 0)
    let copy = try DatabaseQueue(path: target)
    let check = try copy.read { try String.fetchOne($0, sql: "PRAGMA integrity_check") }
    #expect(check == "ok")
    let count = try copy.read { try Int.fetchOne($0, sql: "SELECT sum(row_count) FROM bar_chunks") } ?? 0
    #expect(count >= 50_000)
    #expect((count - 50_000) % 1_000 == 0, "the copy holds part of a transaction: \(count) bars")
  }

  @Test func backupToAMissingDirectoryFailsWithoutLeavingFiles() throws {
    let database = try QtoolDatabase.open(path: temporaryDatabasePath())
    let target = "/nonexistent-dir-\(UUID().uuidString)/copy.db"
    #expect(throws: StoreError.self) { try database.backup(to: target) }
    #expect(!FileManager.default.fileExists(atPath: target))
  }

  /// A store copied without its `-wal` (a shard store scp'd off a node) holds what was written
  /// once the writer has checkpointed, even while the writer still has the store open.
  @Test func aCheckpointedStoreIsWholeInItsMainFile() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    try insertDataset(database)
    try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, syntheticSeries(count: 5_000)) }
    database.checkpoint()
    let copy = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("main-file-only.db").path
    try FileManager.default.copyItem(atPath: path, toPath: copy)
    let count = try DatabaseQueue(path: copy).read { try Int.fetchOne($0, sql: "SELECT sum(row_count) FROM bar_chunks") } ?? 0
    #expect(count == 5_000)
  }
}
