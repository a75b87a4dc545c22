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
      .value("since", valueName: "date|age", help: "Only runs recorded since DATE (2024-06-01, UTC) or in the last AGE (7d, 12h)."),
      .value("limit", .int, valueName: "n", help: "At most this many.", defaultValue: "50"),
      .value("sort", valueName: "metric", help: "Best first by this metric (qtool help metrics).", completion: .choices(Metrics.names)),
      CommonOptions.json,
    ],
    examples: [
      Example("qtool backtest list --strategy goog-sma --sort sharpe --limit 5", "The five best runs of a strategy"),
      Example("qtool backtest list --since 2024-06-01", "The runs recorded since June 2024"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let operations = BacktestOperations(try context.operations())
    guard let limit = arguments.int("limit"), limit >= 1 else { throw UsageError("--limit: expected 1 or more", commandPath: arguments.commandPath) }
    var since: Int64?
    if let text = arguments.string("since") {
      if let seconds = ValueParsing.durationSeconds(text) {
        since = operations.context.clock.now() - Int64(seconds) * 1000
      } else if let date = ValueParsing.date(text) {
        since = Int64((date.timeIntervalSince1970 * 1000).rounded())
      } else {
        throw UsageError("--since: expected a date (2024-06-01) or an age (7d, 12h), got '\(text)'", commandPath: arguments.commandPath)
      }
    }
    let rows = try operations.list(RunFilter(strategy: arguments.string("strategy"), since: since, limit: limit, sort: arguments.string("sort")))
    if context.json {
      try context.printJSON(rows)
      return .success
    }
    if rows.isEmpty {
      context.note("no runs yet; `qtool backtest run SPEC` records one")
      return .success
    }
    func metric(_ row: RunSummary, _ name: String) -> String { DisplayFormat.metric(name, row.metrics[name]) }
    // One form per column: dates when every run's range is in whole days.
    let daily = DisplayFormat.isDaily(rows.flatMap { [$0.first, $0.last] }.compactMap { $0.flatMap { TimestampParser.parse($0) } })
    context.stdout.write(
      Table(
        columns: [
          .init("RUN"), .init("STRATEGY"), .init("CREATED"), .init("DATA"), .init("PARAMS"), .init("RETURN", .right), .init("SHARPE", .right),
          .init("MAX DD", .right), .init("TRADES", .right),
        ],
        rows: rows.map { row -> [String] in
          let created = String(row.createdAt.prefix(16)).replacingOccurrences(of: "T", with: " ")
          let data = "\(row.dataset ?? "?") \(DisplayFormat.time(row.first, daily: daily))…\(DisplayFormat.time(row.last, daily: daily))"
          let params = row.params.keys.sorted().map { key in "\(key)=\(DisplayFormat.param(row.params[key]!))" }.joined(separator: " ")
          return [
            row.id, row.strategy, created, data, params, metric(row, "total_return"), metric(row, "sharpe"), metric(row, "max_drawdown"),
            metric(row, "trades"),
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
