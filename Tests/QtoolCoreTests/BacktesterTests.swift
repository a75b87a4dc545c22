import Foundation
import Testing

@testable import QtoolCore

func goog() throws -> BarSeries {
  let text = try String(
    contentsOf: IndicatorsTests.root.deletingLastPathComponent().appendingPathComponent("shared/data/backtesting_py/GOOG.csv"), encoding: .utf8)
  var series = BarSeries()
  for row in text.split(separator: "\n").dropFirst() {
    let f = row.split(separator: ",").map(String.init)
    series.append(
      timestamp: TimestampParser.parse(f[0])!, open: Double(f[1])!, high: Double(f[2])!, low: Double(f[3])!, close: Double(f[4])!,
      volume: Double(f[5])!)
  }
  return series
}

func spec(
  _ rules: StrategySpec.Rules, params: [String: Double] = [:], costs: StrategySpec.Costs? = nil, risk: StrategySpec.Risk? = nil,
  execution: StrategySpec.Execution? = nil, sizing: StrategySpec.Sizing? = nil
) -> StrategySpec {
  StrategySpec(
    name: "test", description: nil, universe: .init(symbols: ["GOOG"], timeframe: "1d", source: nil, dataset: nil), params: params,
    rules: rules, sizing: sizing, costs: costs, risk: risk, execution: execution, signals: nil, benchmark: nil)
}

@Suite struct BacktesterTests {
  /// backtesting.py 0.6.6's SmaCross on GOOG, reproduced to the last bit.
  @Test func agreesWithBacktestingPyExactly() throws {
    let data = try Data(contentsOf: IndicatorsTests.root.appendingPathComponent("Fixtures/reference/backtesting-py-goog-smacross.json"))
    let reference = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    let strategy = try CompiledStrategy(
      spec(
        .init(
          entry: "cross_above(sma(close, fast), sma(close, slow))", exit: nil, shortEntry: "cross_below(sma(close, fast), sma(close, slow))",
          shortExit: nil),
        params: ["fast": 10, "slow": 20], costs: .init(commission: 0.002, commissionFixed: nil, slippageBps: nil),
        execution: .init(fill: "next_open", units: "whole", closeAtEnd: false, capital: 10_000)))
    let bars = try goog()
    let outcome = Backtester.run(strategy, bars: bars)
    let expectedTrades = reference["trades"] as! [[String: Any]]
    #expect(outcome.trades.count == expectedTrades.count)
    for (ours, theirs) in zip(outcome.trades, expectedTrades) {
      let size = (theirs["size"] as! NSNumber).doubleValue
      #expect(ours.side == (size > 0 ? "long" : "short"))
      #expect(ours.size == abs(size))
      #expect(ours.entryBar == theirs["entry_bar"] as! Int)
      #expect(ours.exitBar == theirs["exit_bar"] as! Int)
      #expect(ours.entryPrice == Double(theirs["entry_price"] as! String))
      #expect(ours.exitPrice == Double(theirs["exit_price"] as! String))
      #expect(ours.pnl == Double(theirs["pnl"] as! String), "trade at bar \(ours.entryBar)")
    }
    let equity = (reference["equity"] as! [String]).map { Double($0)! }
    let firstDifference = zip(outcome.equity, equity).enumerated().first { $0.element.0 != $0.element.1 }
    #expect(outcome.equity.count == equity.count)
    #expect(
      firstDifference == nil, "equity curve differs first at bar \(firstDifference?.offset ?? -1): \(String(describing: firstDifference?.element))")
    #expect(outcome.equity.last == Double(reference["final_equity"] as! String))
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    #expect(metrics.maxDrawdown == Double(reference["max_drawdown"] as! String))
  }

  @Test func deterministic() throws {
    let strategy = try CompiledStrategy(spec(.init(entry: "rsi(close, 14) < 30", exit: "rsi(close, 14) > 70", shortEntry: nil, shortExit: nil)))
    let bars = try goog()
    #expect(Backtester.run(strategy, bars: bars) == Backtester.run(strategy, bars: bars))
  }

  /// Without stops or a drawdown limit the engine marks quiet stretches in a loop of its own;
  /// a stop that can never trigger sends every bar through the full path, which must agree.
  @Test(arguments: [
    "sma(close, 10) > sma(close, 30)|sma(close, 10) < sma(close, 30)|sma(close, 10) < sma(close, 30)|sma(close, 10) > sma(close, 30)",
    "rsi(close, 14) < 30|rsi(close, 14) > 70||", "close > close[1]|||", "|close > close[2]|close < close[3]|",
  ])
  func quietStretchesAreMarkedAsEveryBarIs(_ rules: String) throws {
    let parts = rules.split(separator: "|", omittingEmptySubsequences: false).map { $0.isEmpty ? nil : String($0) }
    let ruleSet = StrategySpec.Rules(entry: parts[0], exit: parts[1], shortEntry: parts[2], shortExit: parts[3])
    // A long stop at −99.99% (a short's may sit above 100%).
    let never = StrategySpec.Risk(stopLoss: parts[2] == nil ? 0.9999 : 9.9, takeProfit: nil, trailingStop: nil, maxDrawdownHalt: nil)
    for fill in ["next_open", "close"] {
      let execution = StrategySpec.Execution(fill: fill, units: nil, closeAtEnd: nil, capital: nil)
      let quick = Backtester.run(try CompiledStrategy(spec(ruleSet, execution: execution)), bars: try goog(), recordPositions: true)
      let full = Backtester.run(try CompiledStrategy(spec(ruleSet, risk: never, execution: execution)), bars: try goog(), recordPositions: true)
      let identical = quick == full  // one Bool: a failure should not print both runs
      #expect(identical, "fill \(fill)")
      #expect(quick.trades.count > 0)
    }
  }

  /// Exposure is counted as the run goes; it must equal the share of closes marked with a position.
  @Test(arguments: ["rsi(close, 14) < 30|rsi(close, 14) > 70", "close > 0|", "close > close[1]|close < close[1]"])
  func exposureCountsTheMarkedPositions(_ rules: String) throws {
    let parts = rules.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
    let strategy = try CompiledStrategy(spec(.init(entry: parts[0], exit: parts[1].isEmpty ? nil : parts[1], shortEntry: nil, shortExit: nil)))
    let outcome = Backtester.run(strategy, bars: try goog(), recordPositions: true)
    #expect(outcome.exposedBars == outcome.position.filter { $0 != 0 }.count)
    #expect(outcome.exposedBars > 0)
    #expect(Backtester.run(strategy, bars: try goog()).position.isEmpty)
  }

  /// A grid's runs keep no equity curve: they run side by side in batches, a block of bars
  /// at a time, and feed the statistics as they go. Each one's metrics must be exactly those
  /// of a whole run on its own, over many blocks, with stops and halts, and in a rising market
  /// where too few bars lose for var_95 to lie among the losses.
  @Test(arguments: ["random walk", "rising"])
  func batchedBlockwiseMetricsEqualThoseOfWholeRuns(_ market: String) throws {
    var random = MetricsTests.SplitMix(state: 3)
    var bars = BarSeries()
    var price = 100.0
    for i in 0..<30_000 {
      let open = price
      price *= market == "rising" ? (random.next() < 0.03 ? 0.99 : 1.001) : 1 + (random.next() - 0.5) * 0.02
      bars.append(
        timestamp: 1_600_000_000_000 + Int64(i) * 3_600_000, open: open, high: max(open, price) * 1.002, low: min(open, price) * 0.998,
        close: price, volume: 1)
    }
    let crossing = StrategySpec.Rules(
      entry: "cross_above(sma(close, 10), sma(close, 30))", exit: "cross_below(sma(close, 10), sma(close, 30))", shortEntry: nil, shortExit: nil)
    let strategies = try [
      spec(crossing),
      spec(.init(entry: "close > 0", exit: nil, shortEntry: nil, shortExit: nil)),
      spec(.init(entry: "cross_above(sma(close, 50), sma(close, 400))", exit: "close < close[1]", shortEntry: nil, shortExit: nil)),
      spec(crossing, risk: .init(stopLoss: 0.02, takeProfit: 0.05, trailingStop: nil, maxDrawdownHalt: 0.6)),
      spec(.init(entry: crossing.entry, exit: nil, shortEntry: crossing.exit, shortExit: nil)),
    ].map { try CompiledStrategy($0) }
    let benchmark = BenchmarkReturns(bars.close)
    let batched = Backtester.metrics(of: strategies, bars: bars, evaluator: RuleEvaluator(bars: bars), barsPerYear: 8766, benchmark: benchmark)
    for (index, strategy) in strategies.enumerated() {
      let whole = Metrics.compute(Backtester.run(strategy, bars: bars), bars: bars, barsPerYear: 8766, benchmark: benchmark)
      let identical = whole == batched[index]  // one Bool: a failure should not print both
      #expect(identical, "strategy \(index)")
      #expect(whole.trades > 0 || market == "rising")
    }
  }

  /// No look-ahead: cutting the data after bar t never changes a decision up to t.
  @Test func truncatingTheFutureChangesNothingBefore() throws {
    let strategy = try CompiledStrategy(
      spec(
        .init(
          entry: "cross_above(ema(close, 12), sma(close, 30)) and rsi(close, 14) < 70", exit: "close < lowest(close, 10)[1]", shortEntry: nil,
          shortExit: nil),
        risk: .init(stopLoss: 0.05, takeProfit: 0.2, trailingStop: nil, maxDrawdownHalt: nil)))
    let bars = try goog()
    let full = Backtester.run(strategy, bars: bars)
    for cut in [300, 777, 1500] {
      let partial = Backtester.run(strategy, bars: bars.slice(0..<cut))
      // Trades entered and closed before the cut, other than the forced close at the end, agree.
      let finished = full.trades.filter { $0.exitBar < cut - 1 }
      #expect(Array(partial.trades.prefix(finished.count)) == finished, "cut at \(cut)")
      #expect(Array(partial.equity.prefix(cut - 1)) == Array(full.equity.prefix(cut - 1)))
    }
  }

  @Test func stopGapAndSameBarStopFirst() throws {
    // Enter long at bar 2's open (100); bar 3 gaps below the 5% stop: fill at its open.
    let bars = BarSeries(
      timestamps: (0..<6).map { Int64($0) * 86_400_000 }, open: [100, 100, 100, 90, 100, 100], high: [101, 101, 101, 91, 101, 101],
      low: [99, 99, 99, 89, 99, 99], close: [100, 100.5, 100, 90, 100, 100], volume: [1, 1, 1, 1, 1, 1])
    let strategy = try CompiledStrategy(
      spec(
        .init(entry: "close > close[1]", exit: nil, shortEntry: nil, shortExit: nil),
        risk: .init(stopLoss: 0.05, takeProfit: nil, trailingStop: nil, maxDrawdownHalt: nil)))
    let outcome = Backtester.run(strategy, bars: bars)
    #expect(outcome.trades.first?.reason == .stop)
    #expect(outcome.trades.first?.exitPrice == 90)
    #expect(outcome.trades.first?.entryPrice == 100)
    // Both stop (95) and target (105) inside one bar: the stop is taken.
    let wide = BarSeries(
      timestamps: (0..<4).map { Int64($0) * 86_400_000 }, open: [100, 100, 100, 100], high: [100, 101, 100, 110], low: [100, 99, 100, 90],
      close: [100, 100.5, 100, 100], volume: [1, 1, 1, 1])
    let both = try CompiledStrategy(
      spec(
        .init(entry: "close > close[1]", exit: nil, shortEntry: nil, shortExit: nil),
        risk: .init(stopLoss: 0.05, takeProfit: 0.05, trailingStop: nil, maxDrawdownHalt: nil)))
    let result = Backtester.run(both, bars: wide)
    #expect(result.trades.first?.reason == .stop)
    #expect(result.trades.first?.exitPrice == 95)
  }

  @Test func fractionalSizingAndEndClose() throws {
    let strategy = try CompiledStrategy(spec(.init(entry: "close > 0", exit: nil, shortEntry: nil, shortExit: nil)))
    let outcome = Backtester.run(strategy, bars: try goog())
    #expect(outcome.trades.count == 1)
    #expect(outcome.trades[0].reason == .end)
    #expect(outcome.trades[0].size != outcome.trades[0].size.rounded(), "fractional units")
    #expect(outcome.trades[0].entryBar == 2)
  }

  /// `entry: true` and `exit: false` were refused as "not a condition, got 1 / got 0".
  @Test func trueAndFalseAreConditions() throws {
    let hold = try CompiledStrategy(spec(.init(entry: "true", exit: "false", shortEntry: nil, shortExit: nil)))
    let held = Backtester.run(hold, bars: try goog())
    #expect(held.trades.count == 1 && held.trades[0].reason == .end && held.trades[0].entryBar == 2, "bought when close > 0 would be, held")
    let never = try CompiledStrategy(spec(.init(entry: "close > 0 and false", exit: nil, shortEntry: nil, shortExit: nil)))
    #expect(Backtester.run(never, bars: try goog()).trades.isEmpty)
    #expect(try RuleParser.parse("not false or close > 1", origin: "r", parameters: [:]).source == "not false or close > 1")
    #expect(throws: RuleError.self) { try RuleParser.parse("true * 2", origin: "r", parameters: [:]) }
    #expect(throws: RuleError.self) { try RuleParser.parse("true[1]", origin: "r", parameters: [:]) }
    for (spelled, meant) in [("True", "true"), ("yes", "true"), ("0", "false"), ("OFF", "false")] {
      do {
        _ = try CompiledStrategy(spec(.init(entry: "close > 0", exit: spelled, shortEntry: nil, shortExit: nil)))
        Issue.record("\(spelled) was taken as a rule")
      } catch {
        #expect("\(error)".contains("write \(meant) (lower case)"), "\(error)")
      }
    }
    // A condition n bars ago is a condition: yesterday up and today up.
    let twoUp = try CompiledStrategy(spec(.init(entry: "(close > open)[1] and close > open", exit: "(close < open)[1]", shortEntry: nil, shortExit: nil)))
    let bars = try goog()
    let trades = Backtester.run(twoUp, bars: bars).trades
    #expect(!trades.isEmpty)
    for trade in trades where trade.entryBar >= 2 {
      let decided = trade.entryBar - 1
      #expect(bars.close[decided] > bars.open[decided] && bars.close[decided - 1] > bars.open[decided - 1])
    }
  }

  @Test func ruleErrorsPointAtTheSpot() {
    #expect(throws: RuleError.self) {
      try CompiledStrategy(spec(.init(entry: "cross_above(smaa(close, 10), sma(close, 30))", exit: nil, shortEntry: nil, shortExit: nil)))
    }
    do {
      _ = try RuleParser.parse("cross_above(smaa(close, 10), sma(close, 30))", origin: "rules.entry", parameters: [:])
    } catch {
      #expect(
        "\(error)"
          == "rules.entry:1:13: unknown function 'smaa' — did you mean 'sma'?\n  cross_above(smaa(close, 10), sma(close, 30))\n              ^")
    }
    for (text, message) in [
      ("close >", "expected a value, found end of rule"), ("sma(close)", "sma takes 2 arguments, got 1"), ("close + 1", nil),
      ("rsi(close, 14) > 70 and close", "'and' needs conditions on both sides; close is a number"),
      ("not close", "'not' needs a condition; close is a number"),
      ("close[x]", "a lag needs a whole number of bars, e.g. close[1]"),
      ("sma(close, slow)", "unknown name 'slow' — did you mean 'low'?; names are open, high, low, close, volume and the params"),
    ] {
      do {
        let expression = try RuleParser.parse(text, origin: "r", parameters: [:])
        #expect(message == nil, "\(text) parsed as \(expression)")
      } catch let error as RuleError {
        #expect(error.message == message, "\(text)")
      } catch {
        Issue.record("\(error)")
      }
    }
  }

  @Test func precedence() throws {
    let expression = try RuleParser.parse("not close > 1 + 2 * 3 or open < 1 and high > 2", origin: "r", parameters: [:])
    #expect(expression.description == "(not (close > 7) or ((open < 1) and (high > 2)))")
  }

  @Test func momentumPortfolioHoldsTheRiser() throws {
    let day: Int64 = 86_400_000
    let start = UTCCalendar.timestamp(year: 2024, month: 1, day: 1)
    func series(_ price: (Int) -> Double) -> BarSeries {
      var bars = BarSeries()
      for i in 0..<120 {
        let p = price(i)
        bars.append(timestamp: start + Int64(i) * day, open: p, high: p * 1.01, low: p * 0.99, close: p, volume: 1)
      }
      return bars
    }
    var spec = spec(.init(entry: nil, exit: nil, shortEntry: nil, shortExit: nil), params: ["lookback": 10])
    spec.portfolio = .init(rank: "roc(close, lookback)", top: 1, rebalance: "monthly")
    let strategy = try CompiledStrategy(spec)
    let result = try PortfolioBacktester.run(
      strategy, rank: strategy.rank!, top: 1, rebalance: "monthly",
      inputs: [.init(symbol: "DOWN", bars: series { 100 - Double($0) * 0.3 }), .init(symbol: "UP", bars: series { 100 + Double($0) })])
    #expect(Set(result.tradeSymbols) == ["UP"], "only the rising symbol is ever held")
    #expect(result.outcome.trades.count == 1, "held from the first rebalance to the end")
    #expect(result.outcome.trades[0].reason == .end)
    #expect(result.outcome.equity.last! > strategy.capital * 1.5)
    #expect(result.outcome.trades[0].entryBar == 12, "decided on bar 11's close (lookback + 1), filled at bar 12's open")
  }

  /// The order decided on the last bar's close is exposed, not dropped.
  @Test func pendingOrderAtTheLastBar() throws {
    var bars = BarSeries()
    for (i, close) in [5.0, 5, 11].enumerated() {
      bars.append(timestamp: Int64(i) * 86_400_000, open: close, high: close, low: close, close: close, volume: 1)
    }
    let rules = StrategySpec.Rules(entry: "close > 10", exit: nil, shortEntry: nil, shortExit: nil)
    let open = try CompiledStrategy(spec(rules, execution: .init(fill: "next_open", units: nil, closeAtEnd: false, capital: nil)))
    let outcome = Backtester.run(open, bars: bars)
    #expect(outcome.trades.isEmpty)
    #expect(outcome.pendingOrder == PendingOrder(decidedAt: 2 * 86_400_000, close: false, open: "long"))
    let none = try CompiledStrategy(spec(.init(entry: "close > 100", exit: nil, shortEntry: nil, shortExit: nil)))
    #expect(Backtester.run(none, bars: bars).pendingOrder == nil)
  }

  /// Cancelling a run stops it at its next block of bars.
  @Test func cancelledRunThrows() throws {
    let token = CancellationToken()
    token.cancel(.interrupt)
    let strategy = try CompiledStrategy(spec(.init(entry: "close > 0", exit: nil, shortEntry: nil, shortExit: nil)))
    #expect(throws: OperationCancelled(reason: .interrupt)) { try Backtester.run(strategy, bars: try goog(), cancellation: token) }
  }

  @Test func positionCaps() throws {
    let bars = try goog()
    let rules = StrategySpec.Rules(entry: "close > 0", exit: nil, shortEntry: nil, shortExit: nil)
    let units = try CompiledStrategy(spec(rules, sizing: .init(fraction: 1, units: nil, notional: nil, maxUnits: 7, maxNotional: nil)))
    #expect(Backtester.run(units, bars: bars).trades[0].size == 7)
    let cash = try CompiledStrategy(spec(rules, sizing: .init(fraction: 1, units: nil, notional: nil, maxUnits: nil, maxNotional: 1_000)))
    let trade = Backtester.run(cash, bars: bars).trades[0]
    let spent = trade.size * trade.entryPrice
    #expect(spent <= 1_000)
    #expect(spent > 990)
  }

  @Test func drawdownPeriodsAndMonthlyReturns() {
    let day: Int64 = 86_400_000
    let jan = UTCCalendar.timestamp(year: 2024, month: 1, day: 30)
    let timestamps = (0..<6).map { jan + Int64($0) * day }  // Jan 30, 31, Feb 1, 2, 3, 4
    let equity: [Double] = [100, 110, 99, 88, 121, 120]
    let periods = ResultSeries.drawdownPeriods(timestamps, equity)
    #expect(periods.count == 2)
    let deepest = ResultSeries.DrawdownPeriod(
      start: "2024-01-31T00:00:00Z", trough: "2024-02-02T00:00:00Z", end: "2024-02-03T00:00:00Z", depth: 88.0 / 110 - 1, days: 3)
    #expect(periods[0] == deepest)
    #expect(periods[1].end == nil, "still under water at the end")
    let months = ResultSeries.monthlyReturns(timestamps, equity)
    let expected: [ResultSeries.MonthlyReturn] = [
      ResultSeries.MonthlyReturn(month: "2024-01", value: 110.0 / 100 - 1), ResultSeries.MonthlyReturn(month: "2024-02", value: 120.0 / 110 - 1),
    ]
    #expect(months == expected)
  }
}
