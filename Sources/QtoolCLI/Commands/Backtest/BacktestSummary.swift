import QtoolCore
import QtoolEngine

/// The terminal summary of a run — what `backtest run` prints and `backtest show` shows of a
/// stored run: strategy and version, params, dataset and range, costs and trading settings,
/// key metrics, an equity sparkline, and a halt when there was one.
enum BacktestSummary {
  static func render(_ report: BacktestReport, color: Bool, footer: Bool = true) -> String {
    let m = report.metrics
    func percent(_ value: Double) -> String { DisplayFormat.percent(value) }
    func number(_ value: Double) -> String { Format.metric(value, places: 2) }
    let daily = DisplayFormat.isDaily(report.timestamps)
    func time(_ iso: String?) -> String { DisplayFormat.time(iso, daily: daily) }
    var lines: [String] = []
    let name = report.strategy + (report.strategyVersion.map { " v\($0)" } ?? "")
    lines.append(
      Terminal.bold("\(name) on \(report.dataset)", color)
        + "  \(time(report.first)) … \(time(report.last))  (\(DisplayFormat.plural(report.bars, "bar")))")
    if !report.parameters.isEmpty {
      lines.append("params: " + report.parameters.keys.sorted().map { "\($0)=\(DisplayFormat.param(report.parameters[$0]!))" }.joined(separator: " "))
    }
    for (name, value) in report.settings { lines.append("\(name): \(value)") }
    if let warmup = report.warmup { lines.append("warm-up: " + warmup.sentence(first: report.first)) }
    lines.append("equity  " + sparkline(report.equity, width: 60))
    lines.append("")
    let rows: [(String, String, String, String)] = [
      ("final equity", number(m.finalEquity), "total return", percent(m.totalReturn)),
      ("buy & hold", percent(m.buyAndHoldReturn), "CAGR", percent(m.cagr)),
      ("sharpe", number(m.sharpe), "sortino", number(m.sortino)),
      ("max drawdown", percent(m.maxDrawdown), "volatility", percent(m.volatility)),
      ("trades", "\(m.trades)", "win rate", percent(m.winRate)),
      ("profit factor", number(m.profitFactor), "exposure", percent(m.exposure)),
      ("commissions", number(m.commissions), "calmar", number(m.calmar)),
    ]
    for row in rows {
      lines.append(
        "  " + row.0.padding(toLength: 15, withPad: " ", startingAt: 0) + row.1.leftPadded(12) + "    "
          + row.2.padding(toLength: 13, withPad: " ", startingAt: 0) + row.3.leftPadded(10))
    }
    if report.contributions.count > 1 {
      lines.append("")
      lines.append("  by symbol      trades   won          pnl   contribution")
      for item in report.contributions {
        lines.append(
          "  " + item.symbol.padding(toLength: 12, withPad: " ", startingAt: 0) + "\(item.trades)".leftPadded(8) + "\(item.winning)".leftPadded(6)
            + number(item.pnl).leftPadded(13) + percent(item.contribution).leftPadded(15))
      }
    }
    if let at = report.haltedAt {
      lines.append("")
      lines.append(Terminal.bold("halted \(time(at))", color) + ": " + (report.haltReason ?? "trading stopped"))
    }
    if footer {
      lines.append("")
      lines.append("run \(report.id)  (qtool backtest show \(report.id))")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// A run's trades as a table: prices at the instrument's precision, sizes at the precision
  /// they need, times in one form per column.
  static func tradesTable(_ report: BacktestReport, bold: Bool) -> String {
    let trades = report.trades
    let sizes = DisplayFormat.column(trades.map(\.size))
    let daily = DisplayFormat.isDaily(trades.flatMap { [$0.entryTime, $0.exitTime] })
    func price(_ value: Double) -> String { DisplayFormat.fixed(value, places: report.pricePlaces) }
    return Table(
      columns: [
        .init("SYMBOL"), .init("SIDE"), .init("SIZE", .right), .init("ENTRY"), .init("PRICE", .right), .init("EXIT"), .init("PRICE", .right),
        .init("PNL", .right), .init("RETURN", .right), .init("REASON"),
      ],
      rows: trades.enumerated().map { index, trade in
        [
          trade.symbol ?? "", trade.side, sizes[index], DisplayFormat.time(trade.entryTime, daily: daily), price(trade.entryPrice),
          DisplayFormat.time(trade.exitTime, daily: daily), price(trade.exitPrice), DisplayFormat.fixed(trade.pnl, places: 2),
          DisplayFormat.percent(trade.returnPct), trade.reason.rawValue,
        ]
      }
    ).render(bold: bold)
  }

  static func sparkline(_ values: [Double], width: Int) -> String {
    guard values.count > 1, let low = values.min(), let high = values.max(), high > low else {
      return String(repeating: "▄", count: min(width, values.count))
    }
    let blocks = Array("▁▂▃▄▅▆▇█")
    let step = Double(values.count) / Double(min(width, values.count))
    return String(
      (0..<min(width, values.count)).map { i in
        let value = values[min(values.count - 1, Int(Double(i) * step + step / 2))]
        return blocks[min(blocks.count - 1, Int((value - low) / (high - low) * Double(blocks.count - 1) + 0.5))]
      })
  }
}

extension String {
  func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension Format {
  /// A metric for a table: n/a when undefined (NaN), inf when infinite (`qtool help metrics`).
  static func metric(_ value: Double, places: Int, suffix: String = "") -> String {
    if value.isNaN { return "n/a" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    return DisplayFormat.fixed(value, places: places) + suffix
  }
}
