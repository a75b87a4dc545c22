import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyResumeCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "resume", abstract: "Let a paused strategy enter positions and notify again",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The strategy.", completion: .dynamic("strategies"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let status = try LiveOperations(try context.operations()).resume(strategy: context.arguments.string("name")!, settings: try context.settings())
    return try report(status, verb: "resumed", context: context)
  }

  static func report(_ status: RunnerStatus, verb: String, context: CommandContext) throws -> ExitStatus {
    if context.json {
      try context.printJSON(status)
    } else {
      let running = ["running", "paused", "stopping"].contains(status.status)
      context.note(
        "\(status.strategy) \(verb)" + (running ? " from its next bar" : " (not running: from the next bar it processes)"))
    }
    return .success
  }
}
