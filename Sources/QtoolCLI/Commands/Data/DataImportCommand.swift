import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataImportCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "import", abstract: "Load local files of bars into the store",
    discussion: """
      Reads CSV files, plain or compressed (.gz, .zip, .tar.gz, .bz2, .xz). The layout is \
      recognised without options: a header naming the timestamp (timestamp, date, time, datetime, \
      open_time, or an unnamed first column) and open/high/low/close/volume in any case or order, \
      or no header with timestamp,open,high,low,close,volume first (Binance archives). Timestamps \
      may be ISO-8601 dates or date-times, or epoch seconds, milliseconds or microseconds.

      All files go into one dataset (default name SYMBOL-TIMEFRAME) in one transaction: the \
      import is stored whole or not at all. Bars already stored at the same time are replaced.

      Bars follow the same rules as downloads: every price finite and above zero (unless \
      --allow-nonpositive), high not below low, open and close inside them, volume not negative, \
      and open times on the timeframe's grid and spaced like it — hourly bars given as -t 1d are \
      refused (65) unless --force-timeframe. Nothing of a refused import is stored.
      """,
    options: [
      .value("symbol", short: "s", valueName: "symbol", help: "Instrument symbol, e.g. GOOG or BTCUSDT.", required: true),
      .value("timeframe", short: "t", .timeframe, valueName: "timeframe", help: "Bar timeframe, e.g. 1m, 1h, 1d.", required: true),
      .value("name", valueName: "dataset", help: "Dataset name (default: SYMBOL-TIMEFRAME)."),
      .value("source-name", valueName: "source", help: "Where the data came from, recorded in the catalog.", defaultValue: "csv"),
      DataOptions.calendar, DataOptions.wait,
      .flag("force-timeframe", help: "Store the bars although their spacing does not fit --timeframe."),
      .flag("allow-nonpositive", help: "Accept zero and negative prices (spreads, some futures); recorded in the dataset."),
    ] + DataOptions.csv + [CommonOptions.json],
    positionals: [
      PositionalSpec("file", .path(.file(extensions: ["csv", "gz", "zip", "tgz", "bz2", "xz"])), arity: .variadic, help: "Files to import (- for stdin).")
    ],
    examples: [
      Example("qtool data import GOOG.csv --symbol GOOG --timeframe 1d", "Import a daily CSV with a header"),
      Example("qtool data import BTCUSDT-1d-2024-*.zip -s BTCUSDT -t 1d --source-name binance", "Import Binance monthly archives"),
      Example("qtool data import prices.csv -s X -t 1h --map timestamp=Time --map close='Adj Close'", "Name the columns yourself"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    // `-` is standard input, kept in a temporary file for the readers (format by its bytes).
    var files = arguments.strings("file")
    var temporary: URL?
    defer { if let temporary { try? FileManager.default.removeItem(at: temporary.deletingLastPathComponent()) } }
    // Messages name it "standard input", never the temporary file it is kept in.
    var names = files
    if let index = files.firstIndex(where: FileArgument.isStandard) {
      let file = try FileArgument.standardInputAsFile()
      temporary = file
      files[index] = file.path
      names[index] = "standard input"
    }
    let request = ImportRequest(
      files: files, symbol: arguments.string("symbol")!,
      timeframe: Timeframe(arguments.string("timeframe")!)!, name: arguments.string("name"),
      sourceName: arguments.string("source-name")!,
      calendar: arguments.string("calendar").flatMap(TradingCalendar.init(rawValue:)),
      csv: try DataOptions.csvOptions(arguments), wait: arguments.flag("wait"), forceTimeframe: arguments.flag("force-timeframe"),
      allowNonPositive: arguments.flag("allow-nonpositive"), displayNames: names)
    let report = try DataOperations(try context.operations()).importFiles(request)
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let skipped = report.files.map(\.skippedRows).reduce(0, +)
    var line = "imported \(DisplayFormat.plural(report.barsRead, "bar")) into \(report.dataset)"
    line += " (\(report.datasetBars) stored, \(Format.when(report.first)) … \(Format.when(report.last)), \(DisplayFormat.plural(report.gaps, "gap")))"
    line += " in \(Format.duration(report.seconds))"
    context.stdout.line(line)
    if report.duplicatesInInput > 0 { context.note("note: \(DisplayFormat.plural(report.duplicatesInInput, "duplicate timestamp")) in the input; the last of each was kept") }
    if skipped > 0 {
      context.note(
        "note: \(DisplayFormat.plural(skipped, "row")) without a price or volume (empty, null or NaN) \(skipped == 1 ? "was" : "were") left out, not stored")
    }
    return .success
  }
}
