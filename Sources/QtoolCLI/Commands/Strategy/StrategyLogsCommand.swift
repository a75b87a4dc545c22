import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyLogsCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "logs", abstract: "Print the end of a strategy's runner log",
    discussion: """
      The log of the latest run that has one: a runner that `qtool strategy start` detached \
      logs to $QTOOL_HOME/logs/NAME.log (every run of the strategy, appended), and so does \
      a runner `qtool serve` hosts (as well as to the server's log). A runner in a terminal \
      (`strategy run`) logs to its stderr: it leaves no log file to print.
      """,
    options: [
      .value("lines", short: "n", .int, valueName: "n", help: "How many of the last lines to print (1 to 10000).", defaultValue: "100"),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", help: "The strategy.", completion: .dynamic("strategies"))],
    examples: [Example("qtool strategy logs btc-sma -n 20", "The last 20 lines of btc-sma's runner log")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let name = context.arguments.string("name")!
    guard let lines = context.arguments.int("lines"), (1...10_000).contains(lines) else {
      throw UsageError("--lines: expected 1 to 10000", commandPath: context.arguments.commandPath)
    }
    let log = try LiveOperations(try context.operations()).log(strategy: name, lines: lines, settings: try context.settings())
    if context.json {
      try context.printJSON(log)
      return .success
    }
    if log.log == nil {
      context.note(
        log.runID == nil
          ? "\(name) has not run yet"
          : "run \(log.runID!) of \(name) has no log file (a runner in a terminal logs to its stderr)")
      return .success
    }
    for line in log.lines { context.stdout.line(Terminal.printable(line)) }
    return .success
  }
}
