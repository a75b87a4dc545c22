import Foundation
import Testing

@testable import QtoolCore

/// Portfolios obey the same trading rules as single-symbol runs (`TradingRules`): sizing,
/// stops and the drawdown halt, checked against trades worked out by hand.
@Suite struct PortfolioBacktesterTests {
  static let day: Int64 = 86_400_000
  static let start = UTCCalendar.timestamp(year: 2024, month: 1, day: 1)

  /// A falls through 90 on day 2 (low 85); B sits at 50. Ranked by close, A is chosen on day 1.
  static func inputs() -> [PortfolioBacktester.Input] {
    func series(_ rows: [(Double, Double, Double, Double)]) -> BarSeries {
      var bars = BarSeries()
      for (i, row) in rows.enumerated() {
        bars.append(timestamp: start + Int64(i) * day, open: row.0, high: row.1, low: row.2, close: row.3, volume: 1)
      }
      return bars
    }
    let a = series([(100, 100, 100, 100), (100, 101, 99, 100), (100, 100, 85, 88), (88, 90, 87, 89), (89, 90, 88, 90), (90, 91, 89, 91)])
    let b = series(Array(repeating: (50, 50, 50, 50), count: 6))
    return [.init(symbol: "A", bars: a), .init(symbol: "B", bars: b)]
  }

  static func strategy(risk: StrategySpec.Risk?, sizing: StrategySpec.Sizing? = nil) throws -> CompiledStrategy {
    var portfolio = spec(.init(entry: nil, exit: nil, shortEntry: nil, shortExit: nil), risk: risk, sizing: sizing)
    portfolio.universe.symbols = ["A", "B"]
    portfolio.portfolio = .init(rank: "close", top: 1, rebalance: "daily")
    portfolio.execution = .init(fill: "next_open", units: "fractional", closeAtEnd: true, capital: 1_000)
    return try CompiledStrategy(portfolio)
  }

  static func run(_ strategy: CompiledStrategy) throws -> PortfolioBacktester.Outcome {
    try PortfolioBacktester.run(strategy, rank: strategy.rank!, top: 1, rebalance: "daily", inputs: inputs())
  }

  @Test func stopLossClosesInsideTheBar() throws {
    let result = try Self.run(Self.strategy(risk: .init(stopLoss: 0.1, takeProfit: nil, trailingStop: nil, maxDrawdownHalt: nil)))
    let trades = result.outcome.trades
    // Bought on day 2's open at 100 with all the cash (less an ulp, as every entry is sized):
    // 1000·(1−ε)/100 rounded down to 1e-8 units is 9.99999999.
    #expect(trades[0].entryBar == 2)
    #expect(trades[0].entryPrice == 100)
    #expect(trades[0].size == 9.99999999)
    // Day 2's low (85) goes through the stop at 90: sold at the stop, not the low.
    #expect(trades[0].exitBar == 2)
    #expect(trades[0].exitPrice == 90)
    #expect(trades[0].reason == .stop)
    #expect(abs(trades[0].pnl - (-99.9999999)) < 1e-9)
    // Still ranked first at day 2's close, A is bought again at day 3's open.
    #expect(trades[1].entryBar == 3)
    #expect(trades[1].entryPrice == 88)
    #expect(trades[1].reason == .end)
    #expect(result.tradeSymbols == ["A", "A"])
    #expect(abs(result.outcome.equity[2] - 900.0000001) < 1e-9, "cash after the stop, nothing held at the close")
  }

  @Test func drawdownHaltSellsAtTheCloseAndStopsTrading() throws {
    let result = try Self.run(Self.strategy(risk: .init(stopLoss: nil, takeProfit: nil, trailingStop: nil, maxDrawdownHalt: 0.05)))
    let trades = result.outcome.trades
    #expect(trades.count == 1, "no trade after the halt")
    // Day 2 closes at 88: equity 1000 − 9.99999999·12 is 12% under its peak, past the 5% halt.
    #expect(trades[0].exitBar == 2)
    #expect(trades[0].exitPrice == 88)
    #expect(trades[0].reason == .halt)
    #expect(result.outcome.halted)
    #expect(result.outcome.haltedAt == Self.start + 2 * Self.day)
    #expect(result.outcome.equity[5] == result.outcome.equity[2], "flat after the halt")
  }

  @Test func sizingFractionAndUnits() throws {
    let half = try Self.run(Self.strategy(risk: nil, sizing: .init(fraction: 0.5, units: nil, notional: nil, maxUnits: nil, maxNotional: nil)))
    #expect(half.outcome.trades[0].size == 5, "half the cash at 100")
    let fixed = try Self.run(Self.strategy(risk: nil, sizing: .init(fraction: nil, units: 3, notional: nil, maxUnits: nil, maxNotional: nil)))
    #expect(fixed.outcome.trades[0].size == 3)
    let capped = try Self.run(Self.strategy(risk: nil, sizing: .init(fraction: 1, units: nil, notional: nil, maxUnits: nil, maxNotional: 250)))
    #expect(capped.outcome.trades[0].size == 2.5)
  }

  @Test func costsAndSlippageAsInSingleRuns() throws {
    var strategy = try Self.strategy(risk: nil)
    strategy.commission = 0.01
    strategy.slippage = 0.001
    let trade = try Self.run(strategy).outcome.trades[0]
    #expect(trade.entryPrice == 100 * 1.001, "slippage against the buyer")
    let rules = TradingRules(strategy)
    #expect(trade.exitPrice == rules.fill(91, direction: -1), "and against the seller")
    let expected = rules.commission(trade.size, trade.entryPrice) + rules.commission(trade.size, trade.exitPrice)
    #expect(abs(trade.commission - expected) < 1e-12)
  }

  /// Without close_at_end, the order decided at the last bar is exposed for a live runner.
  @Test func pendingOrderAtTheLastBar() throws {
    var strategy = try Self.strategy(risk: nil)
    strategy.closeAtEnd = false
    let inputs = Self.inputs().map { PortfolioBacktester.Input(symbol: $0.symbol, bars: $0.bars.slice(0..<2)) }
    let result = try PortfolioBacktester.run(strategy, rank: strategy.rank!, top: 1, rebalance: "daily", inputs: inputs)
    #expect(result.outcome.trades.isEmpty)
    #expect(result.outcome.pendingOrder == PendingOrder(decidedAt: Self.start + Self.day, close: false, open: "long", targets: ["A"]))
  }
}
