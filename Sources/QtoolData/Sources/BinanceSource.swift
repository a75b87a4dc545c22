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
      let url =
        "\(baseURL)/api/v3/klines?symbol=\(symbol)&interval=\(timeframe)&startTime=\(page.lowerBound)&endTime=\(page.upperBound - 1)&limit=1000"
      return SourceTask(request: HTTPRequest(url: url), window: page)
    }
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    let json = try? JSONSerialization.jsonObject(with: body)
    if let error = json as? [String: Any] {
      throw FetchError.invalidResponse(url: task.request.url, reason: "Binance error \(error["code"] ?? "?"): \(error["msg"] ?? "")")
    }
    guard let rows = json as? [[Any]] else {
      throw FetchError.invalidResponse(url: task.request.url, reason: "expected a JSON array of klines, got \(Fetcher.text(body).prefix(80))")
    }
    var series = BarSeries(reservingCapacity: rows.count)
    for row in rows {
      guard row.count >= 6, let openTime = (row[0] as? NSNumber)?.int64Value,
        let open = Self.number(row[1]), let high = Self.number(row[2]), let low = Self.number(row[3]),
        let close = Self.number(row[4]), let volume = Self.number(row[5])
      else {
        throw FetchError.invalidResponse(url: task.request.url, reason: "malformed kline \(row.prefix(6))")
      }
      series.append(timestamp: openTime, open: open, high: high, low: low, close: close, volume: volume)
    }
    // The last kline may still be open: finalBars drops it until its close time has passed.
    return SourceBatch(series: series.finalBars(in: task.window, timeframe: timeframe, now: now))
  }

  public func pacing(_ response: HTTPResponse) -> Double? {
    guard let used = response.headers["x-mbx-used-weight-1m"].flatMap(Int.init), used >= weightLimit else { return nil }
    let second = Date().timeIntervalSince1970
    return 60 - second.truncatingRemainder(dividingBy: 60) + 0.5
  }

  static func number(_ value: Any) -> Double? {
    if let text = value as? String { return Double(text) }
    return (value as? NSNumber)?.doubleValue
  }
}
