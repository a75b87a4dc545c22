import Foundation
import Testing

@testable import QtoolCore

/// What the backtest engine tells a live paper account: the position held after the last bar,
/// its stop and target, and the entries refused while entries are suspended.
@Suite struct LiveEngineSupportTests {
  /// Ten flat bars, then a rise: `close > 100` enters on bar 10.
  func bars(count: Int = 20) -> BarSeries {
    var series = BarSeries()
    for i in 0..<count {
      let price = i < 10 ? 100.0 : 100.0 + Double(i - 9)
      series.append(timestamp: Int64(i) * 86_400_000, open: price, high: price + 0.5, low: price - 0.5, close: price, volume: 1)
    }
    return series
  }

  func strategy(closeAtEnd: Bool, risk: StrategySpec.Risk? = nil, exit: String? = nil) throws -> CompiledStrategy {
    try CompiledStrategy(
      spec(
        .init(entry: "close > 100", exit: exit, shortEntry: nil, shortExit: nil), risk: risk,
        execution: .init(fill: "next_open", units: "fractional", closeAtEnd: closeAtEnd, capital: 1_000)))
  }

  @Test func theOpenPositionIsReportedWhenTheRunHoldsOn() throws {
    let held = Backtester.run(try strategy(closeAtEnd: false, risk: .init(stopLoss: 0.1, takeProfit: 0.5, trailingStop: 0.05)), bars: bars())
    #expect(held.trades.isEmpty)
    let position = try #require(held.openPositions.first)
    #expect(position.side == "long" && position.entryBar == 11 && position.entryTime == 11 * 86_400_000 && position.entryPrice == 102)
    #expect(position.peak == 110.5, "the highest high since entry")
    // The trailing stop (peak − 5%) is tighter than the stop loss (entry − 10%).
    #expect(position.stop == 110.5 * 0.95)
    #expect(position.target == 102 * 1.5)
    #expect(held.equity.last == 1_000 + position.size * (110 - 102))

    let closed = Backtester.run(try strategy(closeAtEnd: true), bars: bars())
    #expect(closed.openPositions.isEmpty)
    #expect(closed.trades.last?.reason == .end)
  }

  @Test func levelsAreWhereExitsHappen() throws {
    let rules = TradingRules(try strategy(closeAtEnd: false, risk: .init(stopLoss: 0.1, takeProfit: 0.2, trailingStop: nil)))
    let levels = rules.levels(long: true, entryPrice: 100, peak: 100)
    #expect(levels.stop == 90 && levels.target == 120 && levels.stopReason == .stop)
    #expect(rules.exit(long: true, entryPrice: 100, peak: 100, open: 95, high: 96, low: levels.stop!)?.reason == .stop)
    #expect(rules.exit(long: true, entryPrice: 100, peak: 100, open: 95, high: 96, low: levels.stop! + 0.01) == nil)
    let short = rules.levels(long: false, entryPrice: 100, peak: 100)
    #expect(abs(short.stop! - 110) < 1e-9 && abs(short.target! - 80) < 1e-9)
  }

  /// Entries decided on suspended bars are not made, and reported; exits still act.
  @Test func suspensionsRefuseEntriesOnly() throws {
    let series = bars(count: 30)
    // Enter above 100, leave above 115 (bar 25 on): entries on bars 10…24 and 30… are decided.
    let open = try strategy(closeAtEnd: false, exit: "close > 115")
    let free = Backtester.run(open, bars: series)
    #expect(free.trades.first?.entryBar == 11)
    let suspended = Backtester.run(open, bars: series, suspensions: EntrySuspensions([0..<(13 * 86_400_000)]))
    #expect(suspended.blockedEntries.map(\.bar) == [10, 11, 12])
    #expect(suspended.blockedEntries.allSatisfy { $0.side == "long" })
    #expect(suspended.trades.first?.entryBar == 14, "the first entry decided after the suspension, filled at the next open")
    // A position held into a suspension still exits.
    let exitsInside = Backtester.run(open, bars: series, suspensions: EntrySuspensions([(20 * 86_400_000)..<Int64.max]))
    #expect(exitsInside.trades.first?.entryBar == 11)
    #expect(exitsInside.trades.first?.exitBar == 26)
    #expect(exitsInside.openPositions.isEmpty)
    #expect(exitsInside.blockedEntries.first?.bar == 26)
  }
}
