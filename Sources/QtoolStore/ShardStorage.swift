import GRDB

/// Where one kind of shard is stored: a table of shards, one row per (grid id, shard), and a
/// table of their results, one row per (grid id, item). Grid and walk-forward shards differ in
/// their columns, not in how a shard is replaced or read.
struct ShardTables: Sendable {
  var shards: String
  var results: String
  /// The results' column numbering the grid's items (`combination`, `item`).
  var item: String

  static let grid = ShardTables(shards: "grid_shards", results: "grid_shard_results", item: "combination")
  static let walkForward = ShardTables(shards: "walk_forward_shards", results: "walk_forward_shard_results", item: "item")
}

extension QtoolDatabase {
  /// Writes shard `shard` of `gridID` (its `record` columns) and its `results` (item, then
  /// `resultColumns`) in one transaction, after removing what an earlier run of the same shard
  /// wrote for `items`: a rerun after a crash writes nothing twice.
  func replaceShard(
    _ tables: ShardTables, gridID: String, shard: Int, items: Range<Int>, record: [String: (any DatabaseValueConvertible)?],
    resultColumns: [String], results: [(item: Int, values: [(any DatabaseValueConvertible)?])]
  ) throws {
    let columns = record.keys.sorted()
    try write { db in
      try db.execute(sql: "DELETE FROM \(tables.shards) WHERE grid_id = ? AND shard = ?", arguments: [gridID, shard])
      try db.execute(
        sql: "DELETE FROM \(tables.results) WHERE grid_id = ? AND \(tables.item) >= ? AND \(tables.item) < ?",
        arguments: [gridID, items.lowerBound, items.upperBound])
      try db.execute(
        sql: """
          INSERT INTO \(tables.shards) (grid_id, shard, \(columns.joined(separator: ", ")))
          VALUES (?, ?\(String(repeating: ", ?", count: columns.count)))
          """,
        arguments: StatementArguments([gridID, shard] + columns.map { record[$0]! }))
      let statement = try db.makeStatement(
        sql: """
          INSERT INTO \(tables.results) (grid_id, \(tables.item), \(resultColumns.joined(separator: ", ")))
          VALUES (?, ?\(String(repeating: ", ?", count: resultColumns.count)))
          """)
      for result in results {
        try statement.execute(arguments: StatementArguments([gridID, result.item] + result.values))
      }
    }
  }

  /// The shard rows of `gridID` (every grid's when nil), by grid and shard; none in a store
  /// that never held a shard.
  func shardRows(_ tables: ShardTables, gridID: String?) throws -> [Row] {
    try read { db in
      guard try db.tableExists(tables.shards) else { return [] }
      if let gridID {
        return try Row.fetchAll(db, sql: "SELECT * FROM \(tables.shards) WHERE grid_id = ? ORDER BY shard", arguments: [gridID])
      }
      return try Row.fetchAll(db, sql: "SELECT * FROM \(tables.shards) ORDER BY grid_id, shard")
    }
  }
}
