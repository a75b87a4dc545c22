import QtoolArgs
import QtoolCore
import QtoolData

/// Options shared by the data commands, declared once.
enum DataOptions {
  static let dataset = PositionalSpec("dataset", help: "A stored dataset, e.g. GOOG-1d.", completion: .dynamic("datasets"))
  static let from = OptionSpec.value("from", .date, valueName: "date", help: "First bar to include (UTC).")
  static let to = OptionSpec.value("to", .date, valueName: "date", help: "Include bars before this time (UTC).")
  static let wait = OptionSpec.flag("wait", help: "Wait while another process writes the dataset, instead of exiting 75.")
  static let calendar = OptionSpec.value(
    "calendar", .choice(TradingCalendar.allCases.map(\.rawValue)), valueName: "calendar",
    help: "Trading calendar gaps are judged against (default: 24x7 for crypto, weekdays otherwise).")

  /// Column mapping and format options for CSV input (`data import`, the csv source).
  static let csv: [OptionSpec] = [
    .value(
      "map", valueName: "field=column",
      help: "Take a field (timestamp, open, high, low, close, volume) from a named or numbered column.", list: true),
    .flag("no-header", help: "The first line is data, not a header."),
    .value("delimiter", valueName: "char", help: "Field separator (default: guessed from , ; tab |)."),
    .value(
      "timestamp-unit", .choice(TimestampParser.EpochUnit.allCases.map(\.rawValue)), valueName: "unit",
      help: "Unit of epoch timestamps (default: guessed per value from its size)."),
    .value("timestamp-format", valueName: "pattern", help: "Date pattern for unusual timestamps, e.g. 'dd/MM/yyyy HH:mm' (UTC)."),
  ]

  static func csvOptions(_ arguments: ParsedArguments) throws -> CSVOptions {
    var options = CSVOptions()
    for pair in arguments.strings("map") {
      let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[1].isEmpty else {
        throw UsageError("--map: expected field=column, got '\(pair)'", commandPath: arguments.commandPath)
      }
      let field = parts[0].lowercased()
      guard ["timestamp", "open", "high", "low", "close", "volume"].contains(field) else {
        throw UsageError(
          "--map: unknown field '\(parts[0])'; use timestamp, open, high, low, close or volume", commandPath: arguments.commandPath)
      }
      try BacktestOptions.refuseRepeatedKey(
        field, option: "map", first: options.columns[field].map { "\(field)=\($0)" }, second: pair, arguments)
      options.columns[field] = parts[1]
    }
    if arguments.flag("no-header") { options.hasHeader = false }
    if let delimiter = arguments.string("delimiter") {
      let resolved = delimiter == "\\t" || delimiter == "tab" ? "\t" : delimiter
      guard resolved.utf8.count == 1 else {
        throw UsageError("--delimiter: expected one character, got '\(delimiter)'", commandPath: arguments.commandPath)
      }
      options.delimiter = resolved.utf8.first
    }
    options.epochUnit = arguments.string("timestamp-unit").flatMap(TimestampParser.EpochUnit.init(rawValue:))
    options.timestampFormat = arguments.string("timestamp-format")
    return options
  }

  /// `--capital`, which must be positive when given.
  static func capital(_ arguments: ParsedArguments) throws -> Double? {
    guard let capital = arguments.double("capital") else { return nil }
    guard capital > 0 else { throw UsageError("--capital: must be positive, got \(Format.compact(capital))", commandPath: arguments.commandPath) }
    return capital
  }

  /// Milliseconds of a `--from`/`--to` date.
  static func milliseconds(_ arguments: ParsedArguments, _ name: String) -> Int64? {
    arguments.date(name).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
  }
}
