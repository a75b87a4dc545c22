import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestReplayCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "replay", abstract: "Rerun a recorded run and verify identical results",
    discussion:
      "Uses the run's stored spec text and settings on the stored data. Exits 0 when every trade and equity point is identical, 1 with the differences otherwise (changed data, changed engine).",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("id", help: "A run id (a unique prefix is enough).", completion: .dynamic("runs"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let report = try BacktestOperations(try context.operations()).replay(id: context.arguments.string("id")!)
    if context.json {
      try context.printJSON(report)
    } else if report.identical {
      context.stdout.line("\(report.id): identical (\(DisplayFormat.plural(report.trades, "trade")), every equity point)")
    } else {
      context.stdout.line("\(report.id): DIFFERENT")
      for line in report.differences { context.stdout.line("  " + line) }
    }
    return report.identical ? .success : .failure
  }
}
