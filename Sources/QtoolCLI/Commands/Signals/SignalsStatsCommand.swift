import QtoolArgs
import QtoolCore
import QtoolEngine

enum SignalsStatsCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "stats", abstract: "Count signals by type, strength, strategy and symbol",
    discussion: "Over the last 24 hours unless --since or --all says otherwise; the filters narrow what is counted.",
    options: SignalFilterOptions.options + [
      .value("since", .duration, valueName: "age", help: "Count the signals of the last AGE (default 24h)."),
      .flag("all", help: "Count every signal stored."),
      CommonOptions.json,
    ],
    examples: [Example("qtool signals stats --since 7d --json", "A week's counts for a dashboard")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    if arguments.flag("all"), arguments.isGiven("since") { throw UsageError("give --since or --all, not both", commandPath: arguments.commandPath) }
    let operations = LiveOperations(try context.operations())
    var filter = try SignalFilterOptions.filter(context, now: operations.context.clock.now(), sinceDefault: 86_400)
    if arguments.flag("all") { filter.since = nil }
    let stats = try operations.stats(filter)
    if context.json {
      try context.printJSON(stats)
      return .success
    }
    context.stdout.line(
      "\(DisplayFormat.plural(stats.total, "signal"))" + (stats.since.map { " since \($0)" } ?? " in all") + (stats.late > 0 ? ", \(stats.late) late" : "")
        + (stats.suppressed > 0 ? ", \(stats.suppressed) suppressed" : ""))
    for (title, counts) in [
      ("type", stats.byType), ("strength", stats.byStrength), ("strategy", stats.byStrategy), ("symbol", stats.bySymbol), ("reason", stats.byReason),
    ]
    where !counts.isEmpty {
      let text = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(
        separator: ", ")
      context.stdout.line("by \(title.padding(toLength: 9, withPad: " ", startingAt: 0))\(text)")
    }
    return .success
  }
}
