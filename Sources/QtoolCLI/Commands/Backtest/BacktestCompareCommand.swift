import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum BacktestCompareCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "compare", abstract: "Compare recorded runs: metrics side by side, correlation of returns",
    options: [
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write an HTML page with the equity curves overlaid."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", arity: .variadic, help: "Two or more run ids.", completion: .dynamic("runs"))],
    examples: [Example("qtool backtest compare r1a2b3 r4c5d6", "Two runs side by side")])

  static let shown = [
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility", "trades", "win_rate", "profit_factor", "exposure", "final_equity",
  ]

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let ids = context.arguments.strings("id")
    guard ids.count >= 2 else { throw UsageError("compare needs at least two run ids", commandPath: context.arguments.commandPath) }
    let operations = try BacktestOperations(try context.operations())
    let report = try operations.compare(ids: ids)
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
    let rows = shown.map { name in [name] + report.runs.map { run in run.metrics[name].map { Format.decimal($0, places: 4) } ?? "n/a" } }
    context.stdout.write(
      Table(columns: columns, rows: [["strategy"] + report.runs.map(\.strategy)] + rows).render(bold: context.terminal.colorOnStdout))
    context.stdout.line()
    context.stdout.line("correlation of per-bar returns")
    let matrix = report.correlation.enumerated().map { index, row in
      [report.runs[index].id] + row.map { $0.isFinite ? Format.decimal($0, places: 3) : "n/a" }
    }
    context.stdout.write(Table(columns: [Table.Column("")] + report.runs.map { Table.Column($0.id, .right) }, rows: matrix).render())
    return .success
  }
}
