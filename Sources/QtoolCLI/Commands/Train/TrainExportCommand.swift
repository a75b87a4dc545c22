import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum TrainExportCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "export", abstract: "Write a model version to a file in qtool's model format",
    discussion:
      "One JSON document (format qtool-model/1): the spec, the params it was trained with, each fold's model (XGBoost's UBJSON or the linear coefficients, base64), the per-epoch metrics and the test-block predictions. `qtool train import` reads it on another machine.",
    options: [
      .value("output", short: "o", .path(.file(extensions: ["json"])), valueName: "file", help: "Where to write it (default: NAME-vN.qmodel.json; - for stdout)."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [TrainArgument.model])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let (name, version) = try TrainArgument.nameAndVersion(context.arguments.string("model")!, context: context)
    let document = try TrainOperations(try context.operations()).export(name: name, version: version)
    let path = context.arguments.string("output") ?? "\(name)-v\(document.version).qmodel.json"
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    try FileArgument.write(try encoder.encode(document), to: path, overwrite: context.arguments.flag("force"), context: context)
    if context.json {
      try context.printJSON(["model": JSONValue(name), "version": JSONValue(document.version), "path": JSONValue(path)])
    } else {
      context.note("wrote \(name) v\(document.version) to \(FileArgument.isStandard(path) ? "standard output" : path)")
    }
    return .success
  }
}
