/// Portfolio strategies: several symbols, ranked by an expression on a rebalancing calendar;
/// the top N are held in equal shares. Decided on a rebalance bar's close, filled at the next
/// open. Names that stay in the top N are kept as they are; names that leave are sold, and the
/// cash is split equally over the names that enter (no partial trades, so every trade has one
/// entry and one exit). Cash is real cash: buying spends it, selling returns it.
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

  public static func run(_ strategy: CompiledStrategy, rank: Expression, top: Int, rebalance: String, inputs: [Input]) -> Outcome {
    // The common timeline: timestamps every symbol has.
    var common = Set(inputs[0].bars.timestamps)
    for input in inputs.dropFirst() { common.formIntersection(input.bars.timestamps) }
    let timestamps = common.sorted()
    let aligned = inputs.map { input -> BarSeries in
      var index: [Int64: Int] = [:]
      for (i, t) in input.bars.timestamps.enumerated() { index[t] = i }
      let rows = timestamps.map { index[$0]! }
      return BarSeries(
        timestamps: timestamps, open: rows.map { input.bars.open[$0] }, high: rows.map { input.bars.high[$0] }, low: rows.map { input.bars.low[$0] },
        close: rows.map { input.bars.close[$0] }, volume: rows.map { input.bars.volume[$0] })
    }
    let scores = aligned.map { RuleEvaluator(bars: $0).evaluate(rank) }
    let count = timestamps.count
    let start = max(1, rank.lookback + 1)
    let relative = strategy.commission
    let fixed = strategy.commissionFixed
    var cash = strategy.capital
    var units = [Double](repeating: 0, count: inputs.count)
    var entryPrice = [Double](repeating: 0, count: inputs.count)
    var entryBar = [Int](repeating: 0, count: inputs.count)
    var entryCommission = [Double](repeating: 0, count: inputs.count)
    var trades: [Trade] = []
    var tradeSymbols: [String] = []
    var equity = [Double](repeating: strategy.capital, count: count)
    var exposure = [Double](repeating: 0, count: count)
    var commissions = 0.0
    var target: Set<Int>? = nil

    /// Sells all of symbol `s` and records the trade.
    func sell(_ s: Int, at price: Double, bar: Int, reason: Trade.Reason) {
      let commission = fixed + units[s] * price * relative
      cash += units[s] * price - commission
      commissions += commission
      let pnl = units[s] * (price - entryPrice[s]) - entryCommission[s] - commission
      trades.append(
        Trade(
          side: "long", size: units[s], entryBar: entryBar[s], entryTime: timestamps[entryBar[s]], entryPrice: entryPrice[s], exitBar: bar,
          exitTime: timestamps[bar], exitPrice: price, pnl: pnl, returnPct: pnl / (units[s] * entryPrice[s]),
          commission: entryCommission[s] + commission, reason: reason))
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
      if let chosen = target {
        // Sell what left the top N, then split the cash over what entered.
        for s in inputs.indices where units[s] > 0 && !chosen.contains(s) {
          sell(s, at: aligned[s].open[i] * (1 - strategy.slippage), bar: i, reason: .signal)
        }
        let entering = chosen.filter { units[$0] == 0 }.sorted()
        if !entering.isEmpty {
          let share = max(0, cash) / Double(entering.count) * (1 - Double.ulpOfOne)
          for s in entering {
            let price = aligned[s].open[i] * (1 + strategy.slippage)
            let perUnit = price * (1 + relative)
            let budget = share - fixed
            guard budget > 0 else { continue }
            let amount = strategy.wholeUnits ? (budget / perUnit).rounded(.down) : (budget / perUnit * 1e8).rounded(.down) / 1e8
            guard amount > 0 else { continue }
            let commission = fixed + amount * price * relative
            cash -= amount * price + commission
            commissions += commission
            units[s] = amount
            entryPrice[s] = price
            entryBar[s] = i
            entryCommission[s] = commission
          }
        }
        target = nil
      }
      var value = cash
      var invested = 0.0
      for s in inputs.indices where units[s] > 0 {
        value += units[s] * aligned[s].close[i]
        invested += units[s]
      }
      equity[i] = value
      exposure[i] = invested
      if i >= start, i < count - 1, isRebalanceBar(i) {
        let ranked = inputs.indices.filter { scores[$0][i].isFinite }.sorted {
          scores[$0][i] != scores[$1][i] ? scores[$0][i] > scores[$1][i] : $0 < $1
        }
        target = Set(ranked.prefix(top))
      }
    }
    if strategy.closeAtEnd, count > 0 {
      for s in inputs.indices where units[s] > 0 { sell(s, at: aligned[s].close[count - 1], bar: count - 1, reason: .end) }
      equity[count - 1] = cash
    }
    let timeline = BarSeries(
      timestamps: timestamps, open: [Double](repeating: 0, count: count), high: [Double](repeating: 0, count: count),
      low: [Double](repeating: 0, count: count),
      close: timestamps.indices.map { i in aligned.map { $0.close[i] / $0.close[0] }.reduce(0, +) / Double(aligned.count) },
      volume: [Double](repeating: 0, count: count))
    return Outcome(
      outcome: BacktestOutcome(
        trades: trades, equity: equity, position: exposure, timestamps: timestamps, commissions: commissions, halted: false,
        exposedBars: exposure.filter { $0 != 0 }.count),
      tradeSymbols: tradeSymbols, timeline: timeline)
  }
}
