import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum BacktestGridCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "run", abstract: "Run every combination of param values on all cores, best first",
    discussion:
      "--shard K/N runs only shard K of N: the combinations ⌊C·(K−1)/N⌋ up to ⌊C·K/N⌋ of the C in the grid's order (the cartesian product of the --grid axes as given, the last varying fastest, less those failing --where), storing them in the store of --db with the grid id every shard shares; give each shard its own store (SQLite on a shared file system must not have two writers) and merge them with backtest grid merge. --shard auto takes K and N from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT, or from JOB_COMPLETION_INDEX (0-based) with --shards N. With --walk-forward, --shard and --slurm split the F folds × C combinations instead, fold major (item f·C + c is combination c in fold f; --shards F gives one fold per shard): each item is measured on its fold's train and test windows, and backtest grid merge picks each fold's best and prints the local walk-forward's report. Each --grid gives one param's values as FROM..TO:STEP (inclusive) or a,b,c. --where keeps only combinations that satisfy a condition on the params. All results are stored; the best --top are printed; combinations whose ranking metric is undefined (n/a: they never traded) rank last. With --from, every combination warms its indicators up on the stored bars before it (as many as the combination looking back furthest needs), as backtest run does; --no-warmup starts them cold. --walk-forward warms each window up on the bars before it the same way.",
    options: [
      .repeatable("grid", valueName: "name=values", help: "A param and its values, e.g. fast=5..50:1."),
      .value("where", valueName: "condition", help: "Keep combinations satisfying this, e.g. 'fast < slow'."),
      .value("rank", valueName: "metric", help: "The metric to rank by (qtool help metrics).", defaultValue: "sharpe",
        completion: .choices(Metrics.names)),
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
      .value(
        "shard", valueName: "k/n",
        help:
          "Run only shard K of N of the combinations (with --walk-forward: of folds × combinations) into --db, or auto (Slurm array, Kubernetes index)."
      ),
      .value("shards", .int, valueName: "n", help: "The number of shards, with --shard auto under Kubernetes."),
      .value(
        "snapshot", .path(.namedFile(extensions: ["db", "sqlite"])), valueName: "file", help: "With --shard: read bars from this snapshot (read-only)."),
      .value("snapshot-hash", valueName: "hash", help: "With --snapshot: refuse a snapshot with another hash."),
      .flag("slurm", help: "Submit the grid (or walk-forward) to Slurm as an array job of --shards tasks and a merge step."),
      .value("partition", valueName: "name", help: "With --slurm: the Slurm partition."),
      .value("time", valueName: "limit", help: "With --slurm: each task's time limit, e.g. 2:00:00."),
      .value("cpus-per-task", .int, valueName: "n", help: "With --slurm: CPUs per task (its worker threads)."),
      .repeatable("sbatch-arg", valueName: "directive", help: "With --slurm: one more #SBATCH directive, e.g. --mem=4G."),
      .value(
        "work-dir", .path(.directory), valueName: "dir", help: "With --slurm: a directory every node sees (default: qtool-grid-ID by the store)."),
      .flag("dry-run", help: "With --slurm: print the sbatch scripts; write and submit nothing."),
      CommonOptions.json,
    ],
    positionals: [
      PositionalSpec(
        "strategy", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file (- for stdin) or a registered strategy's name.",
        completion: .dynamic("strategies"))
    ],
    examples: [
      Example(
        "qtool backtest grid sma.yaml --grid fast=5..50:1 --grid slow=20..200:5 --where 'fast < slow' --rank sharpe",
        "1,590 SMA pairs, best Sharpe first"),
      Example(
        "qtool --db shard2.db backtest grid sma.yaml --grid fast=5..50:1 --grid slow=20..200:5 --shard 2/4 --snapshot goog.snapshot.db",
        "Shard 2 of 4 into its own store; merge with backtest grid merge"),
      Example(
        "qtool backtest grid sma.yaml --grid fast=5..50:5 --grid slow=20..200:20 --walk-forward 2y/6m --slurm --shards 8 --work-dir /shared/wf1",
        "A walk-forward's folds × combinations as a Slurm array of 8 tasks and a merge step"),
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
    if arguments.flag("slurm") {
      return try submit(request, context: context)
    }
    for name in ["partition", "time", "cpus-per-task", "work-dir"] where arguments.isGiven(name) {
      throw UsageError("--\(name) applies with --slurm", commandPath: arguments.commandPath)
    }
    if arguments.flag("dry-run") || !arguments.strings("sbatch-arg").isEmpty {
      throw UsageError("--dry-run and --sbatch-arg apply with --slurm", commandPath: arguments.commandPath)
    }
    if let text = arguments.string("shard") {
      let shard = try GridShard.parse(text, shards: arguments.int("shards"), environment: context.environment)
      // Checked before the shard's store is opened: a refused snapshot creates no --db.
      let snapshot = try ShardSnapshot.open(path: arguments.string("snapshot"), expected: arguments.string("snapshot-hash"))
      if let (train, test) = try walkForward(arguments) {
        let report = try BacktestOperations(try context.operations()).walkForwardShard(
          request, train: train, test: test, shard: shard, data: snapshot)
        if context.json {
          try context.printJSON(report)
        } else {
          context.stdout.line(
            "walk-forward \(report.gridID) shard \(report.shard)/\(report.shards): \(Self.block(report.first, report.end, of: report.items, "work items")) (\(report.folds) folds × \(report.combinations) combinations) on \(report.bars) bars of \(report.dataset) in \(Format.duration(report.seconds))"
          )
        }
        return .success
      }
      let report = try BacktestOperations(try context.operations()).gridShard(
        request, shard: shard, data: snapshot)
      if context.json {
        try context.printJSON(report)
      } else {
        context.stdout.line(
          "grid \(report.gridID) shard \(report.shard)/\(report.shards): \(Self.block(report.first, report.end, of: report.combinations, "combinations")) on \(report.bars) bars of \(report.dataset) in \(Format.duration(report.seconds))"
        )
      }
      return .success
    }
    for name in ["shards", "snapshot", "snapshot-hash"] where arguments.isGiven(name) {
      throw UsageError("--\(name) applies with --shard", commandPath: arguments.commandPath)
    }
    if let (train, test) = try walkForward(arguments) {
      let report = try BacktestOperations(try context.operations()).walkForward(request, train: train, test: test)
      if context.json {
        try context.printJSON(report)
        return .success
      }
      printWalkForward(report, names: axes.map(\.name), context: context)
      return .success
    }
    let report = try BacktestOperations(try context.operations()).grid(request)
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let names = axes.map(\.name)
    let shown = GridTable.metricColumns(first: report.rank)
    let columns = [Table.Column("#", .right)] + names.map { Table.Column($0, .right) } + shown.map { Table.Column($0, .right) }
    let rows = report.results.enumerated().map { index, result in
      let values = result.metrics.allValues
      return ["\(index + 1)"] + names.map { DisplayFormat.param(result.parameters[$0]!) } + shown.map { DisplayFormat.metric($0, values[$0]) }
    }
    context.stdout.write(Table(columns: columns, rows: rows).render(bold: context.terminal.colorOnStdout))
    context.stdout.line(
      "grid \(report.id): \(DisplayFormat.plural(report.combinations, "combination")) on \(DisplayFormat.plural(report.bars, "bar")) of \(report.dataset) in \(Format.duration(report.seconds)), ranked by \(report.rank)"
        + (report.warmupBars > 0 ? "; indicators warmed up on the \(report.warmupBars) bars before them" : "")
    )
    return .success
  }

  /// `--walk-forward TRAIN/TEST`, parsed, or nil without it.
  static func walkForward(_ arguments: ParsedArguments) throws -> (PeriodLength, PeriodLength)? {
    guard let text = arguments.string("walk-forward") else { return nil }
    let parts = text.split(separator: "/").map(String.init)
    guard parts.count == 2, let train = PeriodLength(parts[0]), let test = PeriodLength(parts[1]) else {
      throw UsageError("--walk-forward: expected TRAIN/TEST like 2y/6m or 180d/30d, got '\(text)'", commandPath: arguments.commandPath)
    }
    return (train, test)
  }

  /// A walk-forward's windows as a table, and its stitched out-of-sample return (a local run's
  /// and a merged sharded one's alike).
  static func printWalkForward(_ report: WalkForwardReport, names: [String], context: CommandContext) {
    context.stdout.write(
      Table(
        columns: [Table.Column("TRAIN"), Table.Column("TEST")] + names.map { Table.Column($0, .right) }
          + [Table.Column("IN \(report.rank)", .right), Table.Column("OUT \(report.rank)", .right), Table.Column("OUT RETURN", .right)],
        rows: report.windows.map { window in
          [window.train.text, window.test.text] + names.map { DisplayFormat.param(window.parameters[$0]!) }
            + [
              Format.metric(window.inSampleRank, places: 3),
              Format.metric(Metrics.reader(report.rank).map { $0(window.outOfSample) } ?? .nan, places: 3),
              Format.metric(window.outOfSample.totalReturn * 100, places: 2, suffix: "%"),
            ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    context.stdout.line("out-of-sample return over \(DisplayFormat.plural(report.windows.count, "window")): \(Format.decimal(report.outOfSampleReturn * 100, places: 2))%")
    if report.warmupBars > 0 {
      context.stdout.line("each window's indicators warmed up on the \(report.warmupBars) bars before it (a test window: its combination's own)")
    }
  }

  /// A merged walk-forward as `backtest grid merge` prints it, and `backtest grid show` again.
  static func printMergedWalkForward(_ report: WalkForwardReport, context: CommandContext) {
    printWalkForward(report, names: report.axes ?? [], context: context)
    context.stdout.line(
      "walk-forward \(report.id ?? ""): \(DisplayFormat.plural(report.combinations, "combination")) in \(DisplayFormat.plural(report.windows.count, "fold")) from \(DisplayFormat.plural(report.shards ?? 0, "shard"))")
  }

  /// `--slurm`: the grid's options as each task gives them, then one submission.
  static func submit(_ request: GridRequest, context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard arguments.string("shard") == nil else {
      throw UsageError("--slurm submits a whole grid (or walk-forward): it takes no --shard", commandPath: arguments.commandPath)
    }
    let walkForward = try walkForward(arguments).map { "\($0.0)/\($0.1)" }
    guard let shards = arguments.int("shards") else {
      throw UsageError("--slurm needs the number of array tasks: --shards N", commandPath: arguments.commandPath)
    }
    if let cpus = arguments.int("cpus-per-task"), cpus < 1 {
      throw UsageError("--cpus-per-task: expected 1 or more", commandPath: arguments.commandPath)
    }
    var grid: [String] = arguments.strings("grid").flatMap { ["--grid", $0] }
    if let condition = request.condition { grid += ["--where", condition] }
    grid += ["--rank", request.rank, "--max-combinations", String(request.maxCombinations)]
    if let dataset = request.dataset { grid += ["--dataset", dataset] }
    if let from = request.from { grid += ["--from", UTCCalendar.format(from, alwaysTime: true)] }
    if let to = request.to { grid += ["--to", UTCCalendar.format(to, alwaysTime: true)] }
    if let capital = request.capital { grid += ["--capital", "\(capital)"] }
    if request.allowGaps { grid.append("--allow-gaps") }
    if request.noWarmup { grid.append("--no-warmup") }
    if let walkForward { grid += ["--walk-forward", walkForward] }
    let store = URL(fileURLWithPath: try context.settings().databasePath).standardizedFileURL.path
    let operations = try context.operations()
    var settings = SlurmSettings(
      shards: shards, partition: arguments.string("partition"), time: arguments.string("time"), cpusPerTask: arguments.int("cpus-per-task"),
      sbatchArguments: arguments.strings("sbatch-arg"), workDir: arguments.string("work-dir") ?? "", executable: executablePath(), store: store,
      gridArguments: grid, walkForward: walkForward)
    if settings.workDir.isEmpty {
      // The id is the grid's: known once the request is checked; the default directory sits by the store.
      let plan = try SlurmOperations(operations).submit(request, slurm: settings, dryRun: true)
      settings.workDir = URL(fileURLWithPath: store).deletingLastPathComponent().path + "/qtool-grid-" + plan.gridID
    }
    let report = try SlurmOperations(operations).submit(request, slurm: settings, dryRun: arguments.flag("dry-run"))
    if context.json {
      try context.printJSON(report)
    } else if report.dryRun {
      context.stdout.line("# \(report.workDir)/grid.sbatch")
      context.stdout.write(report.arrayScript)
      context.stdout.line("# \(report.workDir)/merge.sbatch (submitted with --dependency=afterok:ARRAY_JOB)")
      context.stdout.write(report.mergeScript)
      context.note(
        "dry run: nothing written or submitted; grid \(report.gridID), \(report.workItems) in \(DisplayFormat.plural(report.shards, "shard"))")
    } else {
      context.stdout.line(
        "grid \(report.gridID): \(report.workItems) in \(DisplayFormat.plural(report.shards, "shard")) submitted as Slurm array job \(report.arrayJob ?? "?"), merge job \(report.mergeJob ?? "?") (qtool job \(report.jobID ?? "?"))"
      )
      context.note("work directory \(report.workDir); follow it with qtool jobs show \(report.jobID ?? "")")
    }
    return .success
  }

  /// This qtool binary, as tasks on other nodes run it (the same path on a shared file system).
  static func executablePath() -> String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }
}

extension BacktestGridCommand {
  /// A shard's block, 1-based as a person counts: `combinations 36…71 of 143`, or that it has
  /// none (more shards than combinations leave some empty, which is fine).
  static func block(_ first: Int, _ end: Int, of total: Int, _ noun: String) -> String {
    end > first ? "\(noun) \(first + 1)…\(end) of \(total)" : "no \(noun) (the grid has \(total), fewer than its shards)"
  }
}
