import Foundation
import QtoolCore

/// Yahoo Finance's v8 chart API: seconds timestamps, parallel arrays with nulls, events.
public struct YahooSource: MarketSource {
  public let name = "yahoo"
  public let baseURL: String
  /// Store split- and dividend-adjusted prices (OHLC scaled by adjclose / close).
  public var adjusted: Bool

  static let intervals: [String: String] = [
    "1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "90m": "90m", "1d": "1d", "5d": "5d",
    "1w": "1wk", "1M": "1mo", "3M": "3mo",
  ]

  public init(baseURL: String, adjusted: Bool = false) {
    self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
    self.adjusted = adjusted
  }

  public func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask] {
    guard let interval = Self.intervals[timeframe.description] else {
      throw SourceError.unsupportedTimeframe(source: name, timeframe: timeframe.description, supported: Self.intervals.keys.sorted())
    }
    let encoded = symbol.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? symbol
    return windows.map { window in
      let url =
        "\(baseURL)/v8/finance/chart/\(encoded)?interval=\(interval)&period1=\(window.lowerBound / 1000)&period2=\((window.upperBound + 999) / 1000)&events=div%2Csplits&includeAdjustedClose=true"
      return SourceTask(request: HTTPRequest(url: url), window: window)
    }
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let chart = root["chart"] as? [String: Any] else {
      throw FetchError.invalidResponse(url: task.request.url, reason: "expected Yahoo chart JSON, got \(Fetcher.text(body).prefix(80))")
    }
    if let error = chart["error"] as? [String: Any] {
      throw FetchError.invalidResponse(url: task.request.url, reason: "Yahoo: \(error["code"] ?? "error"): \(error["description"] ?? "")")
    }
    guard let result = (chart["result"] as? [[String: Any]])?.first else { return SourceBatch(series: BarSeries()) }
    // An empty result (a weekend, a delisted day) has no timestamps at all.
    guard let stamps = result["timestamp"] as? [NSNumber], let indicators = result["indicators"] as? [String: Any],
      let quote = (indicators["quote"] as? [[String: Any]])?.first
    else { return SourceBatch(series: BarSeries()) }
    let meta = result["meta"] as? [String: Any]
    let offset = (meta?["gmtoffset"] as? NSNumber)?.int64Value ?? 0
    func column(_ name: String, _ source: [String: Any]?) -> [Double?] {
      (source?[name] as? [Any] ?? []).map { ($0 as? NSNumber)?.doubleValue }
    }
    let open = column("open", quote)
    let high = column("high", quote)
    let low = column("low", quote)
    let close = column("close", quote)
    let volume = column("volume", quote)
    let adjclose = column("adjclose", (indicators["adjclose"] as? [[String: Any]])?.first)
    let daily = timeframe.unit == .day || timeframe.unit == .week || timeframe.unit == .month
    var series = BarSeries(reservingCapacity: stamps.count)
    for (i, stamp) in stamps.enumerated() {
      guard i < close.count, let o = open[i], let h = high[i], let l = low[i], let c = close[i] else { continue }
      var ts = stamp.int64Value * 1000
      // Daily bars carry the session's open time (13:30Z or 14:30Z): key them by exchange date.
      if daily { ts = (ts + offset * 1000) / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds }
      let factor = adjusted && i < adjclose.count ? (adjclose[i].map { $0 / c } ?? 1) : 1
      series.append(
        timestamp: ts, open: o * factor, high: h * factor, low: l * factor, close: c * factor, volume: (i < volume.count ? volume[i] : nil) ?? 0)
    }
    var events: [MarketEvent] = []
    if let eventMap = result["events"] as? [String: Any] {
      for (date, value) in (eventMap["splits"] as? [String: [String: Any]]) ?? [:] {
        let when = (value["date"] as? NSNumber)?.int64Value ?? Int64(date) ?? 0
        events.append(
          MarketEvent(
            type: "split", date: UTCCalendar.format(when * 1000 / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds),
            value: value["splitRatio"] as? String ?? "\(value["numerator"] ?? "?"):\(value["denominator"] ?? "?")"))
      }
      for (date, value) in (eventMap["dividends"] as? [String: [String: Any]]) ?? [:] {
        let when = (value["date"] as? NSNumber)?.int64Value ?? Int64(date) ?? 0
        events.append(
          MarketEvent(
            type: "dividend", date: UTCCalendar.format(when * 1000 / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds),
            value: "\((value["amount"] as? NSNumber)?.doubleValue ?? 0)"))
      }
    }
    return SourceBatch(
      series: series.sortedAndDeduplicated().finalBars(in: task.window, timeframe: timeframe, now: now), events: events.sorted { $0.date < $1.date })
  }
}
