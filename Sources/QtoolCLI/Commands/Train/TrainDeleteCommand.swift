import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainDeleteCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "delete", abstract: "Delete a model with all its versions, or one version (NAME@N)",
    options: [CommonOptions.json], positionals: [TrainArgument.model])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let (name, version) = try TrainArgument.nameAndVersion(context.arguments.string("model")!, context: context)
    let deleted = try TrainOperations(try context.operations()).delete(name: name, version: version)
    if context.json {
      try context.printJSON(["model": JSONValue(name), "deleted_versions": .array(deleted.map { JSONValue($0) })])
    } else {
      context.note(version == nil ? "deleted model \(name) (\(DisplayFormat.plural(deleted.count, "version")))" : "deleted \(name) v\(version!)")
    }
    return .success
  }
}
