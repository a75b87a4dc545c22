import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestCheckCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "check", abstract: "Look-ahead and warm-up check: rerun on truncated data",
    discussion:
      "Reruns the strategy on the data cut after ten points in time and reports any entry, exit or position up to the cut that differs from the full run. A clean strategy never changes its past when the future is removed. Also reports preprocessing of the data (or its parent datasets) that used later bars for earlier ones — normalize or clip_outliers fitted on the whole range, backward fills — and the warm-up the rules need (their longest look-back); rules that look back further than the data reaches are an error (exit 65), as in backtest run. model() is covered: at each cut the model's features are computed again on the truncated bars and predicted again. Exits 1 when something was found.",
    options: [
      .value("dataset", valueName: "dataset", help: "Run on this dataset instead of SYMBOL-TIMEFRAME.", completion: .dynamic("datasets")),
      BacktestOptions.from, DataOptions.to, BacktestOptions.noWarmup, BacktestOptions.allowInSample,
      CommonOptions.json,
    ],
    positionals: [
      PositionalSpec(
        "strategy", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file (- for stdin) or a registered strategy's name.",
        completion: .dynamic("strategies"))
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let report = try BacktestOperations(try context.operations()).check(
      BacktestRequest(
        strategy: try StrategyArgument.reference(arguments.string("strategy")!, context: context), dataset: arguments.string("dataset"),
        from: DataOptions.milliseconds(arguments, "from"),
        to: DataOptions.milliseconds(arguments, "to"), noWarmup: arguments.flag("no-warmup"),
        allowInSample: arguments.flag("allow-in-sample")))
    if context.json {
      try context.printJSON(report)
    } else {
      if report.clean {
        context.stdout.line("clean: no decision changed at \(DisplayFormat.plural(report.cuts.count, "cut point"))")
      }
      if !report.changes.isEmpty {
        context.stdout.line("LOOK-AHEAD: decisions change when later data is removed")
        for change in report.changes { context.stdout.line("  \(UTCCalendar.format(change.timestamp)): \(change.what)") }
      }
      if !report.data.isEmpty {
        context.stdout.line("LOOK-AHEAD IN THE DATA: its preprocessing used later bars for earlier ones")
        for finding in report.data { context.stdout.line("  \(finding)") }
      }
      if let bars = report.warmupBars {
        context.stdout.line(
          "warm-up: the rules need \(bars) bar\(bars == 1 ? "" : "s") before a decision" + (report.warmupExpression.map { " (\($0))" } ?? ""))
      }
    }
    return report.clean ? .success : .failure
  }
}
