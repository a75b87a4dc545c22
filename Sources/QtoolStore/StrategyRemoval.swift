import Foundation
import GRDB
import QtoolCore

extension QtoolDatabase {
  /// Deletes a registered strategy and its versions; recorded runs keep their own copy of the spec.
  public func deleteStrategy(name: String) throws -> StrategyRecord {
    let record = try strategy(named: name)
    try write { db in try db.execute(sql: "DELETE FROM strategies WHERE name = ?", arguments: [name]) }
    return record
  }
}
