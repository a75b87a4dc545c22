import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyStopCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "stop", abstract: "Stop a running strategy at its next bar boundary",
    discussion: """
      Asks the runner to stop (through a file beside its lease and its row: no signal is sent to \
      any process, so a pid the system reused is never touched) and waits until its process has \
      let go of its lease; exits 75 when it has not stopped within --timeout. A runner whose \
      process died is not running: its run is marked failed. --close-positions also closes what \
      the paper account holds at the last processed bar's close (reason manual; the fills pay \
      commission and slippage) and closes the account; the next start opens a new one.
      """,
    options: [
      .flag("all", help: "Stop every running strategy."),
      .flag("close-positions", help: "Close the paper account's positions at the last close, and the account."),
      .value("timeout", valueName: "time", help: "How long to wait for it to stop, e.g. 30s.", defaultValue: "30s"),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", arity: .optional, help: "The strategy to stop.", completion: .dynamic("strategies"))],
    examples: [
      Example("qtool strategy stop btc-sma", "Stop it; its account stays as it is"),
      Example("qtool strategy stop btc-sma --close-positions", "Stop it and settle its paper account"),
      Example("qtool strategy stop --all", "Stop every runner (before a reboot)"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let name = arguments.string("name")
    if name == nil, !arguments.flag("all") { throw UsageError("name a strategy to stop, or give --all", commandPath: arguments.commandPath) }
    if name != nil, arguments.flag("all") { throw UsageError("give a strategy's name or --all, not both", commandPath: arguments.commandPath) }
    let timeout = try LiveOptions.milliseconds(arguments.string("timeout") ?? "30s", option: "timeout", arguments)
    let operations = LiveOperations(try context.operations())
    let names = try name.map { [$0] } ?? operations.activeStrategies()
    var reports: [StopReport] = []
    var failure: (any QtoolError)?
    for strategy in names {
      do {
        reports.append(try operations.stop(strategy: strategy, closePositions: arguments.flag("close-positions"), timeoutMilliseconds: timeout))
      } catch let error as LiveError {
        guard name == nil else { throw error }
        context.stderr.line("qtool: error: \(Terminal.printable(ErrorOutput.text(error)))")
        failure = error
      }
    }
    if context.json {
      try context.printJSON(name == nil ? AnyEncodable(reports) : AnyEncodable(reports[0]))
    } else {
      if names.isEmpty { context.note("no strategy is running") }
      for report in reports {
        switch report.was {
        case "running": context.note("stopped \(report.strategy)" + (report.runID.map { " (run \($0), \(report.status ?? "stopped"))" } ?? ""))
        case "dead": context.note("\(report.strategy) was not running: its process had died; run \(report.runID ?? "?") is marked failed")
        default: context.note("\(report.strategy) is not running")
        }
        for fill in report.closed {
          context.note(
            "  closed \(fill.symbol): \(fill.side) \(SignalLine.number(fill.size)) @ \(SignalLine.number(fill.price)), pnl \(Format.decimal(fill.pnl ?? 0, places: 2))"
          )
        }
        if arguments.flag("close-positions"), let equity = report.equity {
          context.note("  paper account closed; equity \(Format.decimal(equity, places: 2))")
        }
      }
    }
    return failure?.exitStatus ?? .success
  }
}

/// Lets one command print either shape as JSON.
struct AnyEncodable: Encodable {
  private let body: (any Encoder) throws -> Void
  init<T: Encodable>(_ value: T) { body = value.encode }
  func encode(to encoder: any Encoder) throws { try body(encoder) }
}
