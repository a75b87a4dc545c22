import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Show a recorded run: its summary, every metric and its trades",
    discussion: """
      Prints the summary `backtest run` printed — strategy and version, params, dataset and \
      range, costs and trading settings, key metrics, and when and why a drawdown halt stopped \
      trading — then every metric and the trades. --trades prints only the trades: a table, or \
      with --csv the columns of the trades.csv that `backtest export` writes, or with --json \
      an array; straight to stdout, for a pipe or a file.
      """,
    options: [
      .flag("trades", help: "Print only the run's trades (a table; --csv or --json for a program)."),
      .flag("csv", help: "With --trades: the trades as CSV, the columns of the exported trades.csv."),
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write the run's self-contained HTML report."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", help: "A run id (a unique prefix is enough).", completion: .dynamic("runs"))],
    examples: [
      Example("qtool backtest show r1a2b3", "A run's summary, metrics and trades"),
      Example("qtool backtest show r1a2b3 --trades --csv > trades.csv", "Its trades as CSV"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let operations = BacktestOperations(try context.operations())
    let id = arguments.string("id")!
    let trades = arguments.flag("trades")
    if arguments.flag("csv") {
      guard trades else { throw UsageError("--csv prints the trades: add --trades", commandPath: arguments.commandPath) }
      guard !context.json else { throw UsageError("--csv and --json: choose one", commandPath: arguments.commandPath) }
    }
    if let path = arguments.string("report") {
      try ReportWriter.write(HTMLReport.render(try operations.report(id: id), cancellation: Signals.cancellation, hooks: context.testHooks), to: path, overwrite: arguments.flag("force"), context: context)
    }
    if trades {
      let report = try operations.report(id: id)
      if arguments.flag("csv") {
        context.stdout.write(BacktestOperations.tradesCSV(report.trades))
      } else if context.json {
        try context.printJSON(report.trades)
      } else if report.trades.isEmpty {
        context.note("run \(report.id) made no trades")
      } else {
        context.stdout.write(BacktestSummary.tradesTable(report, bold: context.terminal.colorOnStdout))
      }
      return .success
    }
    if context.json {
      try context.printJSON(try operations.show(id: id))
      return .success
    }
    let report = try operations.report(id: id)
    let color = context.terminal.colorOnStdout
    context.stdout.write(BacktestSummary.render(report, color: color, footer: false))
    context.stdout.line()
    context.stdout.write(
      KeyValueList(pairs: [("run", report.id), ("engine", report.engineVersion ?? "?"), ("fingerprint", String(report.fingerprint.prefix(16)))])
        .render())
    context.stdout.line()
    // Every metric, n/a where the run could not measure it (stored as null).
    let values = report.metrics.allValues
    context.stdout.write(KeyValueList(pairs: Metrics.names.sorted().map { ($0, DisplayFormat.metric($0, values[$0])) }).render())
    context.stdout.line()
    if report.trades.isEmpty {
      context.stdout.line("no trades")
    } else {
      context.stdout.line(DisplayFormat.plural(report.trades.count, "trade"))
      context.stdout.write(BacktestSummary.tradesTable(report, bold: color))
    }
    return .success
  }
}
