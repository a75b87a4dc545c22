import QtoolArgs
import QtoolCore
import QtoolEngine

enum GridListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List stored grids and merged walk-forwards, newest first", aliases: ["ls"],
    options: [
      .value("strategy", valueName: "name", help: "Only grids of this strategy.", completion: .dynamic("strategies")),
      CommonOptions.json,
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let grids = try BacktestOperations(try context.operations()).grids(strategy: context.arguments.string("strategy"))
    if context.json {
      try context.printJSON(grids)
      return .success
    }
    if grids.isEmpty {
      context.note("no grids yet; `qtool backtest grid SPEC --grid name=values` runs one")
      return .success
    }
    // Merged walk-forwards are listed with their windows; a list of plain grids stays as it was.
    let walkForwards = grids.contains { $0.walkForward != nil }
    context.stdout.write(
      Table(
        columns: [.init("GRID"), .init("STRATEGY"), .init("DATASET"), .init("AXES"), .init("COMBOS", .right), .init("RANK")]
          + (walkForwards ? [.init("WALK-FORWARD")] : []) + [.init("CREATED")],
        rows: grids.map { grid in
          [
            grid.id, grid.strategy, grid.dataset, grid.axes.map { "\($0.name)(\($0.values.count))" }.joined(separator: " "), "\(grid.combinations)",
            grid.rank,
          ] + (walkForwards ? [grid.walkForward ?? "-"] : []) + [String(grid.createdAt.prefix(16)).replacingOccurrences(of: "T", with: " ")]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
