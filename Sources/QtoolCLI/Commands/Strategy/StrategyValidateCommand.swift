import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyValidateCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "validate", abstract: "Check a spec file: keys, types and every rule",
    discussion: "Exits 0 when the spec is valid, 65 with the first error (file, rule, line, column) otherwise.",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("spec", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file or a registered strategy's name.")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let reference = try StrategyArgument.reference(context.arguments.string("spec")!, context: context)
    let operations = StrategyOperations(try context.operations())
    let loaded = try operations.validate(reference)
    if context.json {
      try context.printJSON(StrategyValidation(name: loaded.spec.name, hash: loaded.hash))
    } else {
      context.stdout.line("\(loaded.origin): valid (\(loaded.spec.name))")
    }
    return .success
  }
}
