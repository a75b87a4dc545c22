import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import QtoolTestSupport
import Synchronization
import Testing

@testable import QtoolEngine

/// Settings that read no real config file; `extra` as if from the environment.
func testSettings(_ extra: [String: String] = [:]) throws -> Settings {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-settings-\(UUID().uuidString)").path
  var environment = ["XDG_CONFIG_HOME": directory, "HOME": directory]
  for (key, value) in extra { environment[key] = value }
  return try Settings.resolve(flags: [:], configFile: nil, environment: environment)
}

/// The package's root, and the shared recordings beside it.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let sharedData = packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

/// Registers `text` as a strategy.
@discardableResult
func register(_ text: String, in context: OperationContext) throws -> String {
  let loaded = try StrategyLoader.parse(text, origin: "test")
  _ = try StrategyOperations(context).register(name: loaded.spec.name, path: nil, text: text)
  return loaded.spec.name
}

/// Runs `request` to its end on `context`.
@discardableResult
func runLive(_ request: LiveRunRequest, _ context: OperationContext, settings: Settings? = nil) throws -> LiveRunSummary {
  let runner = LiveRunner(request, settings: try settings ?? testSettings(), context: context)
  return try runner.run()
}

/// A spec with stops, a target, a trailing stop, shorts and whole units: every path of the
/// trading rules a live account takes.
let riskSpec = """
  name: parity-risk
  universe: { symbols: [GOOG], timeframe: 1d }
  params: { fast: 10, slow: 30 }
  rules:
    entry: cross_above(sma(close, fast), sma(close, slow))
    exit: cross_below(sma(close, fast), sma(close, slow))
    short_entry: cross_below(sma(close, fast), sma(close, slow)) and rsi(close, 14) < 45
    short_exit: cross_above(sma(close, fast), sma(close, slow))
  sizing: { fraction: 0.9 }
  costs: { commission: 0.001, slippage_bps: 5 }
  risk: { stop_loss: 0.06, take_profit: 0.25, trailing_stop: 0.1 }
  execution: { fill: FILL, units: whole, close_at_end: false, capital: 100000 }
  signals:
    strength: rsi(close, 14)
    strong: 70
    medium: 50
    weak: 30
  """

let portfolioSpec = """
  name: parity-portfolio
  universe: { symbols: [GOOG, AAPL], timeframe: 1d }
  rules: {}
  portfolio: { rank: "roc(close, 20)", top: 1, rebalance: weekly }
  costs: { commission: 0.001, slippage_bps: 2 }
  risk: { stop_loss: 0.06 }
  execution: { close_at_end: false }
  """

@Suite(.serialized, .timeLimit(.minutes(3))) struct LiveRunnerTests {
  /// The paper account of a replay has exactly the trades and the equity curve of `backtest
  /// run` on the same bars, whatever the execution model: the engine decides both.
  @Test(arguments: ["next_open", "close"])
  func replayHasTheBacktestsTradesAndEquity(fill: String) throws {
    let (context, _) = try googStore()
    let name = try register(riskSpec.replacingOccurrences(of: "FILL", with: fill), in: context)
    let summary = try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay), context)
    #expect(summary.status == "completed")
    #expect(summary.barsProcessed == 2148)

    let report = try BacktestOperations(context).run(BacktestRequest(strategy: .registered(name: name, version: nil)))
    let account = try LiveOperations(context).account(strategy: name)
    #expect(report.trades.count > 20, "the spec trades")
    #expect(Set(report.trades.map(\.reason)) == [.signal, .stop, .target, .trailing], "stops, targets and the trailing stop act too")
    #expect(Set(report.trades.map(\.side)) == ["long", "short"])
    #expect(account.trades.count == report.trades.count)
    for (paper, backtest) in zip(account.trades, report.trades) {
      #expect(paper.side == backtest.side)
      #expect(paper.size == backtest.size)
      #expect(paper.entryTime == backtest.entryTime)
      #expect(paper.entryPrice == backtest.entryPrice)
      #expect(paper.exitTime == backtest.exitTime)
      #expect(paper.exitPrice == backtest.exitPrice)
      #expect(paper.pnl == backtest.pnl)
    }
    #expect(account.timestamps == report.timestamps)
    #expect(account.equity == report.equity, "every bar's equity, bit for bit")
    #expect(account.account.equity == report.equity.last)
    // What the engine still holds after the last bar is the account's position, stop and target.
    let bars = try context.database.bars(datasetID: try context.database.dataset(named: "GOOG-1d").id)
    let loaded = try StrategyLoader.parse(riskSpec.replacingOccurrences(of: "FILL", with: fill), origin: "t")
    let held = Backtester.run(try PaperTrader.compile(loaded.spec, params: [:], capital: nil, origin: "t"), bars: bars).openPositions
    #expect(account.account.positions.map(\.size) == held.map(\.size))
    #expect(account.account.positions.map(\.entryPrice) == held.map(\.entryPrice))
    #expect(account.account.positions.map(\.stop) == held.map(\.stop))
    #expect(account.account.positions.map(\.target) == held.map(\.target))
  }

  /// A portfolio spec: the same, symbol by symbol.
  @Test func portfolioReplayHasTheBacktestsTradesAndEquity() throws {
    let (context, _) = try googStore()
    _ = try DataOperations(context).importFiles(
      ImportRequest(files: [sharedData.appendingPathComponent("stooq/aapl_us_d.csv").path], symbol: "AAPL", timeframe: Timeframe("1d")!))
    let name = try register(portfolioSpec, in: context)
    let summary = try runLive(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay, from: TimestampParser.parse("2009-01-02")), context)
    #expect(summary.status == "completed")
    let report = try BacktestOperations(context).run(
      BacktestRequest(strategy: .registered(name: name, version: nil), from: TimestampParser.parse("2009-01-02")))
    let account = try LiveOperations(context).account(strategy: name)
    #expect(report.trades.count > 20)
    #expect(Set(report.tradeSymbols) == ["GOOG", "AAPL"])
    #expect(account.trades.count == report.trades.count)
    let sorted = { (trades: [(String, Int64, Double, Int64, Double, Double)]) in trades.sorted { ($0.1, $0.0) < ($1.1, $1.0) } }
    let paper = sorted(account.trades.map { ($0.symbol, $0.entryTime, $0.entryPrice, $0.exitTime, $0.exitPrice, $0.pnl) })
    let backtest = sorted(report.trades.map { ($0.symbol ?? "", $0.entryTime, $0.entryPrice, $0.exitTime, $0.exitPrice, $0.pnl) })
    #expect(paper.map { "\($0)" } == backtest.map { "\($0)" })
    #expect(account.timestamps == report.timestamps)
    #expect(account.equity == report.equity)
    let signals = try LiveOperations(context).tail(SignalFilter(strategies: [name]), count: 10_000)
    #expect(Set(signals.map(\.symbol)) == ["GOOG", "AAPL"])
    #expect(signals.filter { $0.action == "enter_long" }.count >= account.trades.count)
  }

  /// Stopped in the middle and started again: the same account, no bar missed, no signal
  /// twice, the same final equity as a run never interrupted.
  @Test func aRestartContinuesTheSameAccount() throws {
    let spec = riskSpec.replacingOccurrences(of: "FILL", with: "next_open")
    let (whole, _) = try googStore()
    let name = try register(spec, in: whole)
    try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay), whole)
    let expected = try LiveOperations(whole).account(strategy: name)

    let (base, _) = try googStore()
    try register(spec, in: base)
    let paused = Mutex(false)
    var first = base
    first.hooks = OperationHooks(pause: ("live.bar", 700)) { _ in paused.withLock { $0 = true } }
    let runner = LiveRunner(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay), settings: try testSettings(), context: first)
    let done = Mutex<LiveRunSummary?>(nil)
    let thread = Thread { done.withLock { $0 = try? runner.run() } }
    thread.start()
    let deadline = Date().addingTimeInterval(60)
    while !paused.withLock({ $0 }), Date() < deadline { usleep(5_000) }
    #expect(paused.withLock { $0 })
    runner.stop()
    while done.withLock({ $0 }) == nil, Date() < deadline { usleep(5_000) }
    let stopped = try #require(done.withLock { $0 })
    #expect(stopped.status == "stopped")
    #expect(stopped.barsProcessed == 700, "the bar held at the pause was not committed")

    let resumed = try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay), base)
    #expect(resumed.barsProcessed == 2148 - 700)
    let account = try LiveOperations(base).account(strategy: name)
    #expect(account.account.id == stopped.accountID, "the same account")
    #expect(account.equity == expected.equity)
    #expect(account.fills.map(\.price) == expected.fills.map(\.price))
    let signals = try LiveOperations(base).tail(SignalFilter(), count: 100_000)
    let reference = try LiveOperations(whole).tail(SignalFilter(), count: 100_000)
    #expect(Set(signals.map(\.id)).count == signals.count, "no signal twice")
    #expect(signals.map { "\($0.barTime) \($0.action)" } == reference.map { "\($0.barTime) \($0.action)" })
    let runs = try LiveOperations(base).status(strategy: name)
    #expect(runs[0].status == "completed")
  }

  /// A pause suspends entries (kept as suppressed signals, never filled nor notified) while
  /// exits go on; the account still equals a backtest told of the pause.
  @Test func aPauseSuspendsEntriesAndTheAccountStillAgreesWithTheEngine() throws {
    let (context, directory) = try googStore()
    let name = try register(smaSpec, in: context)
    try context.database.addChannel(ChannelRecord(name: "all", kind: "command", config: "{\"command\":\"true\"}", filters: "{}", createdAt: 0))
    let request = LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay)
    func run(until bar: Int?) throws {
      var part = context
      if let bar { part.hooks = OperationHooks(pause: ("live.bar", bar)) { _ in } }
      let runner = LiveRunner(request, settings: try testSettings(), context: part)
      if bar != nil {
        let thread = Thread { _ = try? runner.run() }
        thread.start()
        // The pause holds the bar until the runner is stopped.
        usleep(300_000)
        runner.stop()
        let deadline = Date().addingTimeInterval(30)
        while !((try? LiveOperations(context).status(strategy: name))?.first.map { $0.status == "stopped" } ?? false), Date() < deadline {
          usleep(10_000)
        }
      } else {
        _ = try runner.run()
      }
    }
    try run(until: 800)
    _ = try LiveOperations(context).pause(strategy: name)
    try run(until: 600)
    _ = try LiveOperations(context).resume(strategy: name)
    try run(until: nil)

    let account = try context.database.openAccount(strategy: name)!
    let pauses = try context.database.pauses(accountID: account.id)
    #expect(pauses.count == 1)
    let pause = try #require(pauses.first)
    let to = try #require(pause.to)
    let signals = try LiveOperations(context).tail(SignalFilter(), count: 10_000)
    let inPause = signals.filter { TimestampParser.parse($0.barTime)! >= pause.from && TimestampParser.parse($0.barTime)! < to }
    #expect(inPause.contains { $0.suppressed && $0.action == "enter_long" }, "entries decided in the pause are kept, suppressed")
    #expect(!inPause.contains { !$0.suppressed && $0.action.hasPrefix("enter") })
    let fills = try context.database.fills(accountID: account.id)
    #expect(!fills.contains { $0.action.hasPrefix("enter") && $0.ts > pause.from && $0.ts <= to }, "no entry filled in the pause")
    let outbox = try context.database.notificationHistory(channel: nil, status: nil, limit: 100_000).map(\.0.signalID)
    #expect(!outbox.contains { id in inPause.contains { $0.id == id } }, "nothing notified in the pause")
    #expect(outbox.count == signals.filter { !$0.suppressed && !inPause.contains($0) }.count)

    // The backtest engine told of the pause decides what the account did.
    let bars = try context.database.bars(datasetID: try context.database.dataset(named: "GOOG-1d").id)
    let strategy = try PaperTrader.compile(try StrategyLoader.parse(smaSpec, origin: "t").spec, params: [:], capital: nil, origin: "t")
    let outcome = Backtester.run(strategy, bars: bars, suspensions: EntrySuspensions([pause.from..<to]))
    #expect(try context.database.equityCurve(accountID: account.id).equity == outcome.equity)
    #expect(outcome.blockedEntries.map(\.time) == inPause.filter(\.suppressed).map { TimestampParser.parse($0.barTime)! })
    _ = directory
  }

  /// Binance returns the forming kline last: it is never stored, so it never yields a signal;
  /// once it is final (here, days late) it is caught up, and its signal marked late.
  @Test func aFormingKlineNeverYieldsASignalAndALateBarIsCaughtUp() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    let recorded = try Data(contentsOf: sharedData.appendingPathComponent("binance_rest/soworks_binance_spot_BTCUSDT_1d_klines_partial_last.json"))
    server.on("/api/v3/klines") { _, _ in LoopbackServer.Reply(body: recorded) }
    let klines = try JSONSerialization.jsonObject(with: recorded) as! [[Any]]
    let firstOpen = (klines[0][0] as! NSNumber).int64Value
    let formingOpen = (klines[1][0] as! NSNumber).int64Value
    let clock = ManualClock(formingOpen + 12 * 3_600_000)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-live-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let context = OperationContext(database: try QtoolDatabase.open(path: directory.appendingPathComponent("q.db").path), clock: clock)
    let name = try register(
      """
      name: btc-live
      universe: { symbols: [BTCUSDT], timeframe: 1d, source: binance }
      rules: { entry: close > 0, exit: close < 0 }
      signals: { emit_hold: true }
      """, in: context)
    let settings = try testSettings(["QTOOL_SOURCE_BINANCE_URL": server.baseURL])
    let request = LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .download, from: firstOpen, once: true)
    try runLive(request, context, settings: settings)
    let dataset = try context.database.dataset(named: "BTCUSDT-1d")
    #expect(dataset.lastTs == firstOpen, "the forming kline is not stored")
    var status = try LiveOperations(context).status(strategy: name)[0]
    #expect(status.lastBar == UTCCalendar.format(firstOpen, alwaysTime: true))
    #expect(
      try LiveOperations(context).tail(SignalFilter(), count: 100).allSatisfy { $0.barTime != UTCCalendar.format(formingOpen, alwaysTime: true) })

    // Three days after it closed, the bar arrives: it is caught up, its signals late.
    clock.set(formingOpen + 86_400_000 + 3 * 86_400_000)
    try runLive(request, context, settings: settings)
    status = try LiveOperations(context).status(strategy: name)[0]
    #expect(status.lastBar == UTCCalendar.format(formingOpen, alwaysTime: true))
    let signals = try LiveOperations(context).tail(SignalFilter(), count: 100)
    let caught = try #require(signals.first { $0.barTime == UTCCalendar.format(formingOpen, alwaysTime: true) })
    #expect(caught.action == "enter_long" && caught.late)
    #expect(caught.source == "binance" && caught.feed == "download")
  }

  /// The download feed asks for a bar that has closed but is not at the source yet again and
  /// again with growing waits, then says "stale data" (a warning, and the run's stale rounds
  /// in `status`) instead of skipping it; when the source has it, it is traded, nothing missed.
  @Test func aBarNotThereYetIsRetriedThenStaleThenCaughtUp() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    let recorded = try Data(contentsOf: sharedData.appendingPathComponent("binance_rest/soworks_binance_spot_BTCUSDT_1d_klines_partial_last.json"))
    let klines = try JSONSerialization.jsonObject(with: recorded) as! [[Any]]
    let firstOpen = (klines[0][0] as! NSNumber).int64Value
    let secondOpen = (klines[1][0] as! NSNumber).int64Value
    // Until `arrived`, the source has only the first day (the second has closed on the clock).
    let onlyFirst = try JSONSerialization.data(withJSONObject: [klines[0]])
    let arrived = Atomic<Bool>(false)
    let requests = Atomic<Int>(0)
    server.on("/api/v3/klines") { _, _ in
      requests.add(1, ordering: .relaxed)
      return LoopbackServer.Reply(body: arrived.load(ordering: .relaxed) ? recorded : onlyFirst)
    }
    let clock = ManualClock(secondOpen + 86_400_000 + 1_000)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-live-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let context = OperationContext(database: try QtoolDatabase.open(path: directory.appendingPathComponent("q.db").path), clock: clock)
    let name = try register(
      """
      name: btc-stale
      universe: { symbols: [BTCUSDT], timeframe: 1d, source: binance }
      rules: { entry: close > 0, exit: close < 0 }
      signals: { emit_hold: true }
      """, in: context)
    let warnings = Mutex<[String]>([])
    let runner = LiveRunner(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .download, from: firstOpen, settleMilliseconds: 2_000, retries: 3),
      settings: try testSettings(["QTOOL_SOURCE_BINANCE_URL": server.baseURL]), context: context
    ) { event in
      if case .warning(let text) = event { warnings.withLock { $0.append(text) } }
    }
    let finished = Atomic<Bool>(false)
    let thread = Thread {
      _ = try? runner.run()
      finished.store(true, ordering: .releasing)
    }
    thread.start()
    defer {
      runner.stop()
      let deadline = Date().addingTimeInterval(10)
      while !finished.load(ordering: .acquiring), Date() < deadline { usleep(5_000) }
    }
    // Time moves on: 1 s of the clock per 2 ms.
    let ticking = Atomic<Bool>(true)
    let ticker = Thread {
      while ticking.load(ordering: .relaxed) {
        clock.advance(by: 1_000)
        usleep(2_000)
      }
    }
    ticker.start()
    defer { ticking.store(false, ordering: .relaxed) }

    var deadline = Date().addingTimeInterval(30)
    while warnings.withLock({ $0.isEmpty }), Date() < deadline { usleep(5_000) }
    let warning = try #require(warnings.withLock { $0.first }, "a stale-data warning")
    #expect(warning.hasPrefix("stale data: the 1d bar of \(UTCCalendar.format(secondOpen, alwaysTime: true)) is not there"), "\(warning)")
    #expect(warning.contains("(4 tries)") && warning.contains("caught up when it arrives"), "\(warning)")
    #expect(requests.load(ordering: .relaxed) >= 5, "the start's download, then the first try and three retries")
    // The warning is an event; the stale round reaches the store just after it.
    var status = try LiveOperations(context).status(strategy: name)[0]
    deadline = Date().addingTimeInterval(10)
    while (status.staleRounds ?? 0) < 1, Date() < deadline {
      usleep(5_000)
      status = try LiveOperations(context).status(strategy: name)[0]
    }
    #expect(status.lastBar == UTCCalendar.format(firstOpen, alwaysTime: true), "the first day is traded, the second not invented")
    #expect((status.staleRounds ?? 0) >= 1 && status.note?.hasPrefix("stale data") == true)

    arrived.store(true, ordering: .relaxed)
    deadline = Date().addingTimeInterval(30)
    while try LiveOperations(context).status(strategy: name)[0].lastBar != UTCCalendar.format(secondOpen, alwaysTime: true), Date() < deadline {
      usleep(5_000)
    }
    status = try LiveOperations(context).status(strategy: name)[0]
    #expect(status.lastBar == UTCCalendar.format(secondOpen, alwaysTime: true), "caught up once the source has it")
    let signals = try LiveOperations(context).tail(SignalFilter(strategies: [name]), count: 100)
    // The first stored bar has none before it to decide with (as in a backtest); the late one
    // gets its decision once.
    #expect(signals.map(\.barTime) == [UTCCalendar.format(secondOpen, alwaysTime: true)], "the late bar decided once")
    #expect(
      signals.first { $0.barTime == UTCCalendar.format(secondOpen, alwaysTime: true) }?.late == false,
      "minutes after its close: within a bar, not late")
  }

  /// Each signal's strength is the spec's `signals.strength` at its bar, clipped to 0–100, and
  /// its level follows the spec's thresholds; HOLD rows are written only with `emit_hold`, one
  /// for each bar without another decision, and change nothing else.
  @Test func signalsCarryTheirStrengthAndHoldOnlyWhenAsked() throws {
    let (context, _) = try googStore()
    let plain = riskSpec.replacingOccurrences(of: "FILL", with: "next_open")
    let name = try register(plain, in: context)
    let from = TimestampParser.parse("2011-06-01")
    try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay, from: from), context)
    let signals = try LiveOperations(context).tail(SignalFilter(strategies: [name]), count: 10_000)
    #expect(signals.count > 5)
    #expect(signals.allSatisfy { $0.type != "HOLD" }, "no HOLD rows without emit_hold")
    func number(_ value: JSONValue?) -> Double? {
      switch value {
      case .number(let x): return x
      case .int(let x): return Double(x)
      default: return nil
      }
    }
    for signal in signals {
      let rsi = try #require(number(signal.indicators["rsi(close, 14)"]), "the rules' indicators at the bar")
      #expect(signal.strengthRaw == min(100, max(0, rsi)), "strength = signals.strength at \(signal.barTime)")
      let level = rsi >= 70 ? "strong" : rsi >= 50 ? "medium" : rsi >= 30 ? "weak" : "none"
      #expect(signal.strengthLevel == level, "the spec's thresholds 70/50/30 at \(signal.barTime)")
    }

    let holding = try register(
      plain.replacingOccurrences(of: "name: parity-risk", with: "name: parity-hold").replacingOccurrences(
        of: "strength: rsi(close, 14)", with: "strength: rsi(close, 14) * 3"
      )
      .replacingOccurrences(of: "weak: 30", with: "weak: 30\n  emit_hold: true"), in: context)
    let summary = try runLive(LiveRunRequest(strategy: .registered(name: holding, version: nil), feed: .replay, from: from), context)
    let all = try LiveOperations(context).tail(SignalFilter(strategies: [holding]), count: 10_000)
    let holds = all.filter { $0.type == "HOLD" }
    #expect(holds.allSatisfy { $0.action == "hold" && $0.reason == "rule" })
    #expect(Set(all.map(\.barTime)).count == summary.barsProcessed, "a signal on every bar")
    #expect(holds.count == summary.barsProcessed - Set(signals.map(\.barTime)).count, "HOLD exactly where nothing else was decided")
    #expect(
      all.filter { $0.type != "HOLD" }.map { "\($0.barTime) \($0.action) \($0.reason)" } == signals.map { "\($0.barTime) \($0.action) \($0.reason)" })
    #expect(all.allSatisfy { (0...100).contains($0.strengthRaw) })
    #expect(all.contains { $0.strengthRaw == 100 }, "3 × RSI above 100 is clipped")
    #expect(try LiveOperations(context).account(strategy: holding).account.equity == LiveOperations(context).account(strategy: name).account.equity)

    // An infinite strength is clipped as any other above 100 (it was stored as 0, "none").
    let infinite = try register(
      plain.replacingOccurrences(of: "name: parity-risk", with: "name: parity-inf").replacingOccurrences(
        of: "strength: rsi(close, 14)", with: "strength: 1 / (close - close)"), in: context)
    try runLive(LiveRunRequest(strategy: .registered(name: infinite, version: nil), feed: .replay, from: from), context)
    let graded = try LiveOperations(context).tail(SignalFilter(strategies: [infinite]), count: 10_000)
    #expect(!graded.isEmpty && graded.allSatisfy { $0.strengthRaw == 100 && $0.strengthLevel == "strong" })
  }

  /// The store feed notices bars another connection (another process) commits, and only
  /// final ones.
  @Test func theStoreFeedNoticesBarsAnotherProcessCommits() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-store-feed-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let path = directory.appendingPathComponent("q.db").path
    let context = OperationContext(database: try QtoolDatabase.open(path: path))
    let csv = try String(contentsOf: packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv"), encoding: .utf8)
    let lines = csv.split(separator: "\n")
    let head = directory.appendingPathComponent("head.csv")
    try (lines.prefix(1001).joined(separator: "\n") + "\n").write(to: head, atomically: true, encoding: .utf8)
    _ = try DataOperations(context).importFiles(ImportRequest(files: [head.path], symbol: "GOOG", timeframe: Timeframe("1d")!))
    let name = try register(smaSpec, in: context)
    let runner = LiveRunner(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .store, from: TimestampParser.parse("2005-01-03")),
      settings: try testSettings(), context: context)
    let thread = Thread { _ = try? runner.run() }
    thread.start()
    defer { runner.stop() }
    func cursor() throws -> Int64? { try context.database.openAccount(strategy: name)?.cursorTs }
    var deadline = Date().addingTimeInterval(30)
    let lastStored = try context.database.dataset(named: "GOOG-1d").lastTs
    while try cursor() != lastStored, Date() < deadline { usleep(5_000) }
    #expect(try cursor() == lastStored, "the stored bars are processed")

    // Another process stores the next bar: the runner has it well within a second.
    let other = try QtoolDatabase.open(path: path)
    let next = directory.appendingPathComponent("next.csv")
    try (String(lines[0]) + "\n" + lines[1001] + "\n").write(to: next, atomically: true, encoding: .utf8)
    let stored = Date()
    _ = try DataOperations(OperationContext(database: other)).importFiles(
      ImportRequest(files: [next.path], symbol: "GOOG", timeframe: Timeframe("1d")!))
    let expected = try other.dataset(named: "GOOG-1d").lastTs
    deadline = Date().addingTimeInterval(10)
    while try cursor() != expected, Date() < deadline { usleep(5_000) }
    let seen = Date().timeIntervalSince(stored)
    #expect(try cursor() == expected)
    #expect(seen < 2, "noticed after \(seen) s")
  }

  /// Two runners of one strategy cannot run at once: the second is refused, naming the first.
  @Test func aSecondRunnerIsRefusedNamingTheFirst() throws {
    let (context, _) = try googStore()
    let name = try register(smaSpec, in: context)
    let first = LiveRunner(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .store), settings: try testSettings(), context: context)
    _ = try first.start()
    let second = LiveRunner(
      LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .store), settings: try testSettings(), context: context)
    #expect {
      _ = try second.start()
    } throws: { error in
      guard let error = error as? LeaseError, case .held(_, let holder) = error else { return false }
      return holder?.pid == Int(getpid()) && error.exitStatus == .temporaryFailure && error.message.contains("strategy sma is already running")
    }
    let thread = Thread { _ = try? first.run() }
    thread.start()
    first.stop()
    let stopped = Date().addingTimeInterval(10)
    while try LiveOperations(context).status(strategy: name)[0].status != "stopped", Date() < stopped { usleep(10_000) }
    #expect(try LiveOperations(context).status(strategy: name)[0].status == "stopped")
  }

  /// An account continues only with the version (params, capital) it was opened with.
  @Test func anAccountContinuesOnlyWithItsOwnVersion() throws {
    let (context, _) = try googStore()
    let name = try register(smaSpec, in: context)
    try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay, once: true), context)
    try register(smaSpec.replacingOccurrences(of: "fast: 10", with: "fast: 12"), in: context)
    #expect {
      try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay), context)
    } throws: { ($0 as? LiveError)?.code == "paper_account_mismatch" && ($0 as? LiveError)?.exitStatus == .usage }
    let fresh = try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .replay, newAccount: true), context)
    #expect(fresh.barsProcessed == 2148)
    #expect(try context.database.latestAccount(strategy: name)?.strategyVersion == 2)
  }

  /// Bad input: a download feed on a source that cannot serve live bars; an unreachable source.
  @Test func refusesFeedsThatCannotWork() throws {
    let (context, _) = try googStore()
    let name = try register(smaSpec, in: context)
    #expect {
      try runLive(LiveRunRequest(strategy: .registered(name: name, version: nil), feed: .download), context)
    } throws: { error in
      guard let error = error as? LiveError, case .sourceCannotServeLive(_, let source, _, let live) = error else { return false }
      return source == "csv" && live == ["binance", "yahoo", "stooq"] && error.exitStatus == .usage
    }
    let closed = try LoopbackServer()
    let url = closed.baseURL
    closed.stop()
    let btc = try register(
      "name: btc\nuniverse: { symbols: [BTCUSDT], timeframe: 1h, source: binance }\nrules: { entry: close > 0 }\n", in: context)
    #expect {
      try runLive(
        LiveRunRequest(strategy: .registered(name: btc, version: nil), feed: .download), context,
        settings: try testSettings(["QTOOL_SOURCE_BINANCE_URL": url]))
    } throws: { ($0 as? LiveError)?.code == "source_unreachable" && ($0 as? any QtoolError)?.exitStatus == .unavailable }
    #expect(try LiveOperations(context).status(strategy: btc)[0].status == "failed")
  }
}
