import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum DataListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List stored datasets", aliases: ["ls"],
    options: [CommonOptions.json],
    examples: [Example("qtool data list --json | jq -r '.[].name'", "Dataset names for a script")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let datasets = try DataOperations(try context.operations()).list()
    if context.json {
      try context.printJSON(datasets)
      return .success
    }
    if datasets.isEmpty {
      context.note("no datasets yet; add one with `qtool data import FILE --symbol S --timeframe T` or `qtool data download`")
      return .success
    }
    // One form per column: dates when every dataset's range is in whole days.
    let daily = DisplayFormat.isDaily(datasets.flatMap { [$0.firstTs, $0.lastTs] }.compactMap { $0 })
    let table = Table(
      columns: [
        .init("DATASET"), .init("SOURCE"), .init("SYMBOL"), .init("TF"), .init("FIRST"), .init("LAST"),
        .init("BARS", .right), .init("GAPS", .right), .init("ORIGIN"),
      ],
      rows: datasets.map { dataset in
        [
          dataset.name, dataset.source, dataset.symbol, dataset.timeframe,
          dataset.firstTs.map { DisplayFormat.time($0, daily: daily) } ?? "-", dataset.lastTs.map { DisplayFormat.time($0, daily: daily) } ?? "-",
          "\(dataset.rowCount)", "\(dataset.gapCount)", dataset.origin,
        ]
      })
    context.stdout.write(table.render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
