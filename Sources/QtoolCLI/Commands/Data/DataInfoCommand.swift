import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataInfoCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "info", abstract: "Show a dataset's statistics, sample rows and lineage",
    options: [
      .value("rows", .int, valueName: "n", help: "Sample rows to show from each end.", defaultValue: "5"),
      CommonOptions.json,
    ],
    positionals: [DataOptions.dataset])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let info = try DataOperations(try context.operations())
      .info(name: context.arguments.string("dataset")!, sampleRows: max(0, context.arguments.int("rows")!))
    if context.json {
      try context.printJSON(info)
      return .success
    }
    let dataset = info.dataset
    let daily = DisplayFormat.isDaily([dataset.firstTs, dataset.lastTs].compactMap { $0 })
    var pairs: [(String, String)] = [
      ("dataset", dataset.name), ("instrument", "\(dataset.symbol) from \(dataset.source)"),
      ("timeframe", dataset.timeframe), ("calendar", dataset.calendar), ("origin", dataset.origin),
      ("bars", "\(dataset.rowCount)"), ("gaps", "\(dataset.gapCount)"),
      ("range", "\(dataset.firstTs.map { DisplayFormat.time($0, daily: daily) } ?? "-") … \(dataset.lastTs.map { DisplayFormat.time($0, daily: daily) } ?? "-")"),
      ("content hash", dataset.contentHash ?? "-"),
    ]
    if let parent = dataset.parentName { pairs.append(("parent", parent)) }
    if let pipeline = dataset.pipeline { pairs.append(("pipeline", pipeline)) }
    context.stdout.write(KeyValueList(pairs: pairs).render())
    context.stdout.line()
    let number = { (value: Double?) in value.map { Format.decimal($0, places: 4) } ?? "-" }
    context.stdout.write(
      Table(
        columns: [
          .init("COLUMN"), .init("COUNT", .right), .init("MISSING", .right), .init("MIN", .right), .init("MAX", .right), .init("MEAN", .right),
          .init("STD", .right),
        ],
        rows: info.columns.map { [$0.name, "\($0.count)", "\($0.missing)", number($0.min), number($0.max), number($0.mean), number($0.std)] }
      ).render(bold: context.terminal.colorOnStdout))
    if !info.sample.isEmpty {
      context.stdout.line()
      context.stdout.write(
        Table(
          columns: [
            .init("TIME"), .init("OPEN", .right), .init("HIGH", .right), .init("LOW", .right), .init("CLOSE", .right), .init("VOLUME", .right),
          ] + (info.sample.first?.features ?? []).map { .init($0.name.uppercased(), .right) },
          rows: {
            // Prices at the precision the sample's prices need, volumes at theirs.
            let places = DisplayFormat.places(of: info.sample.flatMap { [$0.open, $0.high, $0.low, $0.close] })
            let volumes = DisplayFormat.column(info.sample.map(\.volume))
            return info.sample.enumerated().map { index, row in
              [row.time] + [row.open, row.high, row.low, row.close].map { DisplayFormat.fixed($0, places: places) } + [volumes[index]]
                + (row.features ?? []).map { $0.value.map { Format.decimal($0, places: 4) } ?? "n/a" }
            }
          }()
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
