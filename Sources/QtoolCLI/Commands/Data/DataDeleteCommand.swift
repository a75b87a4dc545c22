import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataDeleteCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "delete", abstract: "Delete a dataset and its bars", aliases: ["rm"],
    options: [CommonOptions.json],
    positionals: [DataOptions.dataset])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let deleted = try DataOperations(database: context.database()).delete(name: context.arguments.string("dataset")!)
    if context.json {
      try context.printJSON(deleted)
    } else {
      context.stdout.line("deleted \(deleted.name) (\(deleted.rowCount) bars)")
    }
    return .success
  }
}
