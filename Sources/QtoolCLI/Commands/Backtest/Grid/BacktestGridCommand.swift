import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum BacktestGridCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "run", abstract: "Run every combination of param values on all cores, best first",
    discussion:
      "--shard K/N runs only shard K of N: the combinations ⌊C·(K−1)/N⌋ up to ⌊C·K/N⌋ of the C in the grid's order (the cartesian product of the --grid axes as given, the last varying fastest, less those failing --where), storing them in the store of --db with the grid id every shard shares; give each shard its own store (SQLite on a shared file system must not have two writers) and merge them with backtest grid merge. --shard auto takes K and N from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX (0-based) with --shards N. Each --grid gives one param's values as FROM..TO:STEP (inclusive) or a,b,c. --where keeps only combinations that satisfy a condition on the params. All results are stored; the best --top are printed; combinations whose ranking metric is undefined (n/a: they never traded) rank last. With --from, every combination warms its indicators up on the stored bars before it (as many as the combination looking back furthest needs), as backtest run does; --no-warmup starts them cold. --walk-forward warms each window up on the bars before it the same way.",
    options: [
      .repeatable("grid", valueName: "name=values", help: "A param and its values, e.g. fast=5..50:1."),
      .value("where", valueName: "condition", help: "Keep combinations satisfying this, e.g. 'fast < slow'."),
      .value("rank", valueName: "metric", help: "The metric to rank by (qtool help metrics).", defaultValue: "sharpe"),
      .value("top", .int, valueName: "n", help: "How many of the best to print.", defaultValue: "10"),
      .value("jobs", short: "j", .int, valueName: "n", help: "Worker threads (default: all cores)."),
      .value("walk-forward", valueName: "train/test", help: "Rolling windows, e.g. 2y/6m: pick the best on train, measure it on test."),
      .value("dataset", valueName: "dataset", help: "Run on this dataset instead of SYMBOL-TIMEFRAME.", completion: .dynamic("datasets")),
      BacktestOptions.from, DataOptions.to, BacktestOptions.noWarmup,
      .value("capital", .double, valueName: "amount", help: "Starting capital."),
      .flag("allow-gaps", help: "Run even when the data has gaps."),
      .value(
        "max-combinations", .int, valueName: "n", help: "Refuse grids larger than this (counted before --where).",
        defaultValue: "\(GridRequest.defaultMaxCombinations)"),
      .value("shard", valueName: "k/n", help: "Run only shard K of N of the combinations into --db, or auto (Slurm array, Kubernetes index)."),
      .value("shards", .int, valueName: "n", help: "The number of shards, with --shard auto under Kubernetes."),
      .value("snapshot", .path(.file(extensions: ["db", "sqlite"])), valueName: "file", help: "With --shard: read bars from this snapshot (read-only)."),
      .value("snapshot-hash", valueName: "hash", help: "With --snapshot: refuse a snapshot with another hash."),
      CommonOptions.json,
    ],
    positionals: [
      PositionalSpec("strategy", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file or a registered strategy's name.")
    ],
    examples: [
      Example(
        "qtool backtest grid sma.yaml --grid fast=5..50:1 --grid slow=20..200:5 --where 'fast < slow' --rank sharpe",
        "1,590 SMA pairs, best Sharpe first"),
      Example(
        "qtool --db shard2.db backtest grid sma.yaml --grid fast=5..50:1 --grid slow=20..200:5 --shard 2/4 --snapshot goog.snapshot.db",
        "Shard 2 of 4 into its own store; merge with backtest grid merge"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let axes = try arguments.strings("grid").map { try BacktestOptions.axis($0, arguments) }
    guard !axes.isEmpty else { throw UsageError("give at least one --grid name=values", commandPath: arguments.commandPath) }
    let request = GridRequest(
      strategy: try StrategyArgument.reference(arguments.string("strategy")!, context: context), dataset: arguments.string("dataset"),
      from: DataOptions.milliseconds(arguments, "from"),
      to: DataOptions.milliseconds(arguments, "to"), capital: try DataOptions.capital(arguments), axes: axes, condition: arguments.string("where"),
      rank: arguments.string("rank")!, top: max(1, arguments.int("top")!),
      jobs: arguments.int("jobs") ?? ProcessInfo.processInfo.activeProcessorCount,
      allowGaps: arguments.flag("allow-gaps"), noWarmup: arguments.flag("no-warmup"), maxCombinations: max(1, arguments.int("max-combinations")!))
    if let text = arguments.string("shard") {
      guard arguments.string("walk-forward") == nil else {
        throw UsageError("--shard splits a grid; a sharded walk-forward is not available, run it with --walk-forward alone", commandPath: arguments.commandPath)
      }
      let shard = try GridShard.parse(text, shards: arguments.int("shards"), environment: context.environment)
      let snapshot = try arguments.string("snapshot").map { path in
        guard FileManager.default.fileExists(atPath: path) else {
          throw OperationError.notFound("no snapshot \(path)", code: "file_not_found", details: ["path": .string(path)], hint: "write one with `qtool data snapshot DATASET -o FILE`")
        }
        return try QtoolDatabase.openSnapshot(path: path)
      }
      let report = try BacktestOperations(try context.operations()).gridShard(
        request, shard: shard, data: snapshot, snapshotHash: arguments.string("snapshot-hash"))
      if context.json {
        try context.printJSON(report)
      } else {
        context.stdout.line(
          "grid \(report.gridID) shard \(report.shard)/\(report.shards): combinations \(report.first + 1)…\(report.end) of \(report.combinations) on \(report.bars) bars of \(report.dataset) in \(Format.duration(report.seconds))")
      }
      return .success
    }
    for name in ["shards", "snapshot", "snapshot-hash"] where arguments.string(name) != nil {
      throw UsageError("--\(name) applies with --shard", commandPath: arguments.commandPath)
    }
    if let text = arguments.string("walk-forward") {
      let parts = text.split(separator: "/").map(String.init)
      guard parts.count == 2, let train = PeriodLength(parts[0]), let test = PeriodLength(parts[1]) else {
        throw UsageError("--walk-forward: expected TRAIN/TEST like 2y/6m or 180d/30d, got '\(text)'", commandPath: arguments.commandPath)
      }
      let report = try BacktestOperations(try context.operations()).walkForward(request, train: train, test: test)
      if context.json {
        try context.printJSON(report)
        return .success
      }
      let names = axes.map(\.name)
      context.stdout.write(
        Table(
          columns: [Table.Column("TRAIN"), Table.Column("TEST")] + names.map { Table.Column($0, .right) }
            + [Table.Column("IN \(report.rank)", .right), Table.Column("OUT \(report.rank)", .right), Table.Column("OUT RETURN", .right)],
          rows: report.windows.map { window in
            [window.train.text, window.test.text] + names.map { Format.compact(window.parameters[$0]!) }
              + [
                Format.metric(window.inSampleRank, places: 3),
                Format.metric(Metrics.reader(report.rank).map { $0(window.outOfSample) } ?? .nan, places: 3),
                Format.metric(window.outOfSample.totalReturn * 100, places: 2, suffix: "%"),
              ]
          }
        ).render(bold: context.terminal.colorOnStdout))
      context.stdout.line("out-of-sample return over \(report.windows.count) windows: \(Format.decimal(report.outOfSampleReturn * 100, places: 2))%")
      if report.warmupBars > 0 {
        context.stdout.line("each window's indicators warmed up on the \(report.warmupBars) bars before it (a test window: its combination's own)")
      }
      return .success
    }
    let report = try BacktestOperations(try context.operations()).grid(request)
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let names = axes.map(\.name)
    let columns =
      [Table.Column("#", .right)] + names.map { Table.Column($0, .right) }
      + ["sharpe", "total_return", "max_drawdown", "trades"].map { Table.Column($0, .right) }
    let rows = report.results.enumerated().map { index, result in
      ["\(index + 1)"] + names.map { Format.compact(result.parameters[$0]!) }
        + [
          Format.metric(result.metrics.sharpe, places: 3), Format.metric(result.metrics.totalReturn * 100, places: 2, suffix: "%"),
          Format.metric(result.metrics.maxDrawdown * 100, places: 2, suffix: "%"), "\(result.metrics.trades)",
        ]
    }
    context.stdout.write(Table(columns: columns, rows: rows).render(bold: context.terminal.colorOnStdout))
    context.stdout.line(
      "grid \(report.id): \(report.combinations) combinations on \(report.bars) bars of \(report.dataset) in \(Format.duration(report.seconds)), ranked by \(report.rank)"
        + (report.warmupBars > 0 ? "; indicators warmed up on the \(report.warmupBars) bars before them" : "")
    )
    return .success
  }
}
