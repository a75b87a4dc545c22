import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(name: "list", abstract: "List registered strategies", aliases: ["ls"], options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let strategies = try StrategyOperations(try context.operations()).list()
    if context.json {
      try context.printJSON(strategies)
    } else if strategies.isEmpty {
      context.note("no strategies yet; create one with `qtool strategy new NAME --template sma_crossover`")
    } else {
      context.stdout.write(
        Table(
          columns: [.init("NAME"), .init("TYPE"), .init("STATUS"), .init("VERSIONS", .right), .init("FILE")],
          rows: strategies.map { [$0.name, $0.type, $0.status, "\($0.versions)", $0.path ?? "-"] }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
