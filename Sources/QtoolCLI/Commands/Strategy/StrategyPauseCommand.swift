import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyPauseCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "pause", abstract: "Suspend a strategy's new entries and notifications",
    discussion: """
      From the next bar the runner processes, the paper account opens no position and sends no \
      notification; it keeps evaluating: exits, stops and targets still act, and the entries it \
      would have made are stored as suppressed signals. The pause is part of the account (it \
      holds across restarts and across `qtool strategy stop`, and the account still agrees with \
      a backtest told of it): a later run of the account warns that it is paused, and its \
      summary says so. `qtool strategy resume` ends it.
      """,
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The strategy.", completion: .dynamic("strategies"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let status = try LiveOperations(try context.operations()).pause(strategy: context.arguments.string("name")!, settings: try context.settings())
    return try StrategyResumeCommand.report(status, verb: "paused", context: context)
  }
}
