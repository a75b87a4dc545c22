import Foundation
import QtoolCore

/// Stooq's daily/weekly/monthly CSV. Stooq answers errors with HTTP 200 and a text or HTML
/// body ("No data", "Exceeded the daily hits limit", an API-key page): never read that as data.
public struct StooqSource: MarketSource {
  public let name = "stooq"
  public let baseURL: String
  static let intervals = ["1d": "d", "1w": "w", "1M": "m"]

  public init(baseURL: String) { self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL }

  public func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask] {
    guard let interval = Self.intervals[timeframe.description] else {
      throw SourceError.unsupportedTimeframe(source: name, timeframe: timeframe.description, supported: Self.intervals.keys.sorted())
    }
    func day(_ ms: Int64) -> String {
      UTCCalendar.format(ms / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds).replacingOccurrences(of: "-", with: "")
    }
    return windows.map { window in
      let url = "\(baseURL)/q/d/l/?s=\(symbol.lowercased())&i=\(interval)&d1=\(day(window.lowerBound))&d2=\(day(window.upperBound - 1))"
      return SourceTask(request: HTTPRequest(url: url), window: window, symbol: symbol)
    }
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    guard Self.isCSV(body) else {
      let text = Fetcher.text(body)
      let lower = text.lowercased()
      if lower.contains("exceeded the daily hits limit") {
        throw FetchError.temporarilyRefused(url: task.request.url, reason: "Stooq answered '\(text.prefix(100))': its daily limit of requests is used up")
      }
      if lower == "no data" {
        // Nothing in that range (a holiday, or an unknown symbol): no bars, which the
        // download judges against what it expected.
        return SourceBatch(series: BarSeries(), emptyReason: "Stooq answered 'No data'")
      }
      let what = lower.contains("<html") || lower.contains("<!doctype") ? "an HTML page" : "'\(text.prefix(100))'"
      throw FetchError.invalidResponse(url: task.request.url, reason: "Stooq answered \(what) instead of CSV")
    }
    // Stooq's histories reach back before 1970 (indices to the 1800s).
    var options = CSVOptions()
    options.timestampRange = UTCCalendar.timestamp(year: 1800, month: 1, day: 1)..<CSVOptions.defaultTimestampRange.upperBound
    let csv = try CSVBody.read(body, options: options, file: task.request.url, url: task.request.url, mapApplies: false)
    return try SourceBatch.checked(csv.series, origin: csv.origin, task: task, timeframe: timeframe, now: now, dropped: csv.dropped)
  }

  static func isCSV(_ body: Data) -> Bool {
    let firstLine = String(decoding: body.prefix(200).prefix { $0 != 10 }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    return firstLine.hasPrefix("date,") || firstLine.hasPrefix("data,")
  }

  /// Stooq closes the connection to end a CSV (no Content-Length): a body cut short looks
  /// whole to HTTP, so it must end with a line break.
  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? {
    Self.isCSV(response.body) ? BodyFraming.lines(response.body) : nil
  }
}
