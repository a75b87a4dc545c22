import Foundation
import QtoolCore
import QtoolStore

/// Maintenance operations on the store: `qtool db …` and, later, the server's admin routes.
public struct StoreOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

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
  public func backup(to destination: String, overwrite: Bool) throws -> BackupReport {
    let progress = context.progress
    let target = URL(fileURLWithPath: destination).standardizedFileURL.path
    if target == URL(fileURLWithPath: database.path).standardizedFileURL.path {
      throw OperationError.invalidArgument("the backup file must not be the store itself (\(target))", field: "path")
    }
    try AtomicFile.checkReplaceable(target, overwrite: overwrite)
    let directory = URL(fileURLWithPath: target).deletingLastPathComponent().path
    guard FileManager.default.isWritableFile(atPath: directory) else {
      throw OperationError.cannotWrite("cannot write to \(directory): it does not exist or is not writable", path: directory)
    }
    let started = context.clock.now()
    var began = false
    try database.backup(to: target) { done, total in
      try context.cancellation.check()
      if !began {
        progress.begin("backup", total: total, unit: .pages)
        began = true
      }
      progress.update(done: done)
    }
    progress.finish()
    let size = (try? FileManager.default.attributesOfItem(atPath: target)[.size] as? Int) ?? 0
    return BackupReport(path: target, bytes: size, seconds: context.clock.seconds(since: started))
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

