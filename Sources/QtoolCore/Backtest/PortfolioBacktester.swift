/// Portfolio strategies: several symbols, ranked by an expression on a rebalancing calendar;
/// the top N are held in equal shares. Decided on a rebalance bar's close, filled at the next
/// open. Names that stay in the top N are kept as they are; names that leave are sold, and the
/// cash is split equally over the names that enter (no partial trades, so every trade has one
/// entry and one exit). Cash is real cash: buying spends it, selling returns it. Fills, costs,
/// sizing, stops and the drawdown halt are the `TradingRules` a single-symbol run obeys.
public enum PortfolioBacktester {
  public struct Input: Sendable {
    public var symbol: String
    public var bars: BarSeries
    public init(symbol: String, bars: BarSeries) {
      self.symbol = symbol
      self.bars = bars
    }
  }

  public struct Outcome: Sendable {
    public var outcome: BacktestOutcome
    /// The symbol of each trade, in the order of `outcome.trades`.
    public var tradeSymbols: [String]
    /// The timeline of the run (timestamps every symbol has); its close is the equal-weight
    /// index of the symbols (each close over its first, averaged), the buy-and-hold benchmark.
    public var timeline: BarSeries
  }

  /// The bars of `inputs` on the timestamps they all have, in `inputs` order.
  public static func align(_ inputs: [Input]) -> (timestamps: [Int64], bars: [BarSeries]) {
    var common = Set(inputs[0].bars.timestamps)
    for input in inputs.dropFirst() { common.formIntersection(input.bars.timestamps) }
    let timestamps = common.sorted()
    let aligned = inputs.map { input -> BarSeries in
      var index: [Int64: Int] = [:]
      for (i, t) in input.bars.timestamps.enumerated() { index[t] = i }
      let rows = timestamps.map { index[$0]! }
      var bars = BarSeries(
        timestamps: timestamps, open: rows.map { input.bars.open[$0] }, high: rows.map { input.bars.high[$0] }, low: rows.map { input.bars.low[$0] },
        close: rows.map { input.bars.close[$0] }, volume: rows.map { input.bars.volume[$0] })
      bars.columns = input.bars.columns.mapValues { column in rows.map { column[$0] } }
      return bars
    }
    return (timestamps, aligned)
  }

  /// Runs the portfolio under the strategy's trading rules (`TradingRules`): fills with
  /// slippage and commission; each entering name gets an equal share of the cash, sized by the
  /// spec's sizing; stops, targets and the trailing stop close a name inside a bar (it may come
  /// back at the next rebalance); the drawdown halt sells everything at the close and ends trading.
  ///
  /// - parameter tradingStart: the first bar of the aligned timeline on which the portfolio
  ///   may rebalance; the bars before it only warm the ranking up, and the outcome (equity,
  ///   trades' bar numbers, the timeline) covers the bars from it on.
  /// - parameter suspensions: rebalance bars on which no name may be bought (a paused live
  ///   account): names leaving the top N are still sold; the names that would have entered are
  ///   reported in `blockedEntries`.
  public static func run(
    _ strategy: CompiledStrategy, rank: Expression, top: Int, rebalance: String, inputs: [Input], from tradingStart: Int = 0,
    suspensions: EntrySuspensions? = nil, cancellation: CancellationToken = .never
  ) throws -> Outcome {
    let (timestamps, aligned) = align(inputs)
    let scores = aligned.map { RuleEvaluator(bars: $0, models: strategy.models).evaluate(rank) }
    let count = timestamps.count
    let start = max(1, rank.lookback + 1, tradingStart)
    let rules = TradingRules(strategy)
    var cash = strategy.capital
    var units = [Double](repeating: 0, count: inputs.count)
    var entryPrice = [Double](repeating: 0, count: inputs.count)
    var entryBar = [Int](repeating: 0, count: inputs.count)
    var peak = [Double](repeating: 0, count: inputs.count)
    var trades: [Trade] = []
    var tradeSymbols: [String] = []
    var equity = [Double](repeating: strategy.capital, count: count)
    var exposure = [Double](repeating: 0, count: count)
    var commissions = 0.0
    var target: Set<Int>? = nil
    var halted = false
    var haltedBar: Int?
    var equityPeak = strategy.capital
    var blocked: [BlockedEntry] = []

    /// Sells all of symbol `s` at `price` (before slippage) and records the trade.
    func sell(_ s: Int, at price: Double, bar: Int, reason: Trade.Reason) {
      let fill = rules.fill(price, direction: -1)
      let commission = rules.commission(units[s], fill)
      cash += units[s] * fill - commission
      commissions += commission
      let entryCommission = rules.commission(units[s], entryPrice[s])
      let pnl = units[s] * (fill - entryPrice[s]) - entryCommission - commission
      trades.append(
        Trade(
          side: "long", size: units[s], entryBar: entryBar[s], entryTime: timestamps[entryBar[s]], entryPrice: entryPrice[s], exitBar: bar,
          exitTime: timestamps[bar], exitPrice: fill, pnl: pnl, returnPct: pnl / (units[s] * entryPrice[s]),
          commission: entryCommission + commission, reason: reason, symbol: inputs[s].symbol))
      tradeSymbols.append(inputs[s].symbol)
      units[s] = 0
    }

    func isRebalanceBar(_ i: Int) -> Bool {
      if i == start { return true }
      let (y0, m0, _, _) = UTCCalendar.components(timestamps[i - 1])
      let (y1, m1, _, _) = UTCCalendar.components(timestamps[i])
      switch rebalance {
      case "daily": return true
      case "weekly": return (timestamps[i] - 4 * 86_400_000) / 604_800_000 != (timestamps[i - 1] - 4 * 86_400_000) / 604_800_000
      default: return y0 != y1 || m0 != m1
      }
    }

    for i in 0..<count {
      if i & 0xFFFF == 0 { try cancellation.check() }
      if let chosen = target {
        // Sell what left the top N, then split the cash over what entered.
        for s in inputs.indices where units[s] > 0 && !chosen.contains(s) {
          sell(s, at: aligned[s].open[i], bar: i, reason: .signal)
        }
        let entering = chosen.filter { units[$0] == 0 }.sorted()
        if !entering.isEmpty {
          let share = max(0, cash) / Double(entering.count)
          for s in entering {
            let fill = rules.fill(aligned[s].open[i], direction: 1)
            let amount = rules.entryUnits(fill: fill, available: min(share, max(0, cash)))
            guard amount > 0 else { continue }
            let commission = rules.commission(amount, fill)
            cash -= amount * fill + commission
            commissions += commission
            units[s] = amount
            entryPrice[s] = fill
            entryBar[s] = i
            peak[s] = fill
          }
        }
        target = nil
      }
      if rules.risk != nil {
        for s in inputs.indices where units[s] > 0 {
          let bar = aligned[s]
          if let hit = rules.exit(long: true, entryPrice: entryPrice[s], peak: peak[s], open: bar.open[i], high: bar.high[i], low: bar.low[i]) {
            sell(s, at: hit.price, bar: i, reason: hit.reason)
          } else {
            peak[s] = rules.peak(after: peak[s], long: true, high: bar.high[i], low: bar.low[i])
          }
        }
      }
      var value = cash
      var invested = 0.0
      for s in inputs.indices where units[s] > 0 {
        value += units[s] * aligned[s].close[i]
        invested += units[s]
      }
      equity[i] = value
      exposure[i] = invested
      if rules.drawdownHalt != nil, !halted {
        equityPeak = max(equityPeak, value)
        if rules.haltsTrading(equity: value, peak: equityPeak) {
          for s in inputs.indices where units[s] > 0 { sell(s, at: aligned[s].close[i], bar: i, reason: .halt) }
          equity[i] = cash
          exposure[i] = 0
          halted = true
          haltedBar = i
        }
      }
      if !halted, i >= start, i < count - 1 || !strategy.closeAtEnd, isRebalanceBar(i) {
        let ranked = inputs.indices.filter { scores[$0][i].isFinite }.sorted {
          scores[$0][i] != scores[$1][i] ? scores[$0][i] > scores[$1][i] : $0 < $1
        }
        var chosen = Set(ranked.prefix(top))
        if let suspensions, suspensions.contains(timestamps[i]) {
          for s in chosen.sorted() where units[s] == 0 {
            blocked.append(BlockedEntry(bar: i, time: timestamps[i], symbol: inputs[s].symbol, side: "long"))
          }
          chosen = chosen.filter { units[$0] > 0 }
        }
        target = chosen
      }
    }
    if strategy.closeAtEnd, count > 0 {
      for s in inputs.indices where units[s] > 0 { sell(s, at: aligned[s].close[count - 1], bar: count - 1, reason: .end) }
      equity[count - 1] = cash
    }
    // The outcome from the first traded bar on; the benchmark index starts there at 1.
    let first = min(tradingStart, max(0, count - 1))
    let traded = first..<count
    let timeline = BarSeries(
      timestamps: Array(timestamps[traded]), open: [Double](repeating: 0, count: traded.count), high: [Double](repeating: 0, count: traded.count),
      low: [Double](repeating: 0, count: traded.count),
      close: traded.map { i in aligned.map { $0.close[i] / $0.close[first] }.reduce(0, +) / Double(aligned.count) },
      volume: [Double](repeating: 0, count: traded.count))
    let pending = target.map { chosen -> PendingOrder in
      let held = Set(inputs.indices.filter { units[$0] > 0 })
      return PendingOrder(
        decidedAt: timestamps[count - 1], close: !held.subtracting(chosen).isEmpty, open: chosen.subtracting(held).isEmpty ? nil : "long",
        targets: chosen.sorted().map { inputs[$0].symbol })
    }
    let exposed = Array(exposure[traded])
    let open = inputs.indices.filter { units[$0] > 0 }.map { s -> OpenPosition in
      let levels = rules.levels(long: true, entryPrice: entryPrice[s], peak: peak[s])
      return OpenPosition(
        symbol: inputs[s].symbol, side: "long", size: units[s], entryBar: entryBar[s], entryTime: timestamps[entryBar[s]], entryPrice: entryPrice[s],
        peak: peak[s], stop: levels.stop, target: levels.target)
    }
    let outcome = BacktestOutcome(
      trades: trades, equity: equity, position: exposure, timestamps: timestamps, commissions: commissions, halted: halted,
      exposedBars: exposed.filter { $0 != 0 }.count, haltedAt: haltedBar.map { timestamps[$0] }, haltReason: halted ? .drawdown : nil,
      pendingOrder: pending, openPositions: open, blockedEntries: blocked)
    return Outcome(outcome: outcome.dropping(first: first), tradeSymbols: tradeSymbols, timeline: timeline)
  }
}
