import Foundation
import Testing

@testable import QtoolCore

/// The metrics are computed in fused passes without storing returns (a grid computes them per
/// combination); these tests hold them to the textbook definitions, bit for bit.
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
    let var95 = Metrics.quantile(sorted, 0.05)
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

    #expect(metrics.var95 == var95)
    #expect(metrics.cvar95 == tail.reduce(0, +) / Double(tail.count))
    #expect(metrics.volatility == deviation * 252.0.squareRoot())
    #expect(metrics.sharpe == (deviation > 0 ? mean / deviation * 252.0.squareRoot() : 0))
    #expect(metrics.sortino == (downside > 0 ? mean / downside * 252.0.squareRoot() : 0))
    #expect(metrics.beta == (returns.count > 1 ? covariance / variance : 0))
    #expect(metrics.maxDrawdown == -drawdown)
  }
}
