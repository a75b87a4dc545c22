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
      return SourceTask(request: HTTPRequest(url: url), window: window)
    }
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    let firstLine = String(decoding: body.prefix { $0 != 10 }, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    guard firstLine.lowercased().hasPrefix("date,") || firstLine.lowercased().hasPrefix("data,") else {
      let text = Fetcher.text(body)
      let reason =
        text.isEmpty
        ? "an empty body"
        : text.lowercased().contains("<html") || text.lowercased().contains("<!doctype")
          ? "an HTML page instead of CSV" : "'\(text.prefix(100))' instead of CSV"
      throw FetchError.invalidResponse(url: task.request.url, reason: "Stooq answered \(reason)")
    }
    // Stooq's histories reach back before 1970 (indices to the 1800s).
    var options = CSVOptions()
    options.timestampRange = UTCCalendar.timestamp(year: 1800, month: 1, day: 1)..<CSVOptions.defaultTimestampRange.upperBound
    let layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: task.request.url)
    let series = try CSVBarReader.read(body, layout: layout, file: task.request.url).series
    return SourceBatch(series: series.sortedAndDeduplicated().finalBars(in: task.window, timeframe: timeframe, now: now))
  }
}
