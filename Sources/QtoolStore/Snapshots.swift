import Foundation
import GRDB
import QtoolCore

/// A dataset as a snapshot copies it: its definition, bars and content hash.
public struct SnapshotDataset: Sendable {
  public var definition: DatasetDefinition
  public var bars: BarSeries
  public var contentHash: String
  public init(definition: DatasetDefinition, bars: BarSeries, contentHash: String) {
    self.definition = definition
    self.bars = bars
    self.contentHash = contentHash
  }
}

extension QtoolDatabase {
  /// Writes a snapshot file at `temporary`: a store (current schema, rollback journal, so it
  /// can be opened `immutable=1`) holding just `datasets` and the snapshot's `hash`. The
  /// caller renames it into place. `cancellation` is checked between datasets and between
  /// chunks of bars; a cancelled write throws `OperationCancelled` and leaves the caller to
  /// remove the file.
  public static func writeSnapshot(
    _ datasets: [SnapshotDataset], hash: String, to temporary: String, at time: Int64, cancellation: CancellationToken = .never
  ) throws {
    try StoreError.wrap(path: temporary) {
      var configuration = Configuration()
      configuration.foreignKeysEnabled = true
      let queue = try DatabaseQueue(path: temporary, configuration: configuration)
      try Migrations.migrator.migrate(queue)
      try queue.write { db in
        for dataset in datasets {
          try cancellation.check()
          let stored = try storeBars(db, into: dataset.definition, dataset.bars, at: time, cancellation: cancellation)
          try db.execute(sql: "UPDATE datasets SET content_hash = ? WHERE id = ?", arguments: [dataset.contentHash, stored.datasetID])
        }
        try db.execute(sql: "INSERT INTO snapshot_info (key, value) VALUES ('hash', ?), ('created_at', ?)", arguments: [hash, String(time)])
      }
      try queue.close()
    }
  }

  /// The hash a snapshot file records (nil for a store that is not a snapshot).
  public func snapshotHash() throws -> String? {
    try read { db in
      guard try db.tableExists("snapshot_info") else { return nil }
      return try String.fetchOne(db, sql: "SELECT value FROM snapshot_info WHERE key = 'hash'")
    }
  }
}
