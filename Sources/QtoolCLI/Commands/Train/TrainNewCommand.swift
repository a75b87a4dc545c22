import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainNewCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "new", abstract: "Write a commented model spec from a template and register it",
    discussion: """
      The spec's features are rules-language expressions (qtool help rules) and its label may \
      look ahead (forward_return, future). Its split is written 60/20/20 by date over the \
      dataset's bars; edit it, or use walk_forward instead.
      """,
    options: [
      .value("template", .choice(ModelTemplates.names), valueName: "template", help: "The kind of model.", defaultValue: "gbt-classifier"),
      .value("dataset", valueName: "dataset", help: "The dataset it trains on, e.g. GOOG-1d.", completion: .dynamic("datasets")),
      .value("output", short: "o", .path(.file(extensions: ["yaml", "yml"])), valueName: "file", help: "Where to write it (default: NAME.yaml; - for stdout)."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", help: "The model's name.")],
    examples: [Example("qtool train new goog-up --template gbt-classifier --dataset GOOG-1d", "Scaffold goog-up.yaml on GOOG-1d")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let name = arguments.string("name")!
    let output = arguments.string("output") ?? "\(name).yaml"
    guard let dataset = arguments.string("dataset") else {
      throw UsageError("train new needs --dataset, the dataset the model trains on", commandPath: arguments.commandPath)
    }
    let created = try TrainOperations(try context.operations()).create(
      name: name, template: arguments.string("template")!, dataset: dataset, path: output == "-" ? nil : output,
      overwrite: arguments.flag("force"))
    var shown = created
    if FileArgument.isStandard(output) {
      // The spec is the output; the rest goes to stderr.
      context.claimStdout().write(Data(created.text.utf8))
      shown.path = "-"
    }
    if context.json {
      try context.printJSON(shown)
    } else {
      context.note(shown.path == "-" ? "registered model \(created.name)" : "wrote \(created.path) and registered model \(created.name)")
      context.note("next: `qtool train run \(created.name)`")
    }
    return .success
  }
}
