import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataDeleteCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "delete", abstract: "Delete a dataset and its bars", aliases: ["rm"],
    options: [DataOptions.wait, CommonOptions.json],
    positionals: [DataOptions.dataset])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let deleted = try DataOperations(try context.operations()).delete(name: context.arguments.string("dataset")!, wait: context.arguments.flag("wait"))
    if context.json {
      try context.printJSON(["deleted": deleted])
    } else {
      context.note("deleted \(deleted.name) (\(DisplayFormat.plural(deleted.rowCount, "bar")))")
    }
    return .success
  }
}
