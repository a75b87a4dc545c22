import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(name: "list", abstract: "List recorded backtest runs, newest first", aliases: ["ls"], options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let rows = try BacktestOperations(try context.operations()).summaries()
    if context.json {
      try context.printJSON(rows)
      return .success
    }
    if rows.isEmpty {
      context.note("no runs yet; `qtool backtest run SPEC` records one")
      return .success
    }
    func metric(_ row: RunSummary, _ name: String, percent: Bool) -> String {
      guard let value = row.metrics[name] else { return "n/a" }
      return percent ? Format.decimal(value * 100, places: 2) + "%" : Format.decimal(value, places: 2)
    }
    context.stdout.write(
      Table(
        columns: [
          .init("RUN"), .init("STRATEGY"), .init("CREATED"), .init("RETURN", .right), .init("SHARPE", .right), .init("MAX DD", .right),
          .init("TRADES", .right),
        ],
        rows: rows.map {
          [
            $0.id, $0.strategy, $0.created, metric($0, "total_return", percent: true), metric($0, "sharpe", percent: false),
            metric($0, "max_drawdown", percent: true), $0.metrics["trades"].map { String(Int($0)) } ?? "-",
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
