import GRDB

/// Where one kind of shard is stored: a table of shards, one row per (grid id, shard), and a
/// table of their results, one row per (grid id, item). Grid and walk-forward shards differ in
/// their columns, not in how a shard is replaced or read.
struct ShardTables: Sendable {
  var shards: String
  var results: String
  /// The results' column numbering the grid's items (`combination`, `item`).
  var item: String

  /// The shard table's columns that hold whole numbers, and those that may be null; the rest
  /// hold text.
  var integers: Set<String>
  var optional: Set<String> = ["snapshot_hash", "job_id", "definition", "data_hash", "results_hash"]

  static let grid = ShardTables(
    shards: "grid_shards", results: "grid_shard_results", item: "combination",
    integers: ["shard", "shards", "combinations", "first_combination", "end_combination", "bars", "warmup_bars", "completed_at"])
  static let walkForward = ShardTables(
    shards: "walk_forward_shards", results: "walk_forward_shard_results", item: "item",
    integers: ["shard", "shards", "folds", "combinations", "first_item", "end_item", "bars", "warmup_bars", "completed_at"])
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

  /// How many results of `gridID` the store holds, whichever shard wrote them.
  func shardResultCount(_ tables: ShardTables, gridID: String) throws -> Int {
    try read { db in
      guard try db.tableExists(tables.results) else { return 0 }
      return try Int.fetchOne(db, sql: "SELECT count(*) FROM \(tables.results) WHERE grid_id = ?", arguments: [gridID]) ?? 0
    }
  }

  /// The shard rows of `gridID` (every grid's when nil), by grid and shard; none in a store
  /// that never held a shard.
  /// Each row's values are checked against their columns first: a shard store is a file that
  /// travels, and a value of the wrong kind would stop the process where it is read.
  func shardRows(_ tables: ShardTables, gridID: String?) throws -> [Row] {
    let rows = try read { db -> [Row] in
      guard try db.tableExists(tables.shards) else { return [] }
      if let gridID {
        return try Row.fetchAll(db, sql: "SELECT * FROM \(tables.shards) WHERE grid_id = ? ORDER BY shard", arguments: [gridID])
      }
      return try Row.fetchAll(db, sql: "SELECT * FROM \(tables.shards) ORDER BY grid_id, shard")
    }
    for row in rows {
      for column in row.columnNames {
        let value: DatabaseValue = row[column]
        let fits: Bool
        switch value.storage {
        case .null: fits = tables.optional.contains(column)
        case .int64: fits = tables.integers.contains(column)
        case .string: fits = !tables.integers.contains(column)
        case .double, .blob: fits = false
        }
        guard fits else {
          throw StoreError.damaged(path: path, what: "its \(tables.shards) column \(column) holds \(value.description.prefix(40))")
        }
      }
    }
    return rows
  }
}

extension Row {
  /// The value at `index` (of the SELECT's columns, named `column` for the message), or
  /// `StoreError.damaged` naming the store when the row holds what the column cannot (a shard
  /// store edited by hand): reading it unchecked would stop the process. By index, not name:
  /// a merge reads 100,000 rows.
  func checked<Value: DatabaseValueConvertible>(_ index: Int, _ column: String, in path: String, _: Value.Type = Value.self) throws -> Value {
    let raw: DatabaseValue = self[index]
    guard let value = Value.fromDatabaseValue(raw) else {
      throw StoreError.damaged(path: path, what: "its column \(column) holds \(raw.description.prefix(40)), not a \(Value.self)")
    }
    return value
  }

  /// The same for a column that may be null.
  func checkedOptional<Value: DatabaseValueConvertible>(_ index: Int, _ column: String, in path: String, _: Value.Type = Value.self) throws -> Value? {
    let raw: DatabaseValue = self[index]
    guard !raw.isNull else { return nil }
    guard let value = Value.fromDatabaseValue(raw) else {
      throw StoreError.damaged(path: path, what: "its column \(column) holds \(raw.description.prefix(40)), not a \(Value.self)")
    }
    return value
  }
}
