import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyStatusCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "status", abstract: "Show runners and their paper accounts",
    discussion: """
      Status (running, paused, stopping, stopped, completed, failed, or dead: its process is \
      gone — its lease is free — or has not beaten its heart within live.stale_after seconds), \
      process, heartbeat age, the last bar processed and how long ago it closed, the position, \
      the paper account's equity and the signals of the last 24 hours. With a name: that \
      strategy in detail, every position with its stop and target.
      """,
    options: [
      .flag("trades", help: "With a name: the paper account's closed trades too (and every fill with --json)."),
      .flag("equity", help: "With a name: the paper account's equity and cash at every bar it processed."), CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", arity: .optional, help: "One strategy.", completion: .dynamic("strategies"))],
    examples: [
      Example("qtool strategy status", "Every strategy that has run"),
      Example("qtool strategy status btc-sma --json", "One strategy's runner and account, for a script"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let name = context.arguments.string("name")
    let operations = LiveOperations(try context.operations())
    var statuses = try operations.status(strategy: name, settings: try context.settings())
    if context.arguments.flag("trades") {
      guard let name else { throw UsageError("--trades needs a strategy's name", commandPath: context.arguments.commandPath) }
      if statuses[0].account != nil {
        let detail = try operations.account(strategy: name)
        statuses[0].trades = detail.trades
        statuses[0].fills = detail.fills
      }
    }
    if context.arguments.flag("equity") {
      guard let name else { throw UsageError("--equity needs a strategy's name", commandPath: context.arguments.commandPath) }
      statuses[0].equityCurve = try operations.equity(strategy: name)
    }
    if context.json {
      try context.printJSON(name == nil ? AnyEncodable(statuses) : AnyEncodable(statuses[0]))
      return .success
    }
    if let status = statuses.first, name != nil {
      render(status, context: context)
      if let curve = status.equityCurve {
        context.stdout.write("\n")
        context.stdout.write(
          Table(
            columns: [.init("BAR"), .init("EQUITY", .right), .init("CASH", .right)],
            rows: curve.map { [$0.time, Format.decimal($0.equity, places: 2), Format.decimal($0.cash, places: 2)] }
          ).render(bold: context.terminal.colorOnStdout))
      }
      if let trades = status.trades {
        context.stdout.write("\n")
        context.stdout.write(
          Table(
            columns: [
              .init("SYMBOL"), .init("SIDE"), .init("SIZE", .right), .init("ENTRY"), .init("PRICE", .right), .init("EXIT"), .init("PRICE", .right),
              .init("PNL", .right), .init("REASON"),
            ],
            rows: trades.map { trade in
              [
                trade.symbol, trade.side, SignalLine.number(trade.size), UTCCalendar.format(trade.entryTime), SignalLine.number(trade.entryPrice),
                UTCCalendar.format(trade.exitTime), SignalLine.number(trade.exitPrice), Format.decimal(trade.pnl, places: 2), trade.reason,
              ]
            }
          ).render(bold: context.terminal.colorOnStdout))
      }
      return .success
    }
    if statuses.isEmpty {
      context.note("no strategy has run yet; start one with `qtool strategy start NAME`")
      return .success
    }
    context.stdout.write(
      Table(
        columns: [
          .init("STRATEGY"), .init("STATUS"), .init("PID", .right), .init("HEARTBEAT", .right), .init("LAST BAR"), .init("LAG", .right),
          .init("POSITION"), .init("EQUITY", .right), .init("SIGNALS 24H", .right),
        ],
        rows: statuses.map { status in
          [
            status.strategy, status.status, status.pid.map(String.init) ?? "-",
            status.heartbeatAgeSeconds.map { Format.duration($0) + " ago" } ?? "-",
            status.lastBar ?? "-", status.lagSeconds.map { Format.duration(max(0, $0)) } ?? "-", position(status.account),
            status.account.map { equity($0) } ?? "-", String(status.signals24h),
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }

  static func position(_ account: AccountInfo?) -> String {
    guard let account else { return "-" }
    switch account.positions.count {
    case 0: return "flat"
    case 1:
      let position = account.positions[0]
      return "\(position.side) \(SignalLine.number(position.size)) \(position.symbol)"
    default: return "\(account.positions.count) positions"
    }
  }

  static func equity(_ account: AccountInfo) -> String {
    let change = account.returnPct * 100
    return Format.decimal(account.equity, places: 2) + " (\(change >= 0 ? "+" : "")\(Format.decimal(change, places: 2))%)"
  }

  static func render(_ status: RunnerStatus, context: CommandContext) {
    var lines: [(String, String)] = [("strategy", status.strategy), ("status", status.status)]
    if let run = status.runID { lines.append(("run", run + (status.feed.map { ", \($0) feed" } ?? ""))) }
    if let pid = status.pid { lines.append(("process", "pid \(pid) on \(status.host ?? "?")")) }
    if let started = status.startedAt { lines.append(("started", started)) }
    if let finished = status.finishedAt { lines.append(("finished", finished)) }
    if let age = status.heartbeatAgeSeconds { lines.append(("heartbeat", Format.duration(age) + " ago")) }
    if let bar = status.lastBar {
      lines.append(("last bar", bar + (status.lagSeconds.map { " (closed \(Format.duration(max(0, $0))) ago)" } ?? "")))
    }
    if let bars = status.barsProcessed {
      lines.append(("bars", "\(bars) processed by this run" + ((status.staleRounds ?? 0) > 0 ? ", \(status.staleRounds!) stale rounds" : "")))
    }
    lines.append(("signals", "\(status.signals24h) in the last 24 h"))
    if let account = status.account {
      lines.append(
        (
          "account",
          "\(account.id) (\(account.status), v\(account.strategyVersion)\(account.paused ? ", paused" : "")\(account.halted ? ", halted" : ""))"
        ))
      lines.append(("equity", equity(account) + " of \(Format.decimal(account.capital, places: 2)); cash \(Format.decimal(account.cash, places: 2))"))
      lines.append(("trades", "\(account.trades) closed, realized pnl \(Format.decimal(account.realizedPnl, places: 2)); \(account.fills) fills"))
      if account.positions.isEmpty { lines.append(("position", "flat")) }
      for position in account.positions {
        var text =
          "\(position.side) \(SignalLine.number(position.size)) \(position.symbol) @ \(SignalLine.number(position.entryPrice)) since \(position.entryTime)"
        if let price = position.lastPrice { text += ", last \(SignalLine.number(price))" }
        if let pnl = position.unrealizedPnl { text += ", unrealized \(Format.decimal(pnl, places: 2))" }
        if let stop = position.stop { text += ", stop \(SignalLine.number(stop))" }
        if let target = position.target { text += ", target \(SignalLine.number(target))" }
        lines.append(("position", text))
      }
    }
    if let divergences = status.divergences, divergences > 0 { lines.append(("diverged", "\(divergences) times (stored bars changed under it)")) }
    if let note = status.note { lines.append(("note", note)) }
    if let error = status.error { lines.append(("error", "\(error.message) [\(error.code)]")) }
    if let log = status.logPath { lines.append(("log", log)) }
    for (label, value) in lines { context.stdout.line(label.padding(toLength: 10, withPad: " ", startingAt: 0) + value) }
  }
}
