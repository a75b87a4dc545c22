import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyVersionsCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "versions", abstract: "List every version of a registered strategy's spec",
    discussion: "Every change of a registered spec's text is a new version, identified by its SHA-256.",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "A registered strategy.", completion: .dynamic("strategies"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let versions = try StrategyOperations(try context.operations()).versions(name: context.arguments.string("name")!)
    if context.json {
      try context.printJSON(versions)
    } else {
      context.stdout.write(
        Table(
          columns: [.init("VERSION", .right), .init("HASH"), .init("CREATED")],
          rows: versions.map { ["\($0.version)", String($0.hash.prefix(16)), UTCCalendar.format($0.createdAt / 1000 * 1000, alwaysTime: true)] }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
