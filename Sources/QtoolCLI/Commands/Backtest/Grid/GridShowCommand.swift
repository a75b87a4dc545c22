import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum GridShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Show a stored grid's rows: sorted, filtered, as a table, JSON, CSV or a heatmap",
    discussion: """
      Rows keep their number in the grid's own ranking (row 1 was its best), which `backtest grid \
      open ID ROW` takes to run that row as a full backtest. --where filters on params and metrics \
      alike ('trades >= 10 and fast < 20'); --sort orders by another metric; --worst turns the \
      order round. --report writes an HTML page with a heatmap of the metric over the grid's \
      first two params. A merged walk-forward (`backtest grid merge` of walk-forward shards) is \
      shown as the merge printed it: each fold's chosen combination and the stitched return.
      """,
    options: [
      .value("sort", valueName: "metric", help: "Order by this metric (default: the grid's ranking).", completion: .choices(Metrics.names)),
      .value("where", valueName: "condition", help: "Keep rows satisfying this, e.g. 'trades >= 10'."),
      .value("top", .int, valueName: "n", help: "How many rows.", defaultValue: "20"),
      .flag("worst", help: "Worst first."),
      .flag("csv", help: "Print the rows as CSV."),
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write an HTML page with the heatmap and the rows."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", help: "A grid id (a unique prefix is enough).")],
    examples: [
      Example("qtool backtest grid show g1a2b3 --where 'trades >= 20' --sort sortino --top 5", "The five best with enough trades"),
      Example("qtool backtest grid show g1a2b3 --csv > grid.csv", "Every row for a spreadsheet (use --top)"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let top = arguments.int("top"), top >= 1 else { throw UsageError("--top: expected 1 or more", commandPath: arguments.commandPath) }
    let operations = BacktestOperations(try context.operations())
    let id = arguments.string("id")!
    if let report = try operations.mergedWalkForward(id: id) {
      // A walk-forward keeps each fold's chosen combination, not a grid's rows to sort or filter.
      if let option = ["where", "sort", "worst", "csv", "report"].first(where: arguments.isGiven) {
        throw UsageError(
          "--\(option) works on a grid's rows; \(report.id ?? id) is a merged walk-forward, shown as its folds", commandPath: arguments.commandPath)
      }
      if context.json {
        try context.printJSON(report)
      } else {
        BacktestGridCommand.printMergedWalkForward(report, context: context)
      }
      return .success
    }
    let query = GridQuery(sort: arguments.string("sort"), condition: arguments.string("where"), top: top, worst: arguments.flag("worst"))
    let rows = try operations.gridRows(id: id, query: query)
    if let path = arguments.string("report") {
      var everything = query
      everything.top = Int.max
      everything.condition = nil
      let all = try operations.gridRows(id: id, query: everything)
      try ReportWriter.write(HTMLReport.renderGrid(rows, all: all, cancellation: Signals.cancellation), to: path, overwrite: arguments.flag("force"), context: context)
    }
    let names = rows.grid.axes.map(\.name)
    let shown = GridTable.metricColumns(first: rows.sort)
    if context.json {
      try context.printJSON(rows)
    } else if arguments.flag("csv") {
      context.stdout.line((["row"] + names + Metrics.names).joined(separator: ","))
      for row in rows.rows {
        let values = names.map { DisplayFormat.param(row.params[$0] ?? .nan) } + Metrics.names.map { name in (row.metrics[name] ?? nil).map { "\($0)" } ?? "" }
        context.stdout.line((["\(row.row)"] + values).joined(separator: ","))
      }
    } else {
      context.stdout.write(
        Table(
          columns: [Table.Column("ROW", .right)] + names.map { Table.Column($0, .right) } + shown.map { Table.Column($0, .right) },
          rows: rows.rows.map { row in
            ["\(row.row)"] + names.map { DisplayFormat.param(row.params[$0] ?? .nan) } + shown.map { DisplayFormat.metric($0, row.metrics[$0] ?? nil) }
          }
        ).render(bold: context.terminal.colorOnStdout))
      context.note(
        "grid \(rows.grid.id): \(rows.matching) of \(DisplayFormat.plural(rows.grid.combinations, "row")) \(rows.matching == 1 ? "matches" : "match"); by \(rows.sort), \(query.worst ? "worst" : "best") first")
    }
    return .success
  }
}
