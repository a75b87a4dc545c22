import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

/// The options of `strategy run` and `strategy start`, declared once, and how a runner's
/// events are written to stderr.
enum LiveOptions {
  static let strategy = PositionalSpec(
    "strategy", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file or a registered strategy's name.",
    completion: .dynamic("strategies"))

  static let run: [OptionSpec] = [
    .value(
      "feed", .choice(LiveFeed.allCases.map(\.rawValue)), valueName: "feed",
      help: "Where bars come from: downloaded at each close, stored by another process, or the stored ones replayed.", defaultValue: "download"),
    .value("from", .date, valueName: "date", help: "A new account's first traded bar (UTC); the indicators warm up on the stored bars before it."),
    .value("speed", valueName: "n|max", help: "Replay: bars per second, or max (the default)."),
    .value("settle", valueName: "time", help: "Download feed: how long after a bar's close to fetch it, e.g. 5s or 500ms.", defaultValue: "5s"),
    .value(
      "retries", .int, valueName: "n", help: "Download feed: times to ask again for a bar not there yet before logging stale data.", defaultValue: "5"
    ),
    .value(
      "late-after", .int, valueName: "bars", help: "Signals processed more than this many bars after their bar closed are late: kept, not notified.",
      defaultValue: "1"),
    .flag("notify-late", help: "Notify late signals too."),
    .flag("new-account", help: "Close the strategy's paper account (it is kept) and open a new one."),
    .value("capital", .double, valueName: "amount", help: "A new account's capital (default: execution.capital or 10000)."),
    .value("param", valueName: "name=value", help: "Override a param of the spec (a new account only).", list: true),
  ]

  /// Milliseconds of `500ms`, `5s`, `2m`, `1h` (0 allowed).
  static func milliseconds(_ text: String, option: String, _ arguments: ParsedArguments) throws -> Int64 {
    let units: [(String, Int64)] = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)]
    for (unit, scale) in units where text.hasSuffix(unit) {
      if let value = Double(text.dropLast(unit.count)), value >= 0, value.isFinite, value * Double(scale) < 1e12 {
        return Int64((value * Double(scale)).rounded())
      }
    }
    throw UsageError("--\(option): expected a time like 500ms, 5s or 2m, got '\(text)'", commandPath: arguments.commandPath)
  }

  static func request(_ context: CommandContext, strategy: StrategyReference) throws -> LiveRunRequest {
    let arguments = context.arguments
    let feed = LiveFeed(rawValue: arguments.string("feed") ?? "download") ?? .download
    var speed: Double?
    if let text = arguments.string("speed"), text != "max" {
      guard let value = Double(text), value >= 1e-6, value.isFinite else {
        throw UsageError("--speed: expected a number of bars per second from 0.000001 up, or max; got '\(text)'", commandPath: arguments.commandPath)
      }
      speed = value
    }
    if arguments.isGiven("speed"), feed != .replay {
      throw UsageError("--speed applies only to --feed replay", commandPath: arguments.commandPath)
    }
    for option in ["settle", "retries"] where arguments.isGiven(option) && feed != .download {
      throw UsageError("--\(option) applies only to --feed download", commandPath: arguments.commandPath)
    }
    guard let retries = arguments.int("retries"), retries >= 0, retries <= 100 else {
      throw UsageError("--retries: expected 0 to 100", commandPath: arguments.commandPath)
    }
    guard let late = arguments.int("late-after"), late >= 0, late <= 1_000_000 else {
      throw UsageError("--late-after: expected 0 to 1000000 bars", commandPath: arguments.commandPath)
    }
    return LiveRunRequest(
      strategy: strategy, feed: feed, from: DataOptions.milliseconds(arguments, "from"), speed: speed, once: arguments.flag("once"),
      settleMilliseconds: try milliseconds(arguments.string("settle") ?? "5s", option: "settle", arguments), retries: retries, lateAfterBars: late,
      notifyLate: arguments.flag("notify-late"), newAccount: arguments.flag("new-account"), capital: try DataOptions.capital(arguments),
      params: try BacktestOptions.parameters(arguments), logPath: arguments.string("log-file"))
  }

  /// Writes a runner's events on stderr: one line per signal and fill, notes and warnings;
  /// each bar only with --verbose. Nothing but warnings with --quiet.
  static func log(_ event: LiveEvent, context: CommandContext) {
    let verbose = context.arguments.count("verbose") > 0
    switch event {
    case .started(let runID, let accountID, let strategy, let version, let feed, let continued, let cursor):
      let account =
        continued
        ? "continuing paper account \(accountID)" + (cursor.map { " after \(UTCCalendar.format($0, alwaysTime: true))" } ?? "")
        : "new paper account \(accountID)"
      context.note("qtool: \(strategy) v\(version): run \(runID), \(account), \(feed.rawValue) feed (pid \(getpid()))")
    case .running:
      break
    case .signal(let signal):
      guard !context.quiet else { return }
      context.stderr.line(SignalLine.render(signal))
    case .fill(let fill):
      guard !context.quiet else { return }
      let pnl = fill.pnl.map { "  pnl \(Format.decimal($0, places: 2))" } ?? ""
      context.stderr.line(
        "\(fill.time)  fill  \(fill.side) \(SignalLine.number(fill.size)) \(fill.symbol) @ \(SignalLine.number(fill.price))  \(fill.action) (\(fill.reason))  commission \(Format.decimal(fill.commission, places: 2))\(pnl)"
      )
    case .bar(let time, let equity, _):
      if verbose, !context.quiet {
        context.stderr.line("\(UTCCalendar.format(time, alwaysTime: true))  bar  equity \(Format.decimal(equity, places: 2))")
      }
    case .note(let text):
      context.note("qtool: \(text)")
    case .warning(let text):
      context.stderr.line("qtool: warning: \(Terminal.printable(text))")
    }
  }
}

/// One signal on one line, as `signals tail` and a runner's log print it.
enum SignalLine {
  static func render(_ signal: SignalInfo) -> String {
    var parts = [
      signal.barTime, signal.strategy, "\(signal.symbol) \(signal.timeframe)", signal.type.padding(toLength: 4, withPad: " ", startingAt: 0),
      signal.action.padding(toLength: 11, withPad: " ", startingAt: 0), signal.reason.padding(toLength: 13, withPad: " ", startingAt: 0),
      "strength \(number(signal.strengthRaw)) (\(signal.strengthLevel))",
    ]
    if let price = signal.price { parts.append("@ \(number(price))") }
    if signal.late { parts.append("late") }
    if signal.suppressed { parts.append("suppressed (paused)") }
    return parts.joined(separator: "  ")
  }

  static func number(_ value: Double) -> String {
    guard value.isFinite else { return "n/a" }
    if value == value.rounded(), abs(value) < 1e12 { return String(Int64(value)) }
    var text = String(format: "%.6f", value)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
  }
}

/// The filters of the signals commands, declared once.
enum SignalFilterOptions {
  static let options: [OptionSpec] = [
    .value("strategy", valueName: "name", help: "Only signals of this strategy.", list: true, completion: .dynamic("strategies")),
    .value("symbol", valueName: "symbol", help: "Only signals for this symbol.", list: true),
    .value("type", .choice(["buy", "sell", "hold"]), valueName: "type", help: "Only signals of this type.", list: true),
    .value("level", .choice(["strong", "medium", "weak", "none"]), valueName: "level", help: "Only signals of this strength level.", list: true),
    .value("min-strength", .double, valueName: "n", help: "Only signals at least this strong (0 to 100)."),
  ]

  static let since = OptionSpec.value("since", .duration, valueName: "age", help: "Only signals created in the last AGE, e.g. 24h or 7d.")

  /// - parameter now: the operations' clock (`since` counts back from it).
  static func filter(_ context: CommandContext, now: Int64, sinceDefault: Int? = nil) throws -> SignalFilter {
    let arguments = context.arguments
    if let minimum = arguments.double("min-strength"), !(0...100).contains(minimum) {
      throw UsageError("--min-strength: expected 0 to 100, got \(Format.compact(minimum))", commandPath: arguments.commandPath)
    }
    let seconds = arguments.duration("since") ?? sinceDefault
    return SignalFilter(
      strategies: arguments.strings("strategy"), symbols: arguments.strings("symbol"), types: arguments.strings("type").map { $0.uppercased() },
      levels: arguments.strings("level"), minStrength: arguments.double("min-strength"),
      since: seconds.map { now - Int64($0) * 1000 })
  }
}
