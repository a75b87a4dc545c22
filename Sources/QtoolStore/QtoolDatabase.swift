import Foundation
import GRDB
import QtoolCore

/// The one owner of qtool's SQLite store. Open it once per process; every write is a named
/// transaction method on it (or on one of its extensions by concern).
///
/// ```swift
/// let db = try QtoolDatabase.open(path: "/tmp/qtool.db")
/// let stored = try db.write { try QtoolDatabase.storeBars($0, into: definition, series, at: now) }
/// ```
///
/// ## Concurrency rules
/// - **WAL mode, one writer at a time per file.** Readers never block and never block the
///   writer; they see the last committed state. Within a process, writes go through one
///   connection in turn (GRDB's `DatabasePool`), reads through a pool of connections.
/// - **Writers of other processes wait** up to the busy timeout (10 s) for the write lock, then
///   fail with `StoreError.busy` (exit 75). Nothing retries a failed transaction on its own:
///   the operation fails and the caller (a cron job, a client) runs it again.
/// - **Transactions are short and whole.** Bars are stored by `storeBars` inside the
///   caller's transaction (an import: one; a download: one per file, with the record of its
///   request), so an interrupted write leaves nothing of itself. Cancellation is checked
///   between chunks; throwing rolls back.
/// - **Which process may write which dataset** is not the store's business: the engine takes a
///   lease per dataset (`LeaseManager`) before writing one, so two writers of one dataset
///   never interleave while writers of different datasets proceed side by side.
/// - **Migrations** run when a process opens the store, inside one exclusive transaction each.
public final class QtoolDatabase: Sendable {
  public let path: String
  let writer: any DatabaseWriter

  private init(path: String, writer: any DatabaseWriter) {
    self.path = path
    self.writer = writer
  }

  /// Opens (creating if needed) the store at `path` in WAL mode with a busy timeout, and
  /// applies pending migrations unless `migrate` is false.
  public static func open(path: String, migrate: Bool = true, busyTimeout: TimeInterval = 10) throws -> QtoolDatabase {
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw StoreError.cannotOpen(path: path, reason: "cannot create \(directory)")
    }
    var configuration = Configuration()
    configuration.busyMode = .timeout(busyTimeout)
    configuration.foreignKeysEnabled = true
    configuration.label = "qtool"
    // Reads through a memory map rather than a pread per page: bar chunks are megabytes
    // of overflow pages, and 1M bars read in half the time.
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = 4294967296") }
    let database = try StoreError.wrap(path: path) {
      QtoolDatabase(path: path, writer: try DatabasePool(path: path, configuration: configuration))
    }
    try database.checkNotNewer()
    if migrate { _ = try database.migrate() }
    return database
  }

  /// An in-memory store for tests that need no file.
  public static func inMemory() throws -> QtoolDatabase {
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    let database = QtoolDatabase(path: ":memory:", writer: try DatabaseQueue(configuration: configuration))
    _ = try database.migrate()
    return database
  }

  // MARK: Migrations

  /// Applies pending migrations; returns the names applied now (empty when up to date).
  @discardableResult
  public func migrate() throws -> [String] {
    try StoreError.wrap(path: path) {
      let before = try writer.read { try Migrations.migrator.appliedIdentifiers($0) }
      try Migrations.migrator.migrate(writer)
      let after = try writer.read { try Migrations.migrator.appliedIdentifiers($0) }
      return Migrations.migrator.migrations.filter { after.contains($0) && !before.contains($0) }
    }
  }

  public func appliedMigrations() throws -> [String] {
    try StoreError.wrap(path: path) {
      let applied = try writer.read { try Migrations.migrator.appliedIdentifiers($0) }
      return Migrations.migrator.migrations.filter { applied.contains($0) }
    }
  }

  public func pendingMigrations() throws -> [String] {
    let applied = Set(try appliedMigrations())
    return Migrations.migrator.migrations.filter { !applied.contains($0) }
  }

  public static var knownMigrations: [String] { Migrations.migrator.migrations }

  private func checkNotNewer() throws {
    let known = Set(Migrations.migrator.migrations)
    let unknown = try StoreError.wrap(path: path) {
      try writer.read { db -> [String] in
        guard try db.tableExists("grdb_migrations") else { return [] }
        return try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").filter { !known.contains($0) }
      }
    }
    if !unknown.isEmpty { throw StoreError.newerSchema(path: path, unknown: unknown) }
  }

  // MARK: Maintenance

  /// Facts about the store for `qtool db info`.
  public func info() throws -> StoreInfo {
    try StoreError.wrap(path: path) {
      try writer.read { db in
        let tables = try String.fetchAll(
          db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%' ORDER BY name")
        var counts: [String: Int] = [:]
        for table in tables {
          counts[table] = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.quotedDatabaseIdentifier)") ?? 0
        }
        if tables.contains("bar_chunks") {
          // Bars, not the chunks holding them, are what a user counts.
          counts["bars"] = try Int.fetchOne(db, sql: "SELECT coalesce(sum(row_count), 0) FROM bar_chunks") ?? 0
        }
        let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
        let pageCount = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
        let freePages = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
        let journal = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "unknown"
        let applied = try Migrations.migrator.appliedIdentifiers(db)
        let fileSize = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? nil
        return StoreInfo(
          path: path, sqliteVersion: QtoolDatabase.sqliteVersion, journalMode: journal,
          pageSize: pageSize, pageCount: pageCount, freePages: freePages,
          fileBytes: fileSize ?? pageSize * pageCount, walBytes: walSize ?? 0,
          appliedMigrations: Migrations.migrator.migrations.filter { applied.contains($0) },
          pendingMigrations: Migrations.migrator.migrations.filter { !applied.contains($0) },
          rowCounts: counts)
      }
    }
  }

  /// Rebuilds the file to reclaim free pages; returns the bytes before and after.
  public func vacuum() throws -> (before: Int, after: Int) {
    try StoreError.wrap(path: path) {
      let before = try info().fileBytes
      try writer.vacuum()
      try writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
      return (before, try info().fileBytes)
    }
  }

  /// Copies the store to `destination` with SQLite's online backup API: the copy is a
  /// consistent snapshot even while another process writes. The copy is written beside the
  /// destination and renamed into place, so a half-written backup never appears under its name.
  public func backup(to destination: String, progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws {
    let temporary = destination + ".partial-\(getpid())"
    try? FileManager.default.removeItem(atPath: temporary)
    TemporaryFiles.register(temporary)
    defer { TemporaryFiles.unregister(temporary) }
    do {
      try StoreError.wrap(path: destination) {
        let target = try DatabaseQueue(path: temporary)
        try writer.backup(to: target, pagesPerStep: 256) { step in
          progress?(step.completedPageCount, step.totalPageCount)
        }
        try target.close()
      }
      guard rename(temporary, destination) == 0 else {
        throw StoreError.cannotWrite(path: destination, reason: String(cString: strerror(errno)))
      }
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)
      throw error
    }
  }

  /// The version of the SQLite library linked at run time.
  public static var sqliteVersion: String {
    (try? DatabaseQueue().read { try String.fetchOne($0, sql: "SELECT sqlite_version()") }).flatMap { $0 } ?? "unknown"
  }

  /// Runs `body` inside one write transaction.
  public func write<T>(_ body: (Database) throws -> T) throws -> T {
    try StoreError.wrap(path: path) { try writer.write(body) }
  }

  public func read<T>(_ body: (Database) throws -> T) throws -> T {
    try StoreError.wrap(path: path) { try writer.read(body) }
  }
}

/// `qtool db info`'s facts.
public struct StoreInfo: Codable, Sendable, Equatable {
  public var path: String
  public var sqliteVersion: String
  public var journalMode: String
  public var pageSize: Int
  public var pageCount: Int
  public var freePages: Int
  public var fileBytes: Int
  public var walBytes: Int
  public var appliedMigrations: [String]
  public var pendingMigrations: [String]
  public var rowCounts: [String: Int]

  enum CodingKeys: String, CodingKey {
    case path, sqliteVersion = "sqlite_version", journalMode = "journal_mode", pageSize = "page_size"
    case pageCount = "page_count", freePages = "free_pages", fileBytes = "file_bytes", walBytes = "wal_bytes"
    case appliedMigrations = "applied_migrations", pendingMigrations = "pending_migrations", rowCounts = "row_counts"
  }
}

extension QtoolDatabase {
  /// Names of stored datasets, sorted; for completion and suggestions.
  public func datasetNames() throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT name FROM datasets ORDER BY name") }
  }

  /// Names of registered strategies, sorted.
  public func strategyNames() throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT name FROM strategies ORDER BY name") }
  }
}
