import Foundation
import QtoolCore

/// One self-contained HTML file per run: inline SVG charts and CSS, no scripts, no network.
public enum HTMLReport {
  /// Trades rendered between two cancellation checks.
  static let checkEvery = 256

  /// The report of a run. A run can hold millions of bars and trades, so rendering checks
  /// `cancellation` between its sections and every `checkEvery` trades (Ctrl-C stops it, and
  /// nothing is written); `hooks` lets a test pause it there (`report.trades:BLOCK`).
  public static func render(_ report: BacktestReport, cancellation: CancellationToken = .never, hooks: OperationHooks = OperationHooks()) throws
    -> String
  {
    func check(_ block: Int) throws {
      try hooks.checkpoint("report.trades", block, cancellation: cancellation)
      try cancellation.check()
    }
    let daily = DisplayFormat.isDaily(report.timestamps)
    let name = report.strategy + (report.strategyVersion.map { " v\($0)" } ?? "")
    var html = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8">
      <title>\(escape(name)) on \(escape(report.dataset)) — qtool</title>
      <style>
      body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;max-width:1100px}
      h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:28px 0 8px} .muted{color:#667}
      table{border-collapse:collapse} td,th{padding:3px 8px;text-align:right;border-bottom:1px solid #e4e7ec} th{background:#f5f6f8}
      td:first-child,th:first-child{text-align:left} .metrics{columns:3} .metrics div{break-inside:avoid;display:flex;justify-content:space-between;padding:2px 10px 2px 0}
      svg{background:#fbfcfd;border:1px solid #e4e7ec} .pos{color:#137333} .neg{color:#b3261e}
      </style></head><body>
      <h1>\(escape(name)) on \(escape(report.dataset))</h1>
      <div class="muted" id="range">\(DisplayFormat.time(report.first, daily: daily)) … \(DisplayFormat.time(report.last, daily: daily)) · \(DisplayFormat.plural(report.bars, "bar")) · run \(report.id) · fingerprint \(report.fingerprint.prefix(16))</div>

      """
    if let warmup = report.warmup {
      html += "<div class=\"muted\" id=\"warmup\">warm-up: \(escape(warmup.sentence(first: report.first)))</div>\n"
    }
    html += "<table id=\"settings\">\(settingsRows(report))</table>\n"
    if let at = report.haltedAt {
      html += "<p class=\"neg\" id=\"halt\"><b>Halted \(DisplayFormat.time(at, daily: daily))</b>: \(escape(report.haltReason ?? "trading stopped"))</p>\n"
    }
    html +=
      "<h2>Equity</h2>\n"
      + lineChart(
        id: "equity-chart", timestamps: report.timestamps,
        series: [(report.equity, "#1a73e8", "strategy"), (report.benchmark, "#9aa0a6", "buy & hold")])
    try cancellation.check()
    if let closes = report.closes, closes.count == report.timestamps.count {
      html +=
        "<h2>Price and trades</h2>\n"
        + (try priceChart(report.timestamps, closes, trades: report.trades, places: report.pricePlaces, check: { try cancellation.check() }))
    }
    try cancellation.check()
    html += "<h2>Drawdown</h2>\n" + drawdownChart(report.timestamps, report.equity)
    try cancellation.check()
    html += "<h2>Metrics</h2>\n<div class=\"metrics\" id=\"metrics\">\n"
    let values = report.metrics.allValues
    for (name, _) in Metrics.definitions {
      let text = DisplayFormat.metric(name, values[name] ?? .nan)
      html += "<div><span>\(name)</span><b>\(text)</b></div>\n"
    }
    html += "</div>\n<h2>Monthly returns</h2>\n" + monthlyHeatmap(report.timestamps, report.equity)
    if report.contributions.count > 1 {
      html += "<h2>By symbol</h2>\n<table id=\"contributions\"><tr><th>symbol</th><th>trades</th><th>won</th><th>pnl</th><th>contribution</th></tr>\n"
      for item in report.contributions {
        let css = item.pnl > 0 ? "pos" : "neg"
        html +=
          "<tr><td>\(escape(item.symbol))</td><td>\(item.trades)</td><td>\(item.winning)</td><td class=\"\(css)\">\(String(format: "%.2f", item.pnl))</td><td class=\"\(css)\">\(String(format: "%.2f%%", item.contribution * 100))</td></tr>\n"
      }
      html += "</table>\n"
    }
    let sizes = DisplayFormat.column(report.trades.map(\.size))
    let tradesDaily = DisplayFormat.isDaily(report.trades.flatMap { [$0.entryTime, $0.exitTime] })
    func price(_ value: Double) -> String { DisplayFormat.fixed(value, places: report.pricePlaces) }
    html +=
      "<h2>Trades (\(report.trades.count))</h2>\n<table id=\"trades\"><tr><th>#</th><th>symbol</th><th>side</th><th>size</th><th>entry</th><th>price</th><th>exit</th><th>price</th><th>pnl</th><th>return</th><th>reason</th></tr>\n"
    for (index, trade) in report.trades.enumerated() {
      if index % checkEvery == 0 { try check(index / checkEvery) }
      let css = trade.pnl > 0 ? "pos" : "neg"
      html +=
        "<tr><td>\(index + 1)</td><td>\(escape(trade.symbol ?? ""))</td><td>\(trade.side)</td><td>\(sizes[index])</td><td>\(DisplayFormat.time(trade.entryTime, daily: tradesDaily))</td><td>\(price(trade.entryPrice))</td><td>\(DisplayFormat.time(trade.exitTime, daily: tradesDaily))</td><td>\(price(trade.exitPrice))</td><td class=\"\(css)\">\(String(format: "%.2f", trade.pnl))</td><td class=\"\(css)\">\(String(format: "%.2f%%", trade.returnPct * 100))</td><td>\(trade.reason.rawValue)</td></tr>\n"
    }
    html += "</table>\n<p class=\"muted\">Generated by qtool \(VersionInfo.version).</p>\n</body></html>\n"
    return html
  }

  /// Several runs' equity curves overlaid, for `backtest compare --report`.
  public static func renderComparison(_ report: ComparisonReport, curves: [(timestamps: [Int64], equity: [Double])]) -> String {
    let colors = ["#1a73e8", "#e8710a", "#188038", "#a142f4", "#d93025", "#12b5cb"]
    // Curves on the union of timestamps, each carried forward where it has no point.
    let timestamps = Array(Set(curves.flatMap(\.timestamps))).sorted()
    let series = curves.enumerated().map { index, curve -> ([Double], String, String) in
      var lookup: [Int64: Double] = [:]
      for (t, e) in zip(curve.timestamps, curve.equity) { lookup[t] = e }
      var last = Double.nan
      let aligned = timestamps.map { t -> Double in
        if let value = lookup[t] { last = value }
        return last
      }
      return (aligned, colors[index % colors.count], report.runs[index].id)
    }
    var html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>qtool compare</title>"
    html +=
      "<style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;max-width:1100px}table{border-collapse:collapse}td,th{padding:3px 8px;text-align:right;border-bottom:1px solid #e4e7ec}td:first-child,th:first-child{text-align:left}svg{background:#fbfcfd;border:1px solid #e4e7ec}</style></head><body>\n"
    html +=
      "<h1>Comparison of \(report.runs.count) runs</h1>\n<h2>Equity</h2>\n" + lineChart(id: "equity-overlay", timestamps: timestamps, series: series)
    html +=
      "<h2>Metrics</h2>\n<table id=\"metrics\"><tr><th>metric</th>"
      + report.runs.map { "<th>\(escape($0.id))<br>\(escape($0.strategy))</th>" }.joined() + "</tr>\n"
    html +=
      "<tr id=\"params\"><td>params</td>"
      + report.runs.map { run in
        "<td>\(escape(run.params.keys.sorted().map { "\($0)=\(DisplayFormat.param(run.params[$0]!))" }.joined(separator: " ")))</td>"
      }.joined() + "</tr>\n"
    for (name, _) in Metrics.definitions {
      html += "<tr><td>\(name)</td>" + report.runs.map { run in "<td>\(DisplayFormat.metric(name, run.metrics[name]))</td>" }.joined() + "</tr>\n"
    }
    html +=
      "</table>\n<h2>Correlation of per-bar returns</h2>\n<table id=\"correlation\"><tr><th></th>"
      + report.runs.map { "<th>\(escape($0.id))</th>" }.joined() + "</tr>\n"
    for (index, row) in report.correlation.enumerated() {
      html +=
        "<tr><td>\(escape(report.runs[index].id))</td>" + row.map { "<td>\($0.isFinite ? String(format: "%.3f", $0) : "n/a")</td>" }.joined()
        + "</tr>\n"
    }
    return html + "</table>\n</body></html>\n"
  }

  static func lineChart(id: String, timestamps: [Int64], series: [([Double], String, String)], height: Double = 260) -> String {
    let width = 1000.0
    let all = series.flatMap(\.0).filter(\.isFinite)
    guard let low = all.min(), let high = all.max(), timestamps.count > 1 else { return "<p>not enough data</p>" }
    let span = max(high - low, 1e-9)
    func point(_ i: Int, _ value: Double) -> String {
      let x = Double(i) / Double(timestamps.count - 1) * (width - 60) + 50
      let y = height - 20 - (value - low) / span * (height - 40)
      return String(format: "%.1f,%.1f", x, y)
    }
    var svg = "<svg id=\"\(id)\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" role=\"img\">\n"
    for tick in 0...4 {
      let value = low + span * Double(tick) / 4
      let y = height - 20 - Double(tick) / 4 * (height - 40)
      svg += String(
        format:
          "<line x1=\"50\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e7ec\"/><text x=\"4\" y=\"%.1f\" font-size=\"11\" fill=\"#667\">%.0f</text>\n",
        width - 10, y, y, y + 4, value)
    }
    let step = max(1, timestamps.count / 1500)
    for (values, color, label) in series {
      let points = stride(from: 0, to: values.count, by: step).filter { values[$0].isFinite }.map { point($0, values[$0]) }.joined(separator: " ")
      svg +=
        "<polyline class=\"series\" data-label=\"\(escape(label))\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
    }
    svg += "<text x=\"50\" y=\"\(Int(height) - 4)\" font-size=\"11\" fill=\"#667\">\(UTCCalendar.format(timestamps.first!))</text>"
    svg += "<text x=\"\(Int(width) - 90)\" y=\"\(Int(height) - 4)\" font-size=\"11\" fill=\"#667\">\(UTCCalendar.format(timestamps.last!))</text>\n"
    for (index, (_, color, label)) in series.enumerated() {
      svg += "<text x=\"\(60 + index * 110)\" y=\"14\" font-size=\"12\" fill=\"\(color)\">■ \(escape(label))</text>"
    }
    return svg + "\n</svg>\n"
  }

  static func drawdownChart(_ timestamps: [Int64], _ equity: [Double]) -> String {
    var peak = -Double.infinity
    let drawdown = equity.map { value -> Double in
      peak = max(peak, value)
      return (value / peak - 1) * 100
    }
    return lineChart(id: "drawdown-chart", timestamps: timestamps, series: [(drawdown, "#b3261e", "drawdown %")], height: 160)
  }

  static func monthlyHeatmap(_ timestamps: [Int64], _ equity: [Double]) -> String {
    var returns: [Int: Double] = [:]
    for month in ResultSeries.monthlyReturns(timestamps, equity) {
      let parts = month.month.split(separator: "-").compactMap { Int($0) }
      returns[parts[0] * 12 + parts[1] - 1] = month.value
    }
    let order = returns.keys.sorted()
    let years = Set(order.map { $0 / 12 }).sorted()
    var html =
      "<table id=\"monthly\"><tr><th>year</th>"
      + ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].map { "<th>\($0)</th>" }.joined() + "</tr>\n"
    for year in years {
      html += "<tr><td>\(year)</td>"
      for month in 0..<12 {
        guard let value = returns[year * 12 + month] else {
          html += "<td></td>"
          continue
        }
        let strength = min(1, abs(value) / 0.1)
        let color =
          value >= 0
          ? "rgba(19,115,51,\(String(format: "%.2f", 0.15 + 0.6 * strength)))" : "rgba(179,38,30,\(String(format: "%.2f", 0.15 + 0.6 * strength)))"
        html += "<td style=\"background:\(color)\">\(String(format: "%.1f", value * 100))</td>"
      }
      html += "</tr>\n"
    }
    return html + "</table>\n"
  }

  /// The params and the trading settings, a row each: what tells two runs apart.
  static func settingsRows(_ report: BacktestReport) -> String {
    var rows: [(String, String)] = []
    if !report.parameters.isEmpty {
      rows.append(("params", report.parameters.keys.sorted().map { "\($0)=\(DisplayFormat.param(report.parameters[$0]!))" }.joined(separator: " ")))
    }
    rows += report.settings.map { ($0.name, $0.value) }
    return rows.map { "<tr><th>\(escape($0.0))</th><td style=\"text-align:left\">\(escape($0.1))</td></tr>" }.joined()
  }

  /// The close with each trade's entry (▲ long, ▼ short) and exit (●, green for a gain, red
  /// for a loss) at its fill price; log-scaled when prices span more than a factor of 4, with a
  /// date tick per year (or per month for shorter runs).
  static func priceChart(
    _ timestamps: [Int64], _ closes: [Double], trades: [Trade], places: Int = 2, check: () throws -> Void = {}
  ) throws -> String {
    let (width, height) = (1000.0, 320.0)
    let prices = closes + trades.flatMap { [$0.entryPrice, $0.exitPrice] }
    guard timestamps.count > 1, let low = prices.filter({ $0.isFinite && $0 > 0 }).min(), let high = prices.filter(\.isFinite).max() else {
      return "<p>not enough data</p>"
    }
    let logScale = high / low > 4
    func scaled(_ value: Double) -> Double { logScale ? log(max(value, low)) : value }
    let (bottom, top) = (scaled(low), scaled(high))
    let span = max(top - bottom, 1e-12)
    func x(_ index: Int) -> Double { Double(index) / Double(timestamps.count - 1) * (width - 70) + 60 }
    func y(_ value: Double) -> Double { height - 24 - (scaled(value) - bottom) / span * (height - 44) }
    func index(of time: Int64) -> Int {
      var (lowIndex, highIndex) = (0, timestamps.count - 1)
      while lowIndex < highIndex {
        let middle = (lowIndex + highIndex) / 2
        if timestamps[middle] < time { lowIndex = middle + 1 } else { highIndex = middle }
      }
      return lowIndex
    }
    var svg = "<svg id=\"price-chart\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"100%\" role=\"img\" data-scale=\"\(logScale ? "log" : "linear")\">\n"
    for tick in 0...4 {
      let value = logScale ? exp(bottom + span * Double(tick) / 4) : low + (high - low) * Double(tick) / 4
      let ty = y(value)
      svg += String(format: "<line x1=\"60\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e7ec\"/>", width - 10, ty, ty)
      svg += String(format: "<text x=\"4\" y=\"%.1f\" font-size=\"11\" fill=\"#667\">", ty + 4) + Self.axisNumber(value) + "</text>"
    }
    // Date ticks: each year's first bar, or each month's when the run is shorter than two years.
    let yearly = timestamps.last! - timestamps.first! > 2 * 365 * 86_400_000
    var lastLabel = ""
    var lastX = -100.0
    for (i, time) in timestamps.enumerated() {
      if i % (checkEvery * 64) == 0 { try check() }
      let date = UTCCalendar.format(time)
      let label = yearly ? String(date.prefix(4)) : String(date.prefix(7))
      guard label != lastLabel else { continue }
      lastLabel = label
      let tx = x(i)
      guard tx - lastX > 48 else { continue }
      lastX = tx
      svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"20\" y2=\"%.0f\" stroke=\"#f0f1f4\"/>", tx, tx, height - 24)
      svg += String(format: "<text x=\"%.1f\" y=\"%.0f\" font-size=\"11\" fill=\"#667\">%@</text>", tx - 12, height - 8, label)
    }
    let path = closes.enumerated().filter { $0.element.isFinite }.map { String(format: "%.1f,%.1f", x($0.offset), y($0.element)) }
    svg += "<polyline fill=\"none\" stroke=\"#1d2430\" stroke-width=\"1\" points=\"\(path.joined(separator: " "))\"/>\n"
    try check()
    for (number, trade) in trades.enumerated() {
      if number % checkEvery == 0 { try check() }
      let (ex, ey) = (x(index(of: trade.entryTime)), y(trade.entryPrice))
      let long = trade.side != "short"
      let triangle =
        long
        ? String(format: "%.1f,%.1f %.1f,%.1f %.1f,%.1f", ex, ey - 6, ex - 5, ey + 4, ex + 5, ey + 4)
        : String(format: "%.1f,%.1f %.1f,%.1f %.1f,%.1f", ex, ey + 6, ex - 5, ey - 4, ex + 5, ey - 4)
      svg += "<polygon class=\"entry\" points=\"\(triangle)\" fill=\"\(long ? "#1a73e8" : "#a142f4")\"><title>trade \(number + 1): \(escape(trade.side)) entry \(UTCCalendar.format(trade.entryTime)) at \(DisplayFormat.fixed(trade.entryPrice, places: places))</title></polygon>"
      let (xx, xy) = (x(index(of: trade.exitTime)), y(trade.exitPrice))
      svg += String(format: "<circle class=\"exit\" cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%@\">", xx, xy, trade.pnl > 0 ? "#137333" : "#b3261e")
      svg += "<title>trade \(number + 1): exit \(UTCCalendar.format(trade.exitTime)) at \(DisplayFormat.fixed(trade.exitPrice, places: places)) (\(trade.reason.rawValue))</title></circle>\n"
    }
    svg += "<text x=\"64\" y=\"14\" font-size=\"12\" fill=\"#667\">close\(logScale ? " (log scale)" : "") · ▲ long entry · ▼ short entry · ● exit</text>"
    return svg + "\n</svg>\n"
  }

  /// A price on an axis: no scientific notation, fewer decimals for larger prices.
  static func axisNumber(_ value: Double) -> String {
    let magnitude = abs(value)
    // Three significant digits below 1: 0.000123, never 1.23e-04.
    let places = magnitude >= 1000 ? 0 : magnitude >= 1 || magnitude == 0 ? 2 : min(12, 2 - Int(log10(magnitude).rounded(.down)))
    return DisplayFormat.fixed(value, places: places)
  }

  /// `2024-01-31` for a midnight time, the full time otherwise.
  static func day(_ iso: String) -> String { iso.hasSuffix("T00:00:00Z") ? String(iso.dropLast(10)) : iso }

  /// A stored grid: its best rows, and a heatmap of the ranked metric over its first two params
  /// (with more params, each cell shows the best over the others).
  public static func renderGrid(_ rows: GridRows, all: GridRows, cancellation: CancellationToken = .never) throws -> String {
    let grid = rows.grid
    let metric = rows.sort
    func number(_ value: Double?, count: Bool = false) -> String {
      guard let value, !value.isNaN else { return "n/a" }
      if value.isInfinite { return value > 0 ? "inf" : "-inf" }
      // + 0.0 so a drawdown that rounds to zero prints 0.000, not -0.000.
      return String(format: count || abs(value) >= 100 ? "%.0f" : "%.3f", value + 0.0)
    }
    var html = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>grid \(escape(grid.id)) — qtool</title>
      <style>body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2430;max-width:1100px}h1{font-size:20px;margin:0 0 4px}
      h2{font-size:16px;margin:28px 0 8px}.muted{color:#667}table{border-collapse:collapse}td,th{padding:3px 8px;text-align:right;border-bottom:1px solid #e4e7ec}
      th{background:#f5f6f8}.heat td{border:1px solid #fff;min-width:34px;font-size:11px}</style></head><body>
      <h1>grid \(escape(grid.id)): \(escape(grid.strategy)) on \(escape(grid.dataset))</h1>
      <div class="muted">\(grid.combinations) combinations · ranked by \(escape(metric)) · \(day(grid.createdAt))</div>

      """
    let names = grid.axes.map(\.name)
    if names.count >= 2 {
      let (x, y) = (names[0], names[1])
      var best: [String: Double] = [:]
      let lower = BacktestOperations.lowerIsBetter.contains(metric)
      for (index, row) in all.rows.enumerated() {
        if index % (checkEvery * 16) == 0 { try cancellation.check() }
        guard let a = row.params[x], let b = row.params[y], let value = row.metrics[metric] ?? nil, !value.isNaN else { continue }
        let key = "\(a)|\(b)"
        if let current = best[key], lower ? current <= value : current >= value { continue }
        best[key] = value
      }
      let xs = grid.axes[0].values
      let ys = grid.axes[1].values
      let finite = best.values.filter(\.isFinite)
      let (low, high) = (finite.min() ?? 0, finite.max() ?? 1)
      html += "<h2>\(escape(metric)) by \(escape(x)) (across) and \(escape(y)) (down)</h2>\n<table class=\"heat\"><tr><th>\(escape(y)) \\ \(escape(x))</th>"
      for a in xs { html += "<th>\(DisplayFormat.param(a))</th>" }
      html += "</tr>\n"
      for b in ys {
        html += "<tr><th>\(DisplayFormat.param(b))</th>"
        for a in xs {
          guard let value = best["\(a)|\(b)"] else {
            html += "<td></td>"
            continue
          }
          var share = value.isInfinite ? (value > 0 ? 1 : 0) : high > low ? (value - low) / (high - low) : 0.5
          if lower { share = 1 - share }
          let hue = Int(share * 120)  // red (worst) to green (best)
          html += "<td style=\"background:hsl(\(hue),60%,80%)\" title=\"\(escape(x))=\(DisplayFormat.param(a)) \(escape(y))=\(DisplayFormat.param(b))\">\(number(value))</td>"
        }
        html += "</tr>\n"
      }
      html += "</table>\n"
    }
    html += "<h2>Rows</h2>\n<table><tr><th>row</th>" + names.map { "<th>\(escape($0))</th>" }.joined()
    let shown = [metric] + ["sharpe", "total_return", "max_drawdown", "trades"].filter { $0 != metric }
    html += shown.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
    for (index, row) in rows.rows.enumerated() {
      if index % checkEvery == 0 { try cancellation.check() }
      html += "<tr><td>\(row.row)</td>" + names.map { "<td>\(DisplayFormat.param(row.params[$0] ?? .nan))</td>" }.joined()
      html += shown.map { "<td>\(number(row.metrics[$0] ?? nil, count: Metrics.isCount($0)))</td>" }.joined() + "</tr>\n"
    }
    return html + "</table>\n</body></html>\n"
  }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
      .replacingOccurrences(of: "\"", with: "&quot;")
  }
}
