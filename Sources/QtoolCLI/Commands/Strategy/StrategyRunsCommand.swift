import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyRunsCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "runs", abstract: "List a strategy's live runs, newest first",
    discussion: """
      Every process that advanced the strategy's paper accounts (`strategy run`, `strategy \
      start`, a runner in `qtool serve`): its feed, status (running, stopping, stopped, \
      completed, or failed — a process that ended without stopping is marked failed), process, \
      start and end, bars processed and the last bar, and its error.
      """,
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The strategy.", completion: .dynamic("strategies"))],
    examples: [Example("qtool strategy runs btc-sma --json", "Every run of btc-sma, for a script")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let name = context.arguments.string("name")!
    let runs = try LiveOperations(try context.operations()).runs(strategy: name)
    if context.json {
      try context.printJSON(runs)
      return .success
    }
    if runs.isEmpty {
      context.note("\(name) has not run yet; start it with `qtool strategy start \(name)`")
      return .success
    }
    context.stdout.write(
      Table(
        columns: [
          .init("RUN"), .init("FEED"), .init("STATUS"), .init("PID", .right), .init("STARTED"), .init("FINISHED"), .init("BARS", .right),
          .init("LAST BAR"), .init("ERROR"),
        ],
        rows: runs.map { run in
          [
            run.id, run.feed, run.status, run.pid.map(String.init) ?? "-", run.startedAt, run.finishedAt ?? "-", String(run.barsProcessed),
            run.lastBar ?? "-", run.error.map { Terminal.printable($0.message) } ?? "",
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
