import Foundation
import Testing

@testable import QtoolCore

/// The metrics are computed in few passes with interleaved sums (a grid computes them per
/// combination); these tests hold them to the textbook definitions: order statistics and the
/// drawdown bit for bit, sums to the last bits.
@Suite struct MetricsTests {
  struct SplitMix {
    var state: UInt64
    mutating func next() -> Double {
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return Double((z ^ (z >> 31)) >> 11) / Double(1 << 53)
    }
  }

  /// Equity curves of different shapes: mostly flat, only rising, rarely falling, random.
  static func curves() -> [(String, [Double])] {
    var random = SplitMix(state: 7)
    func curve(_ count: Int, _ step: (inout SplitMix) -> Double) -> [Double] {
      var value = 10_000.0
      return (0..<count).map { _ in
        value *= 1 + step(&random)
        return value
      }
    }
    return [
      ("mostly flat", curve(5_000) { $0.next() < 0.8 ? 0 : ($0.next() - 0.5) * 0.02 }),
      ("only rising", curve(3_000) { $0.next() * 0.01 }),
      ("rarely falling", curve(4_000) { $0.next() < 0.03 ? -$0.next() * 0.01 : $0.next() * 0.01 }),
      ("falls then flat", curve(2_000) { $0.next() < 0.04 ? -$0.next() * 0.01 : 0 }),
      ("random walk", curve(10_000) { ($0.next() - 0.5) * 0.01 }),
      ("two bars", [100, 90]),
    ]
  }

  @Test(arguments: curves().map(\.0)) func returnStatisticsMatchTheirDefinitions(_ shape: String) {
    let equity = Self.curves().first { $0.0 == shape }!.1
    let timestamps = equity.indices.map { Int64($0) * 86_400_000 }
    var random = SplitMix(state: 99)
    let benchmarkCurve = equity.map { $0 * (1 + (random.next() - 0.5) * 0.01) }
    let bars = BarSeries(timestamps: timestamps, open: equity, high: equity, low: equity, close: benchmarkCurve, volume: equity)
    let outcome = BacktestOutcome(trades: [], equity: equity, position: [], timestamps: timestamps, commissions: 0, halted: false, exposedBars: 0)
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252, benchmark: benchmarkCurve)

    let returns = (1..<equity.count).map { equity[$0] / equity[$0 - 1] - 1 }
    let n = Double(returns.count)
    let mean = returns.reduce(0, +) / n
    let deviation = returns.count > 1 ? (returns.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)).squareRoot() : 0
    let downside = (returns.reduce(0) { $0 + min($1, 0) * min($1, 0) } / n).squareRoot()
    let sorted = returns.sorted()
    // numpy's default percentile: interpolated between the order statistics around it.
    let position = 0.05 * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let var95 = sorted[lower] + (sorted[min(lower + 1, sorted.count - 1)] - sorted[lower]) * (position - Double(lower))
    let tail = returns.filter { $0 <= var95 }
    let b = (1..<benchmarkCurve.count).map { benchmarkCurve[$0] / benchmarkCurve[$0 - 1] - 1 }
    let meanB = b.reduce(0, +) / n
    var covariance = 0.0
    var variance = 0.0
    for i in returns.indices {
      covariance += (returns[i] - mean) * (b[i] - meanB)
      variance += (b[i] - meanB) * (b[i] - meanB)
    }
    var peak = -Double.infinity
    var drawdown = 0.0
    for value in equity {
      peak = max(peak, value)
      drawdown = max(drawdown, 1 - value / peak)
    }

    func close(_ a: Double, _ b: Double) -> Bool { a == b || abs(a - b) <= 1e-12 * max(abs(a), abs(b)) }
    #expect(metrics.var95 == var95)
    #expect(close(metrics.cvar95, tail.reduce(0, +) / Double(tail.count)))
    #expect(close(metrics.sortino, mean / downside * 252.0.squareRoot()))
    if returns.count > 1 {
      #expect(close(metrics.volatility, deviation * 252.0.squareRoot()))
      #expect(close(metrics.sharpe, mean / deviation * 252.0.squareRoot()))
      #expect(close(metrics.beta, covariance / variance))
    } else {
      // One return has no deviation: undefined, not 0.
      #expect(metrics.volatility.isNaN && metrics.sharpe.isNaN && metrics.beta.isNaN && metrics.alpha.isNaN)
    }
    #expect(metrics.maxDrawdown == -drawdown)
  }

  @Test func selectionFindsTheOrderStatisticAmongRepeatedValues() {
    var random = SplitMix(state: 5)
    let shapes: [[Double]] = [
      (0..<5_000).map { _ in random.next() - 0.5 },
      (0..<5_000).map { _ in (random.next() * 4).rounded(.down) },
      [Double](repeating: -0.25, count: 3_000) + [-0.5, 0.5],
      (0..<2_000).map { Double($0 % 7) },
    ]
    for values in shapes {
      let sorted = values.sorted()
      for k in [0, 1, values.count / 20, values.count / 2, values.count - 1] {
        var work = values
        #expect(Metrics.select(&work, k) == sorted[k])
        #expect(work[k] == sorted[k])
        #expect(work[..<k].allSatisfy { $0 <= sorted[k] } && work[(k + 1)...].allSatisfy { $0 >= sorted[k] })
      }
    }
  }

  @Test func drawdownDurationRunsFromThePeakToTheLastBarBelowIt() {
    // Peaks at day 0 (100) and day 4 (120); under water on days 1–3 and 5–6.
    let equity: [Double] = [100, 90, 80, 95, 120, 110, 115]
    let timestamps = equity.indices.map { Int64($0) * 86_400_000 }
    let bars = BarSeries(timestamps: timestamps, open: equity, high: equity, low: equity, close: equity, volume: equity)
    let outcome = BacktestOutcome(trades: [], equity: equity, position: [], timestamps: timestamps, commissions: 0, halted: false, exposedBars: 0)
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    #expect(metrics.maxDrawdown == -(1 - 80.0 / 100))
    #expect(metrics.maxDrawdownDuration == 3)
  }

  /// A grid records each combination's metrics through `sortedJSON`, not `JSONEncoder`.
  @Test func directJSONIsWhatTheEncoderWrites() throws {
    let equity = Self.curves().first { $0.0 == "random walk" }!.1
    let timestamps = equity.indices.map { Int64($0) * 86_400_000 }
    let bars = BarSeries(timestamps: timestamps, open: equity, high: equity, low: equity, close: equity, volume: equity)
    let trades = [
      Trade(
        side: "long", size: 3, entryBar: 1, entryTime: 0, entryPrice: 10, exitBar: 5, exitTime: 0, exitPrice: 11, pnl: 3, returnPct: 0.1,
        commission: 0, reason: .signal)
    ]
    let outcome = BacktestOutcome(trades: trades, equity: equity, position: [], timestamps: timestamps, commissions: 0, halted: false, exposedBars: 7)
    var metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    #expect(metrics.profitFactor == .infinity)
    metrics.alpha = 1e-7
    metrics.beta = -0.0
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let encoded = try JSONSerialization.jsonObject(with: encoder.encode(metrics)) as! NSDictionary
    let direct = try JSONSerialization.jsonObject(with: Data(metrics.sortedJSON.utf8)) as! NSDictionary
    #expect(direct == encoded)
    #expect(direct.count == Metrics.names.count)
    #expect(metrics.values["trades"] == 1 && metrics.values["profit_factor"] == nil)
  }
}

/// One rule for what a run cannot measure: NaN (null in JSON, n/a in tables), never 0; ratios
/// over zero as IEEE says. And `--assert` on such metrics.
@Suite struct UndefinedMetricsTests {
  func flat(_ count: Int = 50) -> (BacktestOutcome, BarSeries) {
    let timestamps = (0..<count).map { Int64($0) * 86_400_000 }
    let closes = (0..<count).map { 100 + Double($0 % 7) }
    let equity = [Double](repeating: 10_000, count: count)
    let bars = BarSeries(timestamps: timestamps, open: closes, high: closes, low: closes, close: closes, volume: closes)
    return (BacktestOutcome(trades: [], equity: equity, position: [], timestamps: timestamps, commissions: 0, halted: false, exposedBars: 0), bars)
  }

  @Test func aRunWithoutTradesHasUndefinedRatiosNotZeros() throws {
    let (outcome, bars) = flat()
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    for name in [
      "sharpe", "sortino", "calmar", "win_rate", "profit_factor", "sqn", "avg_win", "avg_loss", "best", "worst", "expectancy", "avg_holding_time",
    ] {
      #expect(Metrics.reader(name)!(metrics).isNaN, "\(name)")
      #expect(metrics.undefinedReason(name) == (name == "sqn" ? "0 trades; it needs at least 2" : "0 trades"), "\(name)")
    }
    #expect(metrics.trades == 0 && metrics.totalReturn == 0 && metrics.volatility == 0 && metrics.maxDrawdown == 0)
    #expect(metrics.undefinedReason("total_return") == nil)
    #expect(metrics == metrics, "undefined equals undefined")
    let json = try JSONSerialization.jsonObject(with: Data(metrics.sortedJSON.utf8)) as! [String: Any]
    #expect(json["sharpe"] is NSNull && json["win_rate"] is NSNull && json["trades"] as? Int == 0)
  }

  @Test func ratiosOverZeroAreInfinite() throws {
    // Equity only rises: no losing bar, no drawdown, one winning trade.
    let count = 30
    let timestamps = (0..<count).map { Int64($0) * 86_400_000 }
    let equity = (0..<count).map { 10_000 * (1 + 0.001 * Double($0)) }
    let bars = BarSeries(timestamps: timestamps, open: equity, high: equity, low: equity, close: equity, volume: equity)
    let trade = Trade(
      side: "long", size: 1, entryBar: 0, entryTime: 0, entryPrice: 10, exitBar: 29, exitTime: timestamps[29], exitPrice: 11, pnl: 1,
      returnPct: 0.1, commission: 0, reason: .end)
    let outcome = BacktestOutcome(
      trades: [trade], equity: equity, position: [], timestamps: timestamps, commissions: 0, halted: false, exposedBars: 30)
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    #expect(metrics.sortino == .infinity && metrics.profitFactor == .infinity && metrics.calmar == .infinity)
    #expect(metrics.sqn.isNaN && metrics.undefinedReason("sqn") == "1 trade; it needs at least 2")
    #expect(metrics.avgLoss.isNaN && metrics.undefinedReason("avg_loss") == "no losing trade among 1 trade")
    let json = try JSONSerialization.jsonObject(with: Data(metrics.sortedJSON.utf8)) as! [String: Any]
    #expect(json["profit_factor"] is NSNull && json["sortino"] is NSNull, "JSON has no infinity")
  }

  @Test func assertionsCompareInfinityAsIEEEAndFailOnUndefined() throws {
    let (outcome, bars) = flat()
    let none = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    let failed = try MetricAssertion.failures("sharpe >= 0 and trades >= 0", metrics: none)
    #expect(failed.count == 1)
    #expect(failed.first?.clause == "sharpe >= 0")
    #expect(failed.first?.reason == "sharpe is undefined: 0 trades")
    #expect(
      try MetricAssertion.failures("sharpe < 0", metrics: none).first?.reason == "sharpe is undefined: 0 trades", "NaN compares false both ways")
    #expect(try MetricAssertion.failures("win_rate != 0.5", metrics: none).count == 1)
    let encoded = try JSONSerialization.jsonObject(with: JSONEncoder().encode(failed[0])) as! [String: Any]
    #expect((encoded["values"] as! [String: Any])["sharpe"] is NSNull)

    var winning = none
    winning.profitFactor = .infinity
    winning.sortino = .infinity
    #expect(try MetricAssertion.failures("profit_factor > 2 and sortino >= 1e300", metrics: winning).isEmpty)
    let infinite = try MetricAssertion.failures("profit_factor < 1000", metrics: winning)
    #expect(infinite.first?.values == ["profit_factor": .infinity] && infinite.first?.reason == nil)
    #expect(throws: RuleError.self) { try MetricAssertion.failures("sharp > 1", metrics: none) }
  }

  /// An assertion is judged as the rules language reads it (`or` binds looser than `and`);
  /// only a top-level `and` makes separate clauses, each named as written.
  @Test func assertionsKeepTheLanguagesPrecedence() throws {
    let (outcome, bars) = flat()
    var metrics = Metrics.compute(outcome, bars: bars, barsPerYear: 252)
    metrics.trades = 33
    metrics.sharpe = 1
    #expect(try MetricAssertion.failures("trades > 1000 and trades > 0 or sharpe > 0", metrics: metrics).isEmpty, "(a and b) or c")
    let whole = try MetricAssertion.failures("trades > 1000 and sharpe > 5 or trades < 0", metrics: metrics)
    #expect(whole.map(\.clause) == ["trades > 1000 and sharpe > 5 or trades < 0"], "an `or` at the top is one clause")
    #expect(whole.first?.values == ["trades": 33, "sharpe": 1])
    let split = try MetricAssertion.failures("(trades > 0 or sharpe > 5) &&\tsharpe>5 and  trades  <  3", metrics: metrics)
    #expect(split.map(\.clause) == ["sharpe>5", "trades  <  3"], "each failing clause as written")
    #expect(try MetricAssertion.failures("not trades > 1000 and trades > 1000", metrics: metrics).map(\.clause) == ["trades > 1000"])
    // An error points into the assertion as written, not into a rewritten clause.
    #expect {
      try MetricAssertion.failures("trades > 0 and  sma(sharpe, 3) > 1", metrics: metrics)
    } throws: { error in
      (error as? RuleError)?.column == 17
    }
    #expect(throws: RuleError.self) { try MetricAssertion.failures("trades > 0 and", metrics: metrics) }
    #expect {
      try MetricAssertion.failures("and trades > 0", metrics: metrics)
    } throws: { error in
      (error as? RuleError)?.message == "expected a value before 'and', found none"
    }
  }
}
