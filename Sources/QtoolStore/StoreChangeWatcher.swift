import Foundation
import GRDBSQLite

/// Tells when another connection — another process's `data download`, a runner, `data import` —
/// has committed to the store: `PRAGMA data_version` on a connection of its own changes after
/// every commit by any other connection. GRDB's observation sees only the writes of its own
/// process; this sees everyone's, at the cost of one tiny query per poll.
///
/// ```swift
/// let watcher = try StoreChangeWatcher(path: database.path)
/// if try watcher.changed() { … read what is new … }
/// ```
public final class StoreChangeWatcher: @unchecked Sendable {
  private var handle: OpaquePointer?
  private var statement: OpaquePointer?
  private var last: Int64

  public init(path: String) throws {
    guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let handle else {
      let reason = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
      sqlite3_close(handle)
      throw StoreError.cannotOpen(path: path, reason: reason)
    }
    sqlite3_busy_timeout(handle, 1000)
    statement = try RawSQL.prepare(handle, "PRAGMA data_version")
    last = 0
    last = try version()
  }

  deinit {
    sqlite3_finalize(statement)
    sqlite3_close(handle)
  }

  private func version() throws -> Int64 {
    defer { sqlite3_reset(statement) }
    guard sqlite3_step(statement) == SQLITE_ROW else { throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle))) }
    return sqlite3_column_int64(statement, 0)
  }

  /// True when a commit happened since the last call (or since it was made).
  public func changed() throws -> Bool {
    let now = try version()
    defer { last = now }
    return now != last
  }
}
