import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyDeleteCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "delete", abstract: "Forget a registered strategy and its versions (its file stays)", aliases: ["rm"],
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "A registered strategy.", completion: .dynamic("strategies"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let deleted = try StrategyOperations(try context.operations()).delete(name: context.arguments.string("name")!)
    if context.json {
      try context.printJSON(["deleted": deleted])
    } else {
      context.note("deleted strategy \(deleted.name) (\(deleted.versions) version\(deleted.versions == 1 ? "" : "s")); recorded runs keep their spec")
    }
    return .success
  }
}
