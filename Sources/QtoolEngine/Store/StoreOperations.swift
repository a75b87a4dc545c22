import Foundation
import QtoolCore
import QtoolStore

/// Maintenance operations on the store: `qtool db …` and, later, the server's admin routes.
public struct StoreOperations: Sendable {
  public let database: QtoolDatabase
  public init(database: QtoolDatabase) { self.database = database }

  public func info() throws -> StoreInfo { try database.info() }

  /// Applies pending migrations.
  public func migrate() throws -> MigrationReport {
    let applied = try database.migrate()
    return MigrationReport(appliedNow: applied, allApplied: try database.appliedMigrations())
  }

  public func vacuum() throws -> VacuumReport {
    let (before, after) = try database.vacuum()
    return VacuumReport(bytesBefore: before, bytesAfter: after)
  }

  /// Writes a consistent copy of the store to `destination` (online backup API).
  public func backup(to destination: String, overwrite: Bool, progress: any ProgressReporter) throws -> BackupReport {
    let target = URL(fileURLWithPath: destination).standardizedFileURL.path
    if target == URL(fileURLWithPath: database.path).standardizedFileURL.path {
      throw OperationError.invalidArgument("the backup file must not be the store itself (\(target))")
    }
    if FileManager.default.fileExists(atPath: target), !overwrite {
      throw OperationError.alreadyExists("\(target) exists; pass --force to replace it")
    }
    let directory = URL(fileURLWithPath: target).deletingLastPathComponent().path
    guard FileManager.default.isWritableFile(atPath: directory) else {
      throw OperationError.cannotWrite("cannot write to \(directory): it does not exist or is not writable")
    }
    let started = Date()
    var began = false
    try database.backup(to: target) { done, total in
      if !began {
        progress.begin("backup", total: total, unit: .pages)
        began = true
      }
      progress.update(done: done)
    }
    progress.finish()
    let size = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? 0
    return BackupReport(path: target, bytes: size, seconds: Date().timeIntervalSince(started))
  }
}

public struct MigrationReport: Codable, Sendable, Equatable {
  public var appliedNow: [String]
  public var allApplied: [String]
  enum CodingKeys: String, CodingKey { case appliedNow = "applied_now", allApplied = "applied" }
}

public struct VacuumReport: Codable, Sendable, Equatable {
  public var bytesBefore: Int
  public var bytesAfter: Int
  enum CodingKeys: String, CodingKey { case bytesBefore = "bytes_before", bytesAfter = "bytes_after" }
}

public struct BackupReport: Codable, Sendable, Equatable {
  public var path: String
  public var bytes: Int
  public var seconds: Double
}

/// Errors of operations that are about the request rather than a domain.
public enum OperationError: QtoolError, Equatable {
  case invalidArgument(String)
  case alreadyExists(String)
  case notFound(String)
  case cannotWrite(String)

  public var exitStatus: ExitStatus {
    switch self {
    case .invalidArgument: return .usage
    case .alreadyExists, .cannotWrite: return .cannotCreate
    case .notFound: return .noInput
    }
  }

  public var description: String {
    switch self {
    case .invalidArgument(let message), .alreadyExists(let message), .notFound(let message), .cannotWrite(let message):
      return message
    }
  }
}
