import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum GridMergeCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "merge", abstract: "Merge the shards of a grid into the store, ranked as a local grid",
    discussion: """
      Reads the shard stores (each opened read-only; without any, this store's own shards), \
      checks that every combination of the grid is there exactly once, all run with the same \
      spec version, snapshot hash and qtool, and stores the grid under its id: its rows and \
      ranking are those the same grid run on one machine gives. Shards of a walk-forward \
      (--walk-forward with --shard) merge the same way into the report a local walk-forward \
      prints: each fold's best in sample, its test window, the stitched out-of-sample return. \
      Missing shards are listed (exit 66); shards that disagree (spec, snapshot, qtool, \
      --walk-forward) are refused (exit 65), naming both.
      """,
    options: [.value("top", .int, valueName: "n", help: "How many of the best to print.", defaultValue: "10"), CommonOptions.json],
    positionals: [
      PositionalSpec("id", help: "The grid id every shard printed."),
      PositionalSpec("shard-dbs", .path(.namedFile(extensions: ["db", "sqlite"])), arity: .variadicOptional, help: "The shards' stores (their --db)."),
    ],
    examples: [Example("qtool backtest grid merge g1a2b3c4d shards/*.db", "Merge four shards' stores into the store")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    // A refused merge into a store that did not exist leaves none behind (nor its lease directory).
    let store = try context.settings().databasePath
    let existed = FileManager.default.fileExists(atPath: store)
    do {
      return try merge(context)
    } catch {
      if !existed {
        for suffix in ["", "-wal", "-shm"] { unlink(store + suffix) }
        try? FileManager.default.removeItem(atPath: store + ".leases")
      }
      throw error
    }
  }

  static func merge(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let top = arguments.int("top"), top >= 1 else { throw UsageError("--top: expected 1 or more", commandPath: arguments.commandPath) }
    let stores = try arguments.strings("shard-dbs").map(ShardStore.open(path:))
    let operations = BacktestOperations(try context.operations())
    if try operations.isShardedWalkForward(id: arguments.string("id")!, stores: stores) {
      let report = try operations.mergeWalkForward(id: arguments.string("id")!, stores: stores)
      if context.json {
        try context.printJSON(report)
        return .success
      }
      BacktestGridCommand.printMergedWalkForward(report, context: context)
      return .success
    }
    let report = try operations.mergeGrid(id: arguments.string("id")!, stores: stores, top: top)
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let names = report.axes
    let shown = GridTable.metricColumns(first: report.rank)
    context.stdout.write(
      Table(
        columns: [Table.Column("#", .right)] + names.map { Table.Column($0, .right) } + shown.map { Table.Column($0, .right) },
        rows: report.results.map { row in
          ["\(row.row)"] + names.map { DisplayFormat.param(row.params[$0] ?? .nan) } + shown.map { DisplayFormat.metric($0, row.metrics[$0] ?? nil) }
        }
      ).render(bold: context.terminal.colorOnStdout))
    context.stdout.line(
      "grid \(report.id): \(DisplayFormat.plural(report.combinations, "combination")) from \(DisplayFormat.plural(report.shards, "shard")) on \(DisplayFormat.plural(report.bars, "bar")) of \(report.dataset), ranked by \(report.rank)"
    )
    return .success
  }
}
