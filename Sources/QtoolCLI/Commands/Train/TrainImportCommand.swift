import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainImportCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "import", abstract: "Import a model exported by `qtool train export` as a new version",
    discussion: "The spec must parse and every fold's model must load and read the spec's features; the version is stored ready to predict.",
    options: [.value("name", valueName: "name", help: "Import under this model name instead of the spec's."), CommonOptions.json],
    positionals: [PositionalSpec("file", .path(.file(extensions: ["json"])), help: "A file written by train export (- for stdin).")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let path = context.arguments.string("file")!
    guard let text = try FileArgument.readText(path) else {
      throw OperationError.notFound("cannot read \(path)", code: "file_not_found", details: ["path": .string(path)])
    }
    let version = try TrainOperations(try context.operations()).importModel(text, name: context.arguments.string("name"))
    if context.json {
      try context.printJSON(["model": JSONValue(version.model), "version": JSONValue(version.version)])
    } else {
      context.note("imported \(path) as \(version.model) v\(version.version)")
    }
    return .success
  }
}
