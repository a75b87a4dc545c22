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
  case sqlite(String)

  public var exitStatus: ExitStatus {
    switch self {
    case .cannotOpen, .readOnly, .cannotWrite: return .cannotCreate
    case .notADatabase, .newerSchema: return .dataError
    case .busy: return .temporaryFailure
    case .sqlite: return .failure
    }
  }

  public var description: String {
    switch self {
    case .cannotOpen(let path, let reason):
      return "cannot open the store at \(path): \(reason). Check the directory exists and is writable, or pass --db PATH."
    case .notADatabase(let path):
      return "\(path) is not a qtool store (not an SQLite database). Pass --db with another path."
    case .busy(let path):
      return "the store at \(path) is locked by another process; retry when it finishes."
    case .readOnly(let path):
      return "the store at \(path) is read-only; check its permissions or pass --db PATH."
    case .cannotWrite(let path, let reason):
      return "cannot write \(path): \(reason)"
    case .newerSchema(let path, let unknown):
      return "the store at \(path) was written by a newer qtool (migrations \(unknown.joined(separator: ", "))); upgrade qtool."
    case .sqlite(let message):
      return "store error: \(message)"
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
