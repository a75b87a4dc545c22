import GRDB
import GRDBSQLite

/// The few calls every bulk loop on the raw handle makes (bars, trades, curves):
/// GRDB's statement layer costs more than the inserts themselves there.
enum RawSQL {
  /// A `LIKE … ESCAPE '\\'` pattern matching ids that start with `prefix` taken literally (an id
  /// typed with `%` or `_` must not match everything).
  static func prefixPattern(_ prefix: String) -> String {
    prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%")
      .replacingOccurrences(of: "_", with: "\\_") + "%"
  }

  /// Prepares `sql`; the caller finalizes the statement.
  static func prepare(_ handle: OpaquePointer, _ sql: String) throws -> OpaquePointer {
    var statement: OpaquePointer?
    guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
      throw StoreError.sqlite(String(cString: sqlite3_errmsg(handle)))
    }
    return statement
  }

  /// Throws SQLite's error unless a step finished.
  static func expectDone(_ code: Int32, _ handle: OpaquePointer) throws {
    guard code == SQLITE_DONE else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(handle))) }
  }

  /// Binds bytes as a blob without copying them: they must stay valid until the step.
  static func bindBlob(_ statement: OpaquePointer, _ index: Int32, _ bytes: UnsafeRawBufferPointer) {
    // An empty buffer has no address; SQLite takes a zero-length blob from any pointer.
    sqlite3_bind_blob64(statement, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 8), sqlite3_uint64(bytes.count), nil)
  }
}
