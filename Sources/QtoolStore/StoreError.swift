import GRDB
import QtoolCore

/// What can go wrong with the store, in words a user can act on.
public enum StoreError: QtoolError, Equatable {
  case cannotOpen(path: String, reason: String)
  case notADatabase(path: String)
  case busy(path: String)
  case readOnly(path: String)
  case cannotWrite(path: String, reason: String)
  case newerSchema(path: String, unknown: [String])
  /// An SQLite database of another program: qtool does not add its tables to it.
  case foreignDatabase(path: String, tables: [String])
  case needsMigration(path: String, pending: [String])
  /// A row holds what its column cannot hold (text where a number belongs): edited by hand, or broken.
  case damaged(path: String, what: String)
  case sqlite(String)

  public var category: ErrorCategory {
    switch self {
    case .cannotOpen, .readOnly, .cannotWrite: return .cannotWrite
    case .notADatabase, .newerSchema, .foreignDatabase, .damaged: return .invalidInput
    case .needsMigration: return .cannotWrite
    case .busy: return .conflict
    case .sqlite: return .failure
    }
  }

  public var code: String {
    switch self {
    case .cannotOpen: return "store_cannot_open"
    case .notADatabase: return "store_not_a_database"
    case .busy: return "store_busy"
    case .readOnly: return "store_read_only"
    case .cannotWrite: return "cannot_write"
    case .newerSchema: return "store_newer_schema"
    case .foreignDatabase: return "store_foreign_database"
    case .needsMigration: return "store_needs_migration"
    case .damaged: return "store_damaged"
    case .sqlite: return "store_error"
    }
  }

  public var message: String {
    switch self {
    case .cannotOpen(let path, let reason): return "cannot open the store at \(path): \(reason)"
    case .notADatabase(let path): return "\(path) is not a qtool store (not an SQLite database)"
    case .busy(let path): return "the store at \(path) is locked by another process"
    case .readOnly(let path): return "the store at \(path) is read-only"
    case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
    case .newerSchema(let path, let unknown):
      return "the store at \(path) was written by a newer qtool (migrations \(unknown.joined(separator: ", ")))"
    case .foreignDatabase(let path, let tables):
      let shown = tables.prefix(5).joined(separator: ", ") + (tables.count > 5 ? ", …" : "")
      return "\(path) is an SQLite database but not a qtool store (it holds \(tables.count == 1 ? "the table" : "the tables") \(shown)); qtool leaves it as it is"
    case .needsMigration(let path, let pending):
      return "the store at \(path) needs migrations (\(pending.joined(separator: ", "))) and cannot be written"
    case .damaged(let path, let what): return "\(path) is damaged: \(what)"
    case .sqlite(let message): return "store error: \(message)"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .cannotOpen(let path, _), .notADatabase(let path), .busy(let path), .readOnly(let path), .cannotWrite(let path, _),
      .newerSchema(let path, _), .needsMigration(let path, _), .foreignDatabase(let path, _), .damaged(let path, _):
      return ["path": .string(path)]
    case .sqlite: return [:]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .cannotOpen: return "check the directory exists and is writable, or choose another store with {db}"
    case .notADatabase, .foreignDatabase: return "choose another store with {db}"
    case .busy: return "retry when the other process finishes"
    case .readOnly: return "check its permissions, or choose another store with {db}"
    case .newerSchema: return "upgrade qtool"
    case .needsMigration: return "run `qtool db migrate` as a user who can write it"
    case .damaged: return "write it again (for a shard store: run that shard again)"
    case .cannotWrite, .sqlite: return nil
    }
  }

  /// Maps SQLite failures to the error a user should see.
  static func wrap<T>(path: String, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as StoreError {
      throw error
    } catch let error as DatabaseError {
      switch error.resultCode {
      case .SQLITE_NOTADB, .SQLITE_CORRUPT: throw StoreError.notADatabase(path: path)
      case .SQLITE_BUSY, .SQLITE_LOCKED: throw StoreError.busy(path: path)
      case .SQLITE_READONLY: throw StoreError.readOnly(path: path)
      case .SQLITE_CANTOPEN, .SQLITE_PERM: throw StoreError.cannotOpen(path: path, reason: error.message ?? "\(error.resultCode)")
      case .SQLITE_FULL, .SQLITE_IOERR: throw StoreError.cannotWrite(path: path, reason: error.message ?? "\(error.resultCode)")
      default: throw StoreError.sqlite(error.message ?? "\(error)")
      }
    }
  }
}
