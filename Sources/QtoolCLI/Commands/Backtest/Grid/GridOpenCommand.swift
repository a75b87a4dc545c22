import QtoolArgs
import QtoolCore
import QtoolEngine

enum GridOpenCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "open", abstract: "Run one row of a stored grid as a full, recorded backtest",
    discussion: """
      Runs the grid's own spec text with the row's params on the grid's data and settings, and \
      records it like backtest run (trades, equity, report). The engine is deterministic: the \
      run's metrics are the row's, and the command says so (or exits 1 when the data changed \
      since the grid ran).
      """,
    options: [
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write the run's HTML report."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [
      PositionalSpec("id", help: "A grid id (a unique prefix is enough)."),
      PositionalSpec("row", help: "The row's number, as grid show prints it (1 is the grid's best)."),
    ],
    examples: [Example("qtool backtest grid open g1a2b3 1 --report best.html", "The grid's best combination, in full")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let row = Int(arguments.string("row") ?? ""), row >= 1 else {
      throw UsageError("<row>: expected a row number like 1, got '\(arguments.string("row") ?? "")'", commandPath: arguments.commandPath)
    }
    if let path = arguments.string("report") { try ReportWriter.checkWritable(path, overwrite: arguments.flag("force")) }
    let (report, matches) = try BacktestOperations(try context.operations()).openGridRow(id: arguments.string("id")!, row: row)
    if let path = arguments.string("report") {
      try ReportWriter.write(HTMLReport.render(report, cancellation: Signals.cancellation, hooks: context.testHooks), to: path, overwrite: arguments.flag("force"), context: context)
    }
    if context.json {
      try context.printJSON(report)
    } else {
      context.stdout.write(BacktestSummary.render(report, color: context.terminal.colorOnStdout))
    }
    if !matches {
      context.stderr.line("qtool: warning: the run's metrics differ from the grid's row: the data or the engine changed since the grid ran")
      return .failure
    }
    context.note("the same metrics as row \(row) of the grid")
    return .success
  }
}
