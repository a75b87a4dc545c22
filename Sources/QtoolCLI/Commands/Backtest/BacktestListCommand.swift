import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List recorded backtest runs, newest first (or best first by a metric)", aliases: ["ls"],
    options: [
      .value("strategy", valueName: "name", help: "Only runs of this strategy.", completion: .dynamic("strategies")),
      .value("since", .duration, valueName: "age", help: "Only runs recorded in the last AGE, e.g. 7d."),
      .value("limit", .int, valueName: "n", help: "At most this many.", defaultValue: "50"),
      .value("sort", valueName: "metric", help: "Best first by this metric (qtool help metrics).", completion: .choices(Metrics.names)),
      CommonOptions.json,
    ],
    examples: [Example("qtool backtest list --strategy goog-sma --sort sharpe --limit 5", "The five best runs of a strategy")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let operations = BacktestOperations(try context.operations())
    guard let limit = arguments.int("limit"), limit >= 1 else { throw UsageError("--limit: expected 1 or more", commandPath: arguments.commandPath) }
    let since = arguments.duration("since").map { operations.context.clock.now() - Int64($0) * 1000 }
    let rows = try operations.list(RunFilter(strategy: arguments.string("strategy"), since: since, limit: limit, sort: arguments.string("sort")))
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
          .init("RUN"), .init("STRATEGY"), .init("CREATED"), .init("DATA"), .init("PARAMS"), .init("RETURN", .right), .init("SHARPE", .right),
          .init("MAX DD", .right), .init("TRADES", .right),
        ],
        rows: rows.map { row -> [String] in
          let created = String(row.createdAt.prefix(16)).replacingOccurrences(of: "T", with: " ")
          let data = "\(row.dataset ?? "?") \(Format.when(row.first))…\(Format.when(row.last))"
          let params = row.params.keys.sorted().map { key in "\(key)=\(Format.compact(row.params[key]!))" }.joined(separator: " ")
          let trades = row.metrics["trades"].map { String(Int($0)) } ?? "-"
          return [
            row.id, row.strategy, created, data, params, metric(row, "total_return", percent: true), metric(row, "sharpe", percent: false),
            metric(row, "max_drawdown", percent: true), trades,
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
