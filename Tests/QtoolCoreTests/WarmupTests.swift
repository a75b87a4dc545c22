import Foundation
import Testing

@testable import QtoolCore

/// Trading from a bar while the indicators see the bars before it: the warm-up a strategy
/// needs, and that a run from a cut decides as the run over all the bars does.
@Suite struct WarmupTests {
  func strategy(_ entry: String, _ exit: String? = nil, sizing: StrategySpec.Sizing? = nil) throws -> CompiledStrategy {
    try CompiledStrategy(spec(.init(entry: entry, exit: exit, shortEntry: nil, shortExit: nil), sizing: sizing))
  }

  @Test(
    arguments: [
      ("cross_above(sma(close, 10), sma(close, 60))", 60, "sma(close, 60)"),
      // Nested calls add up: ema(close, 10) has values from bar 9, their 20-bar mean from bar 28.
      ("sma(ema(close, 10), 20) > close", 29, "sma(ema(close, 10), 20)"),
      // Offsets count: close[25] has a value from bar 25.
      ("close > close[25]", 25, "close[25]"),
      ("close > highest(close, 20)[1]", 20, "highest(close, 20)"),
      ("rsi(close, 14) < 30 and close > sma(close, 5)[10]", 15, "rsi(close, 14)"),
      ("close > 0", 1, nil),
    ] as [(String, Int, String?)])
  func warmupCountsLongestWindowsNestedCallsAndOffsets(_ entry: String, _ bars: Int, _ expression: String?) throws {
    let warmup = try strategy(entry).warmup
    #expect(warmup.bars == bars)
    #expect(warmup.expression == expression)
    #expect(try strategy(entry).firstDecisionBar == bars)
  }

  /// A live run from --from stored its first signals with no strength (RSI not warm): the
  /// strength's look-back counts as the rules' do.
  @Test func theSignalStrengthIsWarmBeforeTheFirstDecision() throws {
    var withStrength = spec(.init(entry: "close > 0", exit: "close < open", shortEntry: nil, shortExit: nil))
    withStrength.signals = .init(strength: "100 - rsi(close, 14)")
    let warmup = try CompiledStrategy(withStrength).warmup
    #expect(warmup.bars == 15 && warmup.expression == "rsi(close, 14)")
    // Conditions count as 1 and 0 in a strength (and only there, beside a model's label).
    withStrength.signals = .init(strength: "(rsi(close, 14) < 30) * 50 + 50")
    let graded = try CompiledStrategy(withStrength)
    let values = RuleEvaluator(bars: try goog()).evaluate(try #require(graded.strength))
    #expect(Set(values.dropFirst(14)) == [50, 100])
    #expect(throws: RuleError.self) { try CompiledStrategy(spec(.init(entry: "(close > open) * 2 > 1", exit: nil, shortEntry: nil, shortExit: nil))) }
  }

  /// GOOG, SMA 10/60 with fixed units (so sizes do not depend on the equity): flat at the cut
  /// (the full run's 2009-03-25 trade closed on 2010-01-26), the run from the cut makes exactly
  /// the full run's trades after it; started cold, it misses the first one.
  @Test func aRunFromACutTradesAsTheFullRunDoes() throws {
    let bars = try goog()
    let sma = try strategy(
      "cross_above(sma(close, 10), sma(close, 60))", "cross_below(sma(close, 10), sma(close, 60))", sizing: .init(units: 10))
    let cut = bars.index(atOrAfter: UTCCalendar.timestamp(year: 2010, month: 2, day: 1))
    let full = Backtester.run(sma, bars: bars, recordPositions: true)
    #expect(full.position[cut - 1] == 0 && full.pendingOrder == nil, "flat at the cut")
    let after = full.trades.filter { $0.entryBar >= cut }
    #expect(after.count > 5)
    #expect(UTCCalendar.format(after[0].entryTime) == "2010-03-18")

    let warmup = sma.warmup.bars
    let warmed = Backtester.run(sma, bars: bars.slice((cut - warmup)..<bars.count), from: warmup)
    func moved(_ trades: [Trade], by offset: Int) -> [Trade] {
      trades.map {
        var trade = $0
        trade.entryBar += offset
        trade.exitBar += offset
        return trade
      }
    }
    #expect(moved(warmed.trades, by: cut) == after)
    #expect(warmed.equity.count == bars.count - cut && warmed.timestamps.first == bars.timestamps[cut])
    #expect(warmed.equity[0] == sma.capital, "the curve starts at the cut, with the capital")

    let cold = Backtester.run(sma, bars: bars.slice(cut..<bars.count))
    #expect(cold.trades.first.map { UTCCalendar.format($0.entryTime) } != "2010-03-18", "cold, the first trade is missed")
  }

  /// A grid's batched metrics from a trading start are those of a whole run from it, measured
  /// on the traded bars only.
  @Test func batchedMetricsFromATradingStartEqualWholeRuns() throws {
    var random = MetricsTests.SplitMix(state: 17)
    var bars = BarSeries()
    var price = 100.0
    for i in 0..<20_000 {
      let open = price
      price *= 1 + (random.next() - 0.5) * 0.02
      bars.append(
        timestamp: 1_600_000_000_000 + Int64(i) * 3_600_000, open: open, high: max(open, price) * 1.002, low: min(open, price) * 0.998,
        close: price, volume: 1)
    }
    let start = 7_000
    let traded = bars.slice(start..<bars.count)
    let benchmark = BenchmarkReturns(traded.close)
    let strategies = try [
      strategy("cross_above(sma(close, 10), sma(close, 30))", "cross_below(sma(close, 10), sma(close, 30))"),
      strategy("cross_above(sma(close, 50), sma(close, 400))", "close < close[1]"),
      try CompiledStrategy(
        spec(
          .init(entry: "close > sma(close, 20)", exit: "close < sma(close, 20)", shortEntry: nil, shortExit: nil),
          risk: .init(stopLoss: 0.02, takeProfit: 0.05, trailingStop: nil, maxDrawdownHalt: 0.5))),
    ]
    let batched = Backtester.metrics(
      of: strategies, bars: bars, from: start, evaluator: RuleEvaluator(bars: bars), barsPerYear: 8766, benchmark: benchmark)
    for (index, strategy) in strategies.enumerated() {
      let outcome = Backtester.run(strategy, bars: bars, from: start)
      let whole = Metrics.compute(outcome, bars: traded, barsPerYear: 8766, benchmark: benchmark)
      let identical = whole == batched[index]
      #expect(identical, "strategy \(index)")
      #expect(whole.trades > 0)
      #expect(whole.buyAndHoldReturn == traded.close.last! / traded.close[0] - 1, "measured on the traded bars")
      #expect(outcome.trades.allSatisfy { $0.entryTime >= traded.timestamps[0] })
    }
  }

  /// A portfolio from a trading start: its first rebalance is there, its curve and benchmark
  /// index start there, and every trade names its symbol.
  @Test func portfolioTradesFromItsStartAndNamesSymbols() throws {
    var strategy = try PortfolioBacktesterTests.strategy(risk: nil)
    strategy.spec.portfolio?.rebalance = "daily"
    let inputs = PortfolioBacktesterTests.inputs()
    let result = try PortfolioBacktester.run(strategy, rank: strategy.rank!, top: 1, rebalance: "daily", inputs: inputs, from: 3)
    #expect(result.outcome.equity.count == 3 && result.timeline.count == 3)
    #expect(result.timeline.close[0] == 1)
    #expect(result.outcome.trades.first?.entryTime == inputs[0].bars.timestamps[4], "decided on the first traded bar, filled at the next open")
    #expect(result.outcome.trades.map(\.symbol) == result.tradeSymbols.map { Optional($0) })
    #expect(!result.outcome.trades.isEmpty)
  }
}
