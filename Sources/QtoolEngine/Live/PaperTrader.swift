import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// The bars a paper account decides on: the warm-up stored before its first traded bar, then
/// every stored bar — the same bars `backtest run --from FIRST` loads, so each decision is the
/// one that run makes.
struct LiveWindow {
  /// The timeline: the dataset's bars, or those every symbol of a portfolio has.
  var timestamps: [Int64]
  var single: BarSeries?
  var portfolio: [PortfolioBacktester.Input]
  /// The first traded bar (the bars before it only warm up).
  var tradingStart: Int

  static let empty = LiveWindow(timestamps: [], single: nil, portfolio: [], tradingStart: 0)
  var isEmpty: Bool { timestamps.isEmpty }
}

/// What one bar changes in a paper account, before it is committed.
struct BarOutcome {
  var time: Int64
  var equity: Double
  var cash: Double
  var halted: Bool
  var positions: [PaperPositionRecord]
  var fills: [PaperFillRecord]
  var signals: [SignalRecord]
  /// The engine held other positions before this bar than the account did.
  var divergence: String?
}

/// A paper account's strategy, deciding bar after bar by running the backtest engine over the
/// stored bars up to each new final bar — the same engine, spec, settings and bars as
/// `backtest run` (with close_at_end off: a live account holds on), so the account's trades and
/// equity are the backtest's by construction. What happened at the new bar (fills at its open,
/// stops inside it, the order decided at its close) becomes the bar's fills and signals.
struct PaperTrader {
  let account: PaperAccountRecord
  let loaded: LoadedSpec
  let strategy: CompiledStrategy
  let rules: TradingRules
  let timeframe: Timeframe
  let symbols: [String]
  let datasetNames: [String]
  /// The rules' indicator sub-expressions, reported with each signal.
  let indicators: [QtoolCore.Expression]
  let source: String?
  let feed: LiveFeed
  let runID: String?
  let lateAfterBars: Int
  let notifyLate: Bool
  /// The model versions `model("name")` reads (pinned for the run), as each signal records them.
  let modelUses: String

  var isPortfolio: Bool { strategy.spec.portfolio != nil }

  /// `models`: the trained versions the rules' `model("name")` read, loaded once by the runner
  /// as `backtest run` loads them (their features' warm-up included).
  init(
    account: PaperAccountRecord, feed: LiveFeed, runID: String?, lateAfterBars: Int, notifyLate: Bool, models: ModelAttachments = ModelAttachments()
  ) throws {
    self.account = account
    self.feed = feed
    self.runID = runID
    self.lateAfterBars = lateAfterBars
    self.notifyLate = notifyLate
    loaded = try StrategyLoader.parse(account.specText, origin: "strategy \(account.strategyName) v\(account.strategyVersion)")
    var compiled = try Self.compile(loaded.spec, params: Self.decodeParams(account.params), capital: account.capital, origin: loaded.origin)
    models.apply(to: &compiled)
    strategy = compiled
    modelUses = String(decoding: (try? JSONCoding.encoder.encode(models.uses)) ?? Data("[]".utf8), as: UTF8.self)
    rules = TradingRules(strategy)
    timeframe = Timeframe(account.timeframe) ?? Timeframe(count: 1, unit: .day)
    symbols = (try? JSONDecoder().decode([String].self, from: Data(account.symbols.utf8))) ?? []
    datasetNames = (try? JSONDecoder().decode([String].self, from: Data(account.datasets.utf8))) ?? []
    source = account.source
    indicators = Self.indicatorExpressions(strategy)
  }

  static func decodeParams(_ text: String) -> [String: Double] {
    (try? JSONDecoder().decode([String: Double].self, from: Data(text.utf8))) ?? [:]
  }

  /// The spec compiled as a live account runs it: positions are held after the last bar.
  static func compile(_ spec: StrategySpec, params: [String: Double], capital: Double?, origin: String) throws -> CompiledStrategy {
    var spec = spec
    var execution = spec.execution ?? StrategySpec.Execution()
    execution.closeAtEnd = false
    spec.execution = execution
    return try CompiledStrategy(spec, overrides: params, capital: capital, origin: origin)
  }

  /// The distinct indicator calls of the rules (and of the ranking and strength expressions), in
  /// order of appearance, at most 16.
  static func indicatorExpressions(_ strategy: CompiledStrategy) -> [QtoolCore.Expression] {
    var found: [QtoolCore.Expression] = []
    var seen = Set<String>()
    func visit(_ expression: QtoolCore.Expression) {
      switch expression {
      case .constant, .flag, .column: return
      case .model: if seen.insert(expression.description).inserted { found.append(expression) }
      case .lag(let inner, _), .negate(let inner), .not(let inner): visit(inner)
      case .binary(_, let lhs, let rhs):
        visit(lhs)
        visit(rhs)
      case .call(let name, let arguments):
        if !["cross_above", "cross_below", "abs", "min", "max"].contains(name), seen.insert(expression.description).inserted {
          found.append(expression)
        }
        arguments.forEach(visit)
      }
    }
    [strategy.entry, strategy.exit, strategy.shortEntry, strategy.shortExit, strategy.rank, strategy.strength].compactMap { $0 }.forEach(visit)
    return Array(found.prefix(16))
  }

  // MARK: Bars

  /// Loads the account's window from the store: `warmup` bars before its first traded bar (as
  /// `backtest run --from` loads them), then everything stored. Empty while nothing is stored.
  func loadWindow(_ operations: BacktestOperations) throws -> LiveWindow {
    let database = operations.database
    let (warmup, expression) = strategy.warmup
    if isPortfolio {
      do {
        let data = try operations.loadPortfolio(
          strategy.spec, from: account.fromTs, to: nil, allowGaps: true, warmup: account.fromTs == nil ? 0 : warmup, gapWarmup: warmup,
          expression: expression)
        return LiveWindow(timestamps: data.timestamps, single: nil, portfolio: data.portfolio, tradingStart: data.tradingStart)
      } catch let error as DatasetError {
        if case .notFound = error { return .empty }
        throw error
      } catch let error as BacktestError {
        if case .noBars = error { return .empty }
        throw error
      } catch let error as OperationError where error.code == "no_common_bars" {
        return .empty
      }
    }
    guard let name = datasetNames.first, let dataset = try? database.dataset(named: name) else { return .empty }
    var bars: BarSeries
    var before = 0
    if let from = account.fromTs {
      (bars, before) = try database.bars(datasetID: dataset.id, from: from, withBarsBefore: warmup)
    } else {
      bars = try database.bars(datasetID: dataset.id)
    }
    if before >= bars.count { return LiveWindow(timestamps: [], single: nil, portfolio: [], tradingStart: 0) }
    return LiveWindow(timestamps: bars.timestamps, single: bars, portfolio: [], tradingStart: before)
  }

  /// The index of the first bar to process: the one after `cursor` (the account's last
  /// processed bar), never before its first traded bar.
  func firstUnprocessed(in window: LiveWindow, cursor: Int64?) -> Int {
    var index = window.tradingStart
    if let cursor {
      var low = 0
      var high = window.timestamps.count
      while low < high {
        let middle = (low + high) / 2
        if window.timestamps[middle] <= cursor { low = middle + 1 } else { high = middle }
      }
      index = max(index, low)
    }
    return index
  }

  func closeTime(_ open: Int64) -> Int64 { timeframe.next(after: open) }

  // MARK: Deciding

  /// Runs the engine over the window's bars up to bar `k` and turns what happened at that bar
  /// into fills, signals and the account's new state.
  ///
  /// - parameters:
  ///   - held: the positions the account holds before the bar (to detect a divergence).
  ///   - suspensions: the bars on which entries were suspended (pauses), this bar's included.
  ///   - paused: entries are suspended at this bar.
  ///   - feedNow: the time the bar is processed, on the feed's clock (a replay's is the bar's close).
  func decide(
    _ window: LiveWindow, at k: Int, held: [PaperPositionRecord], suspensions: EntrySuspensions, feedNow: Int64, now: Int64
  ) throws -> BarOutcome {
    let t = window.timestamps[k]
    let previous: Int64? = k > 0 ? window.timestamps[k - 1] : nil
    var outcome: BacktestOutcome
    var seriesBySymbol: [String: BarSeries] = [:]
    var evaluators: [String: RuleEvaluator] = [:]
    if let all = window.single {
      let bars = k + 1 == all.count ? all : all.slice(0..<(k + 1))
      let evaluator = RuleEvaluator(bars: bars, models: strategy.models)
      outcome = Backtester.run(strategy, bars: bars, from: window.tradingStart, evaluator: evaluator, suspensions: suspensions)
      let symbol = symbols.first ?? ""
      for index in outcome.trades.indices { outcome.trades[index].symbol = symbol }
      for index in outcome.openPositions.indices { outcome.openPositions[index].symbol = symbol }
      for index in outcome.blockedEntries.indices { outcome.blockedEntries[index].symbol = symbol }
      seriesBySymbol[symbol] = bars
      evaluators[symbol] = evaluator
    } else {
      guard let portfolio = strategy.spec.portfolio, let rank = strategy.rank else { throw SpecError.invalid("the spec has no portfolio section") }
      let inputs = window.portfolio.map { PortfolioBacktester.Input(symbol: $0.symbol, bars: $0.bars.between(from: .min, to: t + 1)) }
      let result = try PortfolioBacktester.run(
        strategy, rank: rank, top: portfolio.top, rebalance: portfolio.rebalance ?? "monthly", inputs: inputs, from: window.tradingStart,
        suspensions: suspensions)
      outcome = result.outcome
      let aligned = PortfolioBacktester.align(inputs).bars
      for (input, bars) in zip(inputs, aligned) { seriesBySymbol[input.symbol] = bars }
    }
    func close(_ symbol: String) -> Double { seriesBySymbol[symbol].map { $0.close[$0.count - 1] } ?? .nan }
    func evaluator(_ symbol: String) -> RuleEvaluator {
      if let existing = evaluators[symbol] { return existing }
      let made = RuleEvaluator(bars: seriesBySymbol[symbol] ?? BarSeries(), models: strategy.models)
      evaluators[symbol] = made
      return made
    }

    // Fills at this bar, in the order they happened: fills at the open, stops and targets
    // inside the bar, then what happens at the close (the halt, `fill: close` orders).
    var fills: [(key: (Int, Int), fill: PaperFillRecord)] = []
    var signals: [SignalDraft] = []
    let atClose = strategy.fillAtClose
    for trade in outcome.trades where trade.exitTime == t || trade.entryTime == t {
      let symbol = trade.symbol ?? symbols.first ?? ""
      let long = trade.side == "long"
      if trade.entryTime == t {
        let signalBar = atClose ? t : previous
        fills.append(
          (
            (atClose ? 2 : 0, 1),
            PaperFillRecord(
              ts: t, symbol: symbol, side: long ? "buy" : "sell", action: long ? "enter_long" : "enter_short", size: trade.size,
              price: trade.entryPrice, commission: rules.commission(trade.size, trade.entryPrice), reason: "rule", pnl: nil,
              signalID: signalBar.map { signalID(symbol: symbol, bar: $0, action: long ? "enter_long" : "enter_short") }, createdAt: now)
          ))
        if atClose {
          signals.append(SignalDraft(symbol: symbol, action: long ? "enter_long" : "enter_short", reason: "rule", price: trade.entryPrice))
        }
      }
      if trade.exitTime == t {
        let action = long ? "exit_long" : "exit_short"
        let reason = Self.reasonName(trade.reason)
        let phase = trade.reason == .signal ? (atClose ? 2 : 0) : trade.reason == .halt ? 3 : 1
        let signalBar: Int64? = trade.reason == .signal && !atClose ? previous : t
        fills.append(
          (
            (phase, 0),
            PaperFillRecord(
              ts: t, symbol: symbol, side: long ? "sell" : "buy", action: action, size: trade.size, price: trade.exitPrice,
              commission: rules.commission(trade.size, trade.exitPrice), reason: reason, pnl: trade.pnl,
              signalID: signalBar.map { signalID(symbol: symbol, bar: $0, action: action) }, createdAt: now)
          ))
        if trade.reason != .signal || atClose { signals.append(SignalDraft(symbol: symbol, action: action, reason: reason, price: trade.exitPrice)) }
      }
    }
    for position in outcome.openPositions where position.entryTime == t {
      let symbol = position.symbol ?? symbols.first ?? ""
      let long = position.side == "long"
      let action = long ? "enter_long" : "enter_short"
      let signalBar = atClose ? t : previous
      fills.append(
        (
          (atClose ? 2 : 0, 1),
          PaperFillRecord(
            ts: t, symbol: symbol, side: long ? "buy" : "sell", action: action, size: position.size, price: position.entryPrice,
            commission: rules.commission(position.size, position.entryPrice), reason: "rule", pnl: nil,
            signalID: signalBar.map { signalID(symbol: symbol, bar: $0, action: action) }, createdAt: now)
        ))
      if atClose { signals.append(SignalDraft(symbol: symbol, action: action, reason: "rule", price: position.entryPrice)) }
    }
    let ordered = fills.enumerated().sorted { a, b in
      a.element.key != b.element.key ? a.element.key < b.element.key : a.offset < b.offset
    }.map(\.element.fill)

    // The order decided at this bar's close, filled at the next bar's open.
    if !atClose, let pending = outcome.pendingOrder, pending.decidedAt == t {
      if let targets = pending.targets {
        let held = Set(outcome.openPositions.compactMap(\.symbol))
        let chosen = Set(targets)
        for symbol in symbols where held.contains(symbol) && !chosen.contains(symbol) {
          signals.append(SignalDraft(symbol: symbol, action: "exit_long", reason: "rule", price: close(symbol)))
        }
        for symbol in symbols where chosen.contains(symbol) && !held.contains(symbol) {
          signals.append(SignalDraft(symbol: symbol, action: "enter_long", reason: "rule", price: close(symbol)))
        }
      } else {
        let symbol = symbols.first ?? ""
        if pending.close, let position = outcome.openPositions.first {
          signals.append(
            SignalDraft(symbol: symbol, action: position.side == "long" ? "exit_long" : "exit_short", reason: "rule", price: close(symbol)))
        }
        if let side = pending.open {
          signals.append(SignalDraft(symbol: symbol, action: side == "long" ? "enter_long" : "enter_short", reason: "rule", price: close(symbol)))
        }
      }
    }
    for blocked in outcome.blockedEntries where blocked.time == t {
      let symbol = blocked.symbol ?? symbols.first ?? ""
      signals.append(
        SignalDraft(
          symbol: symbol, action: blocked.side == "long" ? "enter_long" : "enter_short", reason: "rule", price: close(symbol), suppressed: true))
    }
    let haltedBefore = outcome.haltedAt.map { $0 < t } ?? false
    if strategy.spec.signals?.emitHold == true, !haltedBefore, k >= max(window.tradingStart, strategy.firstDecisionBar) {
      let acted = Set(signals.map(\.symbol))
      for symbol in symbols where !acted.contains(symbol) {
        signals.append(SignalDraft(symbol: symbol, action: "hold", reason: "rule", price: close(symbol)))
      }
    }

    // The account after the bar.
    let positions = outcome.openPositions.map { position in
      PaperPositionRecord(
        symbol: position.symbol ?? symbols.first ?? "", side: position.side, size: position.size, entryTs: position.entryTime,
        entryPrice: position.entryPrice, peak: position.peak, stop: position.stop, target: position.target)
    }
    let equity = outcome.equity.last ?? strategy.capital
    var cash = equity
    for position in positions { cash -= (position.side == "long" ? 1 : -1) * position.size * close(position.symbol) }

    // What the engine held before this bar, against what the account holds.
    var before: [String] = []
    for trade in outcome.trades where trade.entryTime < t && trade.exitTime >= t {
      before.append(Self.key(trade.symbol ?? symbols.first ?? "", trade.side, trade.entryTime, trade.size))
    }
    for position in outcome.openPositions where position.entryTime < t {
      before.append(Self.key(position.symbol ?? symbols.first ?? "", position.side, position.entryTime, position.size))
    }
    let stored = held.map { Self.key($0.symbol, $0.side, $0.entryTs, $0.size) }
    var divergence: String?
    if before.sorted() != stored.sorted() {
      divergence =
        "before \(UTCCalendar.format(t, alwaysTime: true)) the engine held [\(before.sorted().joined(separator: "; "))] but the account held [\(stored.sorted().joined(separator: "; "))]: stored bars before it changed; the account follows the engine from this bar"
    }

    let late = feedNow - closeTime(t) > Int64(lateAfterBars) * timeframe.milliseconds
    let records = signals.map { draft -> SignalRecord in
      let type = draft.action == "hold" ? "HOLD" : ["enter_long", "exit_short"].contains(draft.action) ? "BUY" : "SELL"
      let strength = strengthRaw(evaluator(draft.symbol), seriesBySymbol[draft.symbol])
      return SignalRecord(
        id: signalID(symbol: draft.symbol, bar: t, action: draft.action), accountID: account.id, runID: runID, strategyName: account.strategyName,
        strategyVersion: account.strategyVersion, symbol: draft.symbol, timeframe: account.timeframe, source: source, feed: feed.rawValue,
        barTs: t, type: type, action: draft.action, reason: draft.reason, strengthRaw: strength, strengthLevel: level(strength),
        price: draft.price.isFinite ? draft.price : nil,
        indicators: indicatorJSON(evaluator(draft.symbol), seriesBySymbol[draft.symbol]), late: late, suppressed: draft.suppressed, createdAt: now,
        models: modelUses)
    }
    return BarOutcome(
      time: t, equity: equity, cash: cash, halted: outcome.halted, positions: positions, fills: ordered, signals: records, divergence: divergence)
  }

  struct SignalDraft {
    var symbol: String
    var action: String
    var reason: String
    var price: Double
    var suppressed = false
  }

  static func key(_ symbol: String, _ side: String, _ entry: Int64, _ size: Double) -> String {
    "\(symbol) \(side) \(size) since \(UTCCalendar.format(entry, alwaysTime: true))"
  }

  static func reasonName(_ reason: Trade.Reason) -> String {
    switch reason {
    case .signal: return "rule"
    case .stop: return "stop_loss"
    case .target: return "take_profit"
    case .trailing: return "trailing_stop"
    case .halt: return "drawdown_halt"
    case .end: return "manual"
    }
  }

  /// A signal's id: the same decision of the same account — its strategy version, symbol,
  /// timeframe, bar and action — always has the same id, so a restart or a second runner can
  /// never store it twice.
  func signalID(symbol: String, bar: Int64, action: String) -> String {
    let key = "\(account.id)|\(account.strategyName)@\(account.strategyVersion)|\(symbol)|\(account.timeframe)|\(bar)|\(action)"
    return "sig_" + String(ContentHash.sha256Hex(Data(key.utf8)).prefix(24))
  }

  /// `signals.strength` at the bar, clipped to 0–100 (an infinity too; not a number: 0); 100
  /// without one.
  func strengthRaw(_ evaluator: RuleEvaluator, _ bars: BarSeries?) -> Double {
    guard let expression = strategy.strength, let bars, bars.count > 0 else { return 100 }
    let values = evaluator.evaluate(expression)
    guard let value = values.last, !value.isNaN else { return 0 }
    return min(100, max(0, value))
  }

  /// The level of a strength under the spec's thresholds (80, 50 and 20 unless set).
  func level(_ strength: Double) -> String {
    let thresholds = strategy.spec.signals
    if strength >= thresholds?.strong ?? 80 { return "strong" }
    if strength >= thresholds?.medium ?? 50 { return "medium" }
    if strength >= thresholds?.weak ?? 20 { return "weak" }
    return "none"
  }

  /// The rules' indicators and the close at the bar, as a JSON object (undefined values null).
  func indicatorJSON(_ evaluator: RuleEvaluator, _ bars: BarSeries?) -> String {
    guard let bars, bars.count > 0 else { return "{}" }
    var values: [String: JSONValue] = ["close": .number(bars.close[bars.count - 1])]
    for expression in indicators {
      values[expression.description] = .number(evaluator.evaluate(expression).last ?? .nan)
    }
    return (try? JSONCoding.encoder.encode(values)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
  }

  // MARK: Settling

  /// Closes every position at `prices` (the last processed bar's closes) as the trading rules
  /// fill an exit: the fills and signals (reason manual) and the cash and equity after.
  func settle(_ positions: [PaperPositionRecord], prices: [String: Double], at bar: Int64, cash: Double, now: Int64) -> (
    fills: [PaperFillRecord], signals: [SignalRecord], cash: Double
  ) {
    var cash = cash
    var fills: [PaperFillRecord] = []
    var signals: [SignalRecord] = []
    for position in positions {
      guard let price = prices[position.symbol], price.isFinite else { continue }
      let long = position.side == "long"
      let fill = rules.fill(price, direction: long ? -1 : 1)
      let commission = rules.commission(position.size, fill)
      let entryCommission = rules.commission(position.size, position.entryPrice)
      let pnl = (long ? 1 : -1) * position.size * (fill - position.entryPrice) - entryCommission - commission
      cash += (long ? 1 : -1) * position.size * fill - commission
      let action = long ? "exit_long" : "exit_short"
      let id = signalID(symbol: position.symbol, bar: bar, action: action + ":manual")
      fills.append(
        PaperFillRecord(
          ts: bar, symbol: position.symbol, side: long ? "sell" : "buy", action: action, size: position.size, price: fill, commission: commission,
          reason: "manual", pnl: pnl, signalID: id, createdAt: now))
      signals.append(
        SignalRecord(
          id: id, accountID: account.id, runID: runID, strategyName: account.strategyName, strategyVersion: account.strategyVersion,
          symbol: position.symbol, timeframe: account.timeframe, source: source, feed: feed.rawValue, barTs: bar, type: long ? "SELL" : "BUY",
          action: action, reason: "manual", strengthRaw: 100, strengthLevel: level(100), price: fill, indicators: "{\"close\":\(price)}", late: false,
          suppressed: false, createdAt: now))
    }
    return (fills, signals, cash)
  }
}
