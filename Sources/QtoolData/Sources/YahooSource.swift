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
      return SourceTask(request: HTTPRequest(url: url), window: window, symbol: symbol)
    }
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    let url = task.request.url
    guard let root = try? JSONSerialization.jsonObject(with: body) as? [String: Any], let chart = root["chart"] as? [String: Any] else {
      throw FetchError.invalidResponse(url: url, reason: "expected Yahoo chart JSON, got \(BodyFraming.describe(body))")
    }
    if let error = chart["error"] as? [String: Any] {
      throw FetchError.invalidResponse(url: url, reason: "Yahoo: \(error["code"] ?? "error"): \(error["description"] ?? "")")
    }
    guard let results = chart["result"] as? [[String: Any]], let result = results.first else {
      return SourceBatch(series: BarSeries(), emptyReason: "Yahoo answered result: \(chart["result"] is NSNull || chart["result"] == nil ? "null" : "[]")")
    }
    // An empty result (a weekend, a delisted day) has no timestamps at all.
    guard let stampValues = result["timestamp"] as? [Any], !stampValues.isEmpty else {
      return SourceBatch(series: BarSeries(), emptyReason: "Yahoo answered a result without timestamps")
    }
    guard let indicators = result["indicators"] as? [String: Any], let quote = (indicators["quote"] as? [[String: Any]])?.first else {
      throw FetchError.invalidResponse(url: url, reason: "Yahoo's result has timestamps but no indicators.quote")
    }
    let stamps = try stampValues.enumerated().map { index, value -> Int64 in
      guard let number = value as? NSNumber, !(value is NSNull), let seconds = Int64(exactly: number.doubleValue) else {
        throw FetchError.invalidResponse(url: url, reason: "Yahoo's timestamp \(index + 1) is \(value), not a number of seconds")
      }
      return seconds
    }
    // Shapes first: every array as long as the timestamps, or the answer is not indexable.
    let adjcloseArray = ((indicators["adjclose"] as? [[String: Any]])?.first?["adjclose"]) as? [Any]
    var arrays: [(String, [Any]?)] = ["open", "high", "low", "close", "volume"].map { ($0, quote[$0] as? [Any]) }
    if adjusted { arrays.append(("adjclose", adjcloseArray)) }
    if arrays.contains(where: { $0.1?.count != stamps.count }) {
      let lengths = arrays.map { "\($0.0) \($0.1.map { String($0.count) } ?? "missing")" }.joined(separator: ", ")
      throw FetchError.invalidResponse(
        url: url, reason: "Yahoo's arrays differ in length (timestamp \(stamps.count), \(lengths)); the answer is malformed")
    }
    let columns = arrays.map { $0.1! }
    let meta = result["meta"] as? [String: Any]
    let offset = (meta?["gmtoffset"] as? NSNumber)?.int64Value ?? 0
    let daily = timeframe.unit == .day || timeframe.unit == .week || timeframe.unit == .month
    var series = BarSeries(reservingCapacity: stamps.count)
    var dropped: [DroppedRow] = []
    var rows: [Int] = []
    for (i, stamp) in stamps.enumerated() {
      var ts = stamp * 1000
      // Daily bars carry the session's open time (13:30Z or 14:30Z): key them by exchange date.
      if daily { ts = (ts + offset * 1000) / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds }
      var values: [Double] = []
      var missing: String?
      for (column, (name, _)) in zip(columns, arrays) {
        let value = column[i]
        if let number = value as? NSNumber, !(value is NSNull) {
          values.append(number.doubleValue)
        } else {
          missing = value is NSNull ? "\(name) is null" : "\(name) is \(value is String ? "the string '\(value)'" : "\(value)"), not a number"
          break
        }
      }
      if let missing {
        dropped.append(DroppedRow(timestamp: ts, location: "\(url), row \(i + 1) (\(UTCCalendar.format(ts)))", reason: "\(missing); the bar was left out"))
        continue
      }
      let (o, h, l, c, v) = (values[0], values[1], values[2], values[3], values[4])
      let factor = adjusted ? values[5] / c : 1
      series.append(timestamp: ts, open: o * factor, high: h * factor, low: l * factor, close: c * factor, volume: v)
      rows.append(i + 1)
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
    return try SourceBatch.checked(
      series, origin: BarOrigin(file: url, lines: rows, textLines: false), task: task, timeframe: timeframe, now: now, dropped: dropped,
      events: events.sorted { $0.date < $1.date })
  }

  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? { BodyFraming.json(response.body) }
}
