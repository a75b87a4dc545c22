import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestDeleteCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "delete", abstract: "Delete a recorded run", aliases: ["rm"], options: [CommonOptions.json],
    positionals: [PositionalSpec("id", help: "A run id (a unique prefix is enough).", completion: .dynamic("runs"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let run = try BacktestOperations(try context.operations()).delete(id: context.arguments.string("id")!)
    if context.json {
      try context.printJSON(["deleted": run])
    } else {
      context.note("deleted run \(run.id)")
    }
    return .success
  }
}
