import Foundation
import GRDB
import QtoolCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

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
/// - **Migrations** run when a process opens the store, one process at a time: opening takes an
///   exclusive lock (`qtool.db.leases/open.lock`) while it migrates, and re-reads what is
///   applied once it holds it, so processes started together on a new store (two cron jobs at
///   midnight) wait for each other instead of failing.
/// - **Read-only** opens (commands that only read) never create a store or write to one: a
///   missing store reads as an empty one, and a store in a read-only place can still be read.
public final class QtoolDatabase: Sendable {
  public let path: String
  let writer: any DatabaseWriter
  /// False for the empty stand-in a read-only open returns when no store exists yet.
  public let exists: Bool
  /// True for an in-memory store (tests, the stand-in for a missing store).
  public let isInMemory: Bool
  /// Signal counts by filter and the newest insertion number they count to (`countSignals`).
  let signalCountCache = Mutex<[String: (seq: Int64, count: Int)]>([:])
  /// Opened read-only: writes would fail.
  public var isReadOnly: Bool { writer.configuration.readonly || !exists }

  private init(path: String, writer: any DatabaseWriter, exists: Bool = true, isInMemory: Bool = false) {
    self.path = path
    self.writer = writer
    self.exists = exists
    self.isInMemory = isInMemory
  }

  /// Opens (creating if needed) the store at `path` in WAL mode with a busy timeout, and
  /// applies pending migrations unless `migrate` is false. With `readOnly`, creates and writes
  /// nothing (see the concurrency rules).
  public static func open(path: String, migrate: Bool = true, readOnly: Bool = false, busyTimeout: TimeInterval = 10) throws -> QtoolDatabase {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
      throw StoreError.cannotOpen(path: path, reason: "it is a directory; give the store's file, e.g. \(URL(fileURLWithPath: path).appendingPathComponent("qtool.db").path)")
    }
    if readOnly { return try openReadOnly(path: path, busyTimeout: busyTimeout) }
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw StoreError.cannotOpen(path: path, reason: "cannot create \(directory)")
    }
    // Creating the file and switching it to WAL, one process at a time.
    let lock = OpenLock(path: path)
    // Under the lock: no other qtool is creating it now.
    let existed = FileManager.default.fileExists(atPath: path)
    let database: QtoolDatabase
    do {
      // Before the pool switches the file to WAL, which would already change another program's database.
      try refuseForeign(path: path)
      database = try StoreError.wrap(path: path) {
        QtoolDatabase(path: path, writer: try DatabasePool(path: path, configuration: configuration(busyTimeout: busyTimeout, readOnly: false)))
      }
    } catch {
      // A refused open leaves the file system as it found it: no lock directory beside another
      // program's database, no store file where there was none.
      lock.discard()
      if !existed { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
      throw error
    }
    lock.release()
    try database.checkNotNewer()
    if migrate { _ = try database.migrate() }
    return database
  }

  private static func openReadOnly(path: String, busyTimeout: TimeInterval) throws -> QtoolDatabase {
    // An empty file is a store nobody has written yet: read it as empty, and leave it empty.
    let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
    guard FileManager.default.fileExists(atPath: path), size != 0 else {
      let stand = try inMemory()
      return QtoolDatabase(path: path, writer: stand.writer, exists: false, isInMemory: true)
    }
    let database = try StoreError.wrap(path: path) { () throws -> QtoolDatabase in
      do {
        return QtoolDatabase(path: path, writer: try DatabasePool(path: path, configuration: configuration(busyTimeout: busyTimeout, readOnly: true)))
      } catch {
        // A store whose directory cannot be written has no -shm to share: read it as an
        // immutable file, as SQLite allows when nobody can be writing it.
        var configuration = configuration(busyTimeout: busyTimeout, readOnly: true)
        configuration.prepareDatabase { _ in }
        return QtoolDatabase(path: path, writer: try DatabaseQueue(path: "file:\(path)?immutable=1", configuration: configuration))
      }
    }
    try database.checkNotNewer()
    if let pending = try? database.pendingMigrations(), !pending.isEmpty {
      // Readers need the current schema: migrate through a writable open when allowed.
      guard FileManager.default.isWritableFile(atPath: path) else { throw StoreError.needsMigration(path: path, pending: pending) }
      return try open(path: path, migrate: true, readOnly: false, busyTimeout: busyTimeout)
    }
    return database
  }

  /// Opens a snapshot file (`data snapshot`) as SQLite's `immutable=1` read-only URI: no
  /// locks, no journal, so any number of processes on any host read one file on NFS or Lustre.
  public static func openSnapshot(path: String) throws -> QtoolDatabase {
    guard FileManager.default.fileExists(atPath: path) else { throw StoreError.cannotOpen(path: path, reason: "no such file") }
    var configuration = configuration(busyTimeout: 0, readOnly: true)
    configuration.prepareDatabase { _ in }
    let escaped = path.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "?#%"))) ?? path
    return try StoreError.wrap(path: path) {
      QtoolDatabase(path: path, writer: try DatabaseQueue(path: "file:\(escaped)?immutable=1", configuration: configuration))
    }
  }

  private static func configuration(busyTimeout: TimeInterval, readOnly: Bool) -> Configuration {
    var configuration = Configuration()
    configuration.readonly = readOnly
    configuration.busyMode = .timeout(busyTimeout)
    configuration.foreignKeysEnabled = true
    configuration.label = "qtool"
    // Reads through a memory map rather than a pread per page: bar chunks are megabytes
    // of overflow pages, and 1M bars read in half the time.
    configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA mmap_size = 4294967296") }
    return configuration
  }

  /// An in-memory store for tests that need no file.
  public static func inMemory() throws -> QtoolDatabase {
    var configuration = Configuration()
    configuration.foreignKeysEnabled = true
    let database = QtoolDatabase(path: ":memory:", writer: try DatabaseQueue(configuration: configuration), isInMemory: true)
    _ = try database.migrate()
    return database
  }

  // MARK: Migrations

  /// Applies pending migrations; returns the names applied now (empty when up to date).
  @discardableResult
  public func migrate() throws -> [String] {
    // Under the open lock: another process migrating the same store finishes first, and what
    // it applied is read again here.
    let lock = isInMemory ? nil : OpenLock(path: path)
    defer { lock?.release() }
    return try StoreError.wrap(path: path) {
      let before = try writer.read { try Migrations.migrator.appliedIdentifiers($0) }
      // A new store gets its schema in one transaction; one with some migrations applied, the
      // rest one by one.
      let created = try before.isEmpty && writer.barrierWriteWithoutTransaction { try Migrations.steps.createSchema($0) }
      if !created { try Migrations.migrator.migrate(writer) }
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

  /// Refuses an existing, non-empty SQLite file that is not a qtool store, reading it only.
  private static func refuseForeign(path: String) throws {
    let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
    guard let size, size > 0 else { return }
    var configuration = Configuration()
    configuration.readonly = true
    let tables = try StoreError.wrap(path: path) { () throws -> [String] in
      let queue = try DatabaseQueue(path: path, configuration: configuration)
      defer { try? queue.close() }
      return try queue.read(foreignTables)
    }
    if !tables.isEmpty { throw StoreError.foreignDatabase(path: path, tables: tables) }
  }

  /// The tables of a database qtool never migrated (no `grdb_migrations`): empty for a qtool
  /// store and for an empty file.
  private static func foreignTables(_ db: Database) throws -> [String] {
    guard try !db.tableExists("grdb_migrations") else { return [] }
    return try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
  }

  /// Refuses a store a newer qtool migrated, and an SQLite file of another program (a mistyped
  /// `--db`): migrating would add qtool's tables to someone else's database.
  private func checkNotNewer() throws {
    let known = Set(Migrations.migrator.migrations)
    let (unknown, foreignTables) = try StoreError.wrap(path: path) {
      try writer.read { db -> ([String], [String]) in
        let foreign = try Self.foreignTables(db)
        guard foreign.isEmpty, try db.tableExists("grdb_migrations") else { return ([], foreign) }
        return (try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations").filter { !known.contains($0) }, [])
      }
    }
    if !foreignTables.isEmpty { throw StoreError.foreignDatabase(path: path, tables: foreignTables) }
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
          path: path, exists: exists, sqliteVersion: QtoolDatabase.sqliteVersion, journalMode: journal,
          pageSize: pageSize, pageCount: pageCount, freePages: freePages,
          fileBytes: fileSize ?? pageSize * pageCount, walBytes: walSize ?? 0,
          appliedMigrations: Migrations.migrator.migrations.filter { applied.contains($0) },
          pendingMigrations: Migrations.migrator.migrations.filter { !applied.contains($0) },
          rowCounts: counts)
      }
    }
  }

  /// Folds the write-ahead log into the store file, so that the file alone is the whole store
  /// once the process ends: a shard store copied off a node without its `-wal` must not lose
  /// the shard. Closing does not guarantee it, since SQLite folds the log only when the last
  /// connection to close can write, and a pool's read-only readers may close after its writer.
  /// PASSIVE never waits: frames a reader of another process still needs stay in the log.
  public func checkpoint() {
    guard !isReadOnly, !isInMemory else { return }
    try? writer.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(PASSIVE)") }
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
  /// `progress` may throw (a cancellation) to stop the copy; nothing is left behind then.
  public func backup(to destination: String, progress: ((_ done: Int, _ total: Int) throws -> Void)? = nil) throws {
    let temporary = AtomicFile.temporaryPath(for: destination)
    // SQLite's rollback journal of the copy sits beside it while the copy is written.
    let journal = temporary + "-journal"
    try? FileManager.default.removeItem(atPath: temporary)
    TemporaryFiles.register(temporary)
    TemporaryFiles.register(journal)
    defer {
      TemporaryFiles.unregister(temporary)
      TemporaryFiles.unregister(journal)
      unlink(journal)
    }
    do {
      try StoreError.wrap(path: destination) {
        let target = try DatabaseQueue(path: temporary)
        try writer.backup(to: target, pagesPerStep: 256) { step in
          try progress?(step.completedPageCount, step.totalPageCount)
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

/// An exclusive lock held while a process opens (and migrates) the store. flock is released by
/// the kernel if the process dies. Where the lock cannot be made (a read-only directory), the
/// open goes ahead without it.
final class OpenLock {
  private var descriptor: Int32

  private let directory: String
  /// What this lock created (the directory, the lock file), for `discard`.
  private var createdDirectory = false
  private var createdFile = false

  init(path: String) {
    directory = path + ".leases"
    createdDirectory = !FileManager.default.fileExists(atPath: directory)
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    createdFile = !FileManager.default.fileExists(atPath: directory + "/open.lock")
    descriptor = Glibc.open(directory + "/open.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { return }
    while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
  }

  /// Releases the lock and removes what taking it created: an open that was refused leaves
  /// nothing beside the file it refused.
  func discard() {
    release()
    if createdFile { unlink(directory + "/open.lock") }
    if createdDirectory { rmdir(directory) }
  }

  func release() {
    guard descriptor >= 0 else { return }
    flock(descriptor, LOCK_UN)
    close(descriptor)
    descriptor = -1
  }

  deinit { release() }
}

/// `qtool db info`'s facts.
public struct StoreInfo: Codable, Sendable, Equatable {
  public var path: String
  /// False when no store exists there yet (nothing was created to answer).
  public var exists: Bool
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
    case path, exists, sqliteVersion = "sqlite_version", journalMode = "journal_mode", pageSize = "page_size"
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
