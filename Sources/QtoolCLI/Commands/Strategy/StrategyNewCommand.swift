import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyNewCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "new", abstract: "Write a commented strategy spec from a template and register it",
    options: [
      .value("template", .choice(StrategyTemplates.names), valueName: "template", help: "The kind of strategy.", defaultValue: "sma_crossover"),
      .value("symbol", short: "s", valueName: "symbol", help: "The symbol it trades.", defaultValue: "BTCUSDT"),
      .value("timeframe", short: "t", .timeframe, valueName: "timeframe", help: "Its bar timeframe.", defaultValue: "1d"),
      .value("output", short: "o", .path(.file(extensions: ["yaml", "yml"])), valueName: "file", help: "Where to write it (default: NAME.yaml; - for stdout)."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", help: "The strategy's name.")],
    examples: [Example("qtool strategy new goog-sma --template sma_crossover --symbol GOOG", "Scaffold goog-sma.yaml for the GOOG-1d dataset")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let name = arguments.string("name")!
    let output = arguments.string("output") ?? "\(name).yaml"
    let created = try StrategyOperations(try context.operations()).create(
      name: name, template: arguments.string("template")!, symbol: arguments.string("symbol")!, timeframe: arguments.string("timeframe")!,
      path: output == "-" ? nil : output, overwrite: arguments.flag("force"))
    var shown = created
    if FileArgument.isStandard(output) {
      // The spec is the output; the rest goes to stderr.
      context.claimStdout().write(Data(created.text.utf8))
      shown.path = "-"
    }
    if context.json {
      try context.printJSON(shown)
    } else {
      context.note(
        (shown.path == "-" ? "registered \(created.name)" : "wrote \(created.path) and registered \(created.name)") + " (version \(created.version))")
      context.note("next: `qtool backtest run \(created.name)`")
    }
    return .success
  }
}
