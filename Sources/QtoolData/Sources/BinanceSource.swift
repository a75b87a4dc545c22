import Foundation
import QtoolCore

/// Binance spot REST: `GET /api/v3/klines`, 1,000 bars a request.
public struct BinanceSource: MarketSource {
  public let name = "binance"
  public let baseURL: String
  /// Pause when the minute's used weight reaches this (Binance allows 6,000 a minute).
  public var weightLimit = 5_400

  static let intervals = ["1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M"]

  public init(baseURL: String) { self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL }

  public func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask] {
    guard Self.intervals.contains(timeframe.description) else {
      throw SourceError.unsupportedTimeframe(source: name, timeframe: timeframe.description, supported: Self.intervals)
    }
    return windows.flatMap { pages($0, timeframe: timeframe, bars: 1000) }.map { page in
      SourceTask(request: HTTPRequest(url: url(symbol: symbol, timeframe: timeframe, window: page)), window: page, symbol: symbol)
    }
  }

  func url(symbol: String, timeframe: Timeframe, window: Range<Int64>) -> String {
    "\(baseURL)/api/v3/klines?symbol=\(symbol)&interval=\(timeframe)&startTime=\(window.lowerBound)&endTime=\(window.upperBound - 1)&limit=1000"
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    let json = try? JSONSerialization.jsonObject(with: body)
    if let error = json as? [String: Any] {
      throw FetchError.invalidResponse(url: task.request.url, reason: "Binance error \(error["code"] ?? "?"): \(error["msg"] ?? "")")
    }
    guard let rows = json as? [Any] else {
      throw FetchError.invalidResponse(url: task.request.url, reason: "expected a JSON array of klines, got \(BodyFraming.describe(body))")
    }
    var series = BarSeries(reservingCapacity: rows.count)
    var dropped: [DroppedRow] = []
    var kept: [Int] = []
    let names = ["open", "high", "low", "close", "volume"]
    for (index, item) in rows.enumerated() {
      func malformed() -> FetchError {
        let text = (item as? [Any]).map { "\($0.prefix(6))" } ?? "\(item)"
        return FetchError.invalidResponse(url: task.request.url, reason: "kline \(index + 1) is malformed: \(text.prefix(160))")
      }
      guard let row = item as? [Any], row.count >= 6, let openTime = Self.integer(row[0]) else { throw malformed() }
      // A null price or volume is a missing value, as in every other source: the bar is left
      // out and reported, never stored with a number made up for it. Junk refuses the page.
      if let missing = (1...5).first(where: { row[$0] is NSNull }) {
        dropped.append(
          DroppedRow(
            timestamp: openTime, location: "\(task.request.url), row \(index + 1) (\(UTCCalendar.format(openTime)))",
            reason: "\(names[missing - 1]) is null; the bar was left out"))
        continue
      }
      guard let open = Self.number(row[1]), let high = Self.number(row[2]), let low = Self.number(row[3]),
        let close = Self.number(row[4]), let volume = Self.number(row[5])
      else { throw malformed() }
      series.append(timestamp: openTime, open: open, high: high, low: low, close: close, volume: volume)
      kept.append(index + 1)
    }
    // The last kline may still be open: `checked` drops it until its close time has passed.
    return try SourceBatch.checked(
      series, origin: BarOrigin(file: task.request.url, lines: kept, textLines: false), task: task, timeframe: timeframe, now: now, dropped: dropped)
  }

  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? { BodyFraming.json(response.body) }

  /// Binance answers at most `limit` klines from `startTime`; a server may send fewer (a
  /// cap below 1,000). Whatever the page size, the next page starts after the last open time
  /// received, until the window's end.
  public func nextPage(after response: HTTPResponse, task: SourceTask, timeframe: Timeframe, now: Int64) -> SourceTask? {
    guard let rows = (try? JSONSerialization.jsonObject(with: response.body)) as? [Any],
      let last = rows.last as? [Any], let lastOpen = last.first.flatMap(Self.integer)
    else { return nil }
    let next = timeframe.next(after: lastOpen)
    guard lastOpen >= task.window.lowerBound, next < task.window.upperBound, timeframe.next(after: next) <= now else { return nil }
    var page = task
    page.window = next..<task.window.upperBound
    page.request = HTTPRequest(url: url(symbol: task.symbol, timeframe: timeframe, window: page.window), maxBytes: task.request.maxBytes)
    return page
  }

  public func pacing(_ response: HTTPResponse) -> Double? {
    guard let used = response.headers["x-mbx-used-weight-1m"].flatMap(Int.init), used >= weightLimit else { return nil }
    let second = Date().timeIntervalSince1970
    return 60 - second.truncatingRemainder(dividingBy: 60) + 0.5
  }

  /// A price as Binance sends it (a string) or a plain number. `"NaN"` and `"inf"` read as
  /// such, for `BarValidation` to refuse; `null` and junk are nil.
  static func number(_ value: Any) -> Double? {
    if let text = value as? String { return Double(text.trimmingCharacters(in: .whitespaces)) }
    guard let number = value as? NSNumber, !(value is NSNull) else { return nil }
    return number.doubleValue
  }

  static func integer(_ value: Any) -> Int64? {
    guard let number = value as? NSNumber, let exact = Int64(exactly: number.doubleValue) else { return nil }
    return exact
  }
}
