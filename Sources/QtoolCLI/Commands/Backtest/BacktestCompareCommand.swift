import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum BacktestCompareCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "compare", abstract: "Compare recorded runs: metrics side by side, correlation of returns",
    options: [
      .value("sort", valueName: "metric", help: "Order the runs best first by this metric (qtool help metrics).", completion: .dynamic("metrics")),
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write an HTML page with the equity curves overlaid."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", arity: .variadic, help: "Two or more run ids.", completion: .dynamic("runs"))],
    examples: [
      Example("qtool backtest compare r1a2b3 r4c5d6", "Two runs side by side"),
      Example("qtool backtest compare r1a2b3 r4c5d6 r7e8f9 --sort sharpe", "Three runs, the best sharpe first"),
    ])

  static let shown = [
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility", "trades", "win_rate", "profit_factor", "exposure", "final_equity",
  ]

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let ids = context.arguments.strings("id")
    guard ids.count >= 2 else { throw UsageError("compare needs at least two run ids", commandPath: context.arguments.commandPath) }
    let operations = try BacktestOperations(try context.operations())
    let report = try operations.compare(ids: ids, sort: context.arguments.string("sort"))
    if let path = context.arguments.string("report") {
      let curves = try report.runs.map { run -> (timestamps: [Int64], equity: [Double]) in
        let detail = try operations.show(id: run.id)
        return (detail.timestamps, detail.equity)
      }
      try ReportWriter.write(HTMLReport.renderComparison(report, curves: curves), to: path, overwrite: context.arguments.flag("force"), context: context)
    }
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let columns = [Table.Column("METRIC")] + report.runs.map { Table.Column($0.id, .right) }
    let params = report.runs.map { run in
      run.params.keys.sorted().map { "\($0)=\(DisplayFormat.param(run.params[$0]!))" }.joined(separator: " ")
    }
    let rows = shown.map { name in [name] + report.runs.map { run in DisplayFormat.metric(name, run.metrics[name]) } }
    context.stdout.write(
      Table(columns: columns, rows: [["strategy"] + report.runs.map(\.strategy), ["params"] + params] + rows).render(
        bold: context.terminal.colorOnStdout))
    context.stdout.line()
    context.stdout.line("correlation of per-bar returns (rows and columns are runs)")
    let matrix = report.correlation.enumerated().map { index, row in
      [report.runs[index].id] + row.map { $0.isFinite ? Format.decimal($0, places: 3) : "n/a" }
    }
    context.stdout.write(
      Table(columns: [Table.Column("RUN")] + report.runs.map { Table.Column($0.id, .right) }, rows: matrix).render(
        bold: context.terminal.colorOnStdout))
    return .success
  }
}
