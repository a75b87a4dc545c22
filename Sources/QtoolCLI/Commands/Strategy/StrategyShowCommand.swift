import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Print a registered strategy's latest spec",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "A registered strategy.", completion: .dynamic("strategies"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let name = context.arguments.string("name")!
    let loaded = try StrategyOperations(try context.operations()).validate(try StrategyArgument.reference(name, context: context))
    if context.json {
      try context.printJSON(loaded.spec)
    } else {
      context.stdout.write(loaded.text.hasSuffix("\n") ? loaded.text : loaded.text + "\n")
    }
    return .success
  }
}
