import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum SignalsListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List signals, newest first, a page at a time",
    discussion: """
      --format json prints {items, total, page, size, pages}; csv one row per signal with its \
      indicators as JSON in the last column.
      """,
    aliases: ["ls"],
    options: SignalFilterOptions.options + [
      SignalFilterOptions.since,
      .value("until", .date, valueName: "date", help: "Only signals created before this time (UTC)."),
      .value("page", .int, valueName: "n", help: "Which page.", defaultValue: "1"),
      .value("size", .int, valueName: "n", help: "Signals per page (at most 1000).", defaultValue: "50"),
      .value("format", .choice(["table", "csv", "json"]), valueName: "format", help: "Output format.", defaultValue: "table"),
      CommonOptions.json,
    ],
    examples: [Example("qtool signals list --strategy btc-sma --since 7d --format csv > signals.csv", "A week of one strategy's signals as CSV")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let page = arguments.int("page"), page >= 1 else { throw UsageError("--page: expected 1 or more", commandPath: arguments.commandPath) }
    guard let size = arguments.int("size"), (1...1000).contains(size) else {
      throw UsageError("--size: expected 1 to 1000", commandPath: arguments.commandPath)
    }
    let operations = LiveOperations(try context.operations())
    var filter = try SignalFilterOptions.filter(context, now: operations.context.clock.now())
    filter.until = DataOptions.milliseconds(arguments, "until")
    let result = try operations.signals(filter, page: page, size: size)
    let format = context.json ? "json" : arguments.string("format") ?? "table"
    switch format {
    case "json":
      try context.printJSON(result)
    case "csv":
      var text =
        "id,bar_time,strategy,strategy_version,symbol,timeframe,type,action,reason,strength_raw,strength_level,price,late,suppressed,created_at,indicators,models\n"
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      for signal in result.items {
        let indicators = String(decoding: try encoder.encode(signal.indicators), as: UTF8.self)
        let fields = [
          signal.id, signal.barTime, signal.strategy, String(signal.strategyVersion), signal.symbol, signal.timeframe, signal.type, signal.action,
          signal.reason, SignalLine.number(signal.strengthRaw), signal.strengthLevel, signal.price.map(SignalLine.number) ?? "", String(signal.late),
          String(signal.suppressed), signal.createdAt, indicators, signal.models.map { "\($0.name)@\($0.version)" }.joined(separator: " "),
        ]
        text += fields.map(csvField).joined(separator: ",") + "\n"
      }
      context.stdout.write(text)
    default:
      if result.items.isEmpty {
        context.note(
          result.total == 0 ? "no signals" + (filter == SignalFilter() ? " yet" : " match") : "page \(page) is past the last (\(result.pages))")
        return .success
      }
      context.stdout.write(
        Table(
          columns: [
            .init("BAR"), .init("STRATEGY"), .init("SYMBOL"), .init("TYPE"), .init("ACTION"), .init("REASON"), .init("STRENGTH", .right),
            .init("LEVEL"),
            .init("PRICE", .right), .init("FLAGS"),
          ],
          rows: result.items.map { signal in
            [
              signal.barTime, signal.strategy, "\(signal.symbol) \(signal.timeframe)", signal.type, signal.action, signal.reason,
              SignalLine.number(signal.strengthRaw), signal.strengthLevel, signal.price.map(SignalLine.number) ?? "-",
              [signal.late ? "late" : nil, signal.suppressed ? "suppressed" : nil].compactMap { $0 }.joined(separator: ","),
            ]
          }
        ).render(bold: context.terminal.colorOnStdout))
      context.note("page \(result.page) of \(result.pages) (\(DisplayFormat.plural(result.total, "signal")))")
    }
    return .success
  }

  static func csvField(_ text: String) -> String {
    guard text.contains(",") || text.contains("\"") || text.contains("\n") else { return text }
    return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }
}
