import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Show a recorded run: metrics and trades",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("id", help: "A run id (a unique prefix is enough).", completion: .dynamic("runs"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let detail = try BacktestOperations(try context.operations()).show(id: context.arguments.string("id")!)
    if context.json {
      try context.printJSON(detail)
      return .success
    }
    let run = detail.run
    let metrics = run.metricValues
    context.stdout.write(
      KeyValueList(pairs: [
        ("run", run.id), ("strategy", run.strategyName), ("engine", run.engineVersion), ("fingerprint", String(run.fingerprint.prefix(16))),
      ])
      .render())
    context.stdout.line()
    // Every metric, n/a where the run could not measure it (stored as null).
    context.stdout.write(
      KeyValueList(pairs: Metrics.names.sorted().map { ($0, metrics[$0].map { Format.decimal($0, places: 6) } ?? "n/a") }).render())
    context.stdout.line()
    context.stdout.write(
      Table(
        columns: [
          .init("SYMBOL"), .init("SIDE"), .init("SIZE", .right), .init("ENTRY"), .init("PRICE", .right), .init("EXIT"), .init("PRICE", .right),
          .init("PNL", .right),
          .init("RETURN", .right), .init("REASON"),
        ],
        rows: detail.trades.map {
          [
            $0.symbol ?? "", $0.side, Format.compact($0.size), UTCCalendar.format($0.entryTime), "\($0.entryPrice)", UTCCalendar.format($0.exitTime),
            "\($0.exitPrice)",
            Format.decimal($0.pnl, places: 2), Format.decimal($0.returnPct * 100, places: 2) + "%", $0.reason.rawValue,
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
