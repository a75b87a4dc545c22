import Foundation
import QtoolCore

/// Binance's public archive (`data.binance.vision`): monthly zips for finished months, daily
/// zips for the days of the current month, each checked against its `.CHECKSUM`.
public struct BinanceBulkSource: MarketSource {
  public let name = "binance-bulk"
  public let baseURL: String

  public init(baseURL: String) { self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL }

  public func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask] {
    guard BinanceSource.intervals.contains(timeframe.description), timeframe.description != "1s" else {
      throw SourceError.unsupportedTimeframe(source: name, timeframe: timeframe.description, supported: BinanceSource.intervals.filter { $0 != "1s" })
    }
    let interval = timeframe.description == "1M" ? "1mo" : timeframe.description
    let (nowYear, nowMonth, _, _) = UTCCalendar.components(now)
    let currentMonthStart = UTCCalendar.timestamp(year: nowYear, month: nowMonth, day: 1)
    let today = now / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds
    var tasks: [SourceTask] = []
    var seen = Set<String>()
    for window in windows {
      let (year, month, _, _) = UTCCalendar.components(window.lowerBound)
      var monthStart = UTCCalendar.timestamp(year: year, month: month, day: 1)
      while monthStart < window.upperBound {
        let (y, m, _, _) = UTCCalendar.components(monthStart)
        let nextMonth = Timeframe(count: 1, unit: .month).next(after: monthStart)
        let label = "\(y)-\(m < 10 ? "0" : "")\(m)"
        if monthStart < currentMonthStart {
          let url = "\(baseURL)/data/spot/monthly/klines/\(symbol)/\(interval)/\(symbol)-\(interval)-\(label).zip"
          if seen.insert(url).inserted {
            tasks.append(
              SourceTask(
                request: HTTPRequest(url: url), window: max(monthStart, window.lowerBound)..<min(nextMonth, window.upperBound),
                checksumURL: url + ".CHECKSUM", symbol: symbol))
          }
        } else {
          var day = max(monthStart, window.lowerBound / UTCCalendar.dayMilliseconds * UTCCalendar.dayMilliseconds)
          while day < min(window.upperBound, today) {
            let dayLabel = UTCCalendar.format(day)
            let url = "\(baseURL)/data/spot/daily/klines/\(symbol)/\(interval)/\(symbol)-\(interval)-\(dayLabel).zip"
            if seen.insert(url).inserted {
              let end = day + UTCCalendar.dayMilliseconds
              tasks.append(
                SourceTask(
                  request: HTTPRequest(url: url), window: max(day, window.lowerBound)..<min(end, window.upperBound), checksumURL: url + ".CHECKSUM",
                  symbol: symbol))
            }
            day += UTCCalendar.dayMilliseconds
          }
        }
        monthStart = nextMonth
      }
    }
    return tasks
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    guard ArchiveReader.isCompressedOrArchive(body.prefix(6)) else {
      throw FetchError.invalidResponse(url: task.request.url, reason: "expected a zip archive, got \(BodyFraming.describe(body))")
    }
    let entries: [ArchiveReader.Entry]
    do {
      entries = try ArchiveReader.entries(data: body, label: task.request.url)
    } catch let error as ArchiveError {
      throw FetchError.invalidResponse(url: task.request.url, reason: "not a readable zip archive (\(error)); what arrived was \(BodyFraming.describe(body))")
    }
    let files = entries.filter { $0.name.lowercased().hasSuffix(".csv") }
    guard !files.isEmpty else {
      let held = entries.isEmpty ? "nothing" : entries.map(\.name).joined(separator: ", ")
      throw FetchError.invalidResponse(url: task.request.url, reason: "the archive holds no CSV file (it holds \(held))")
    }
    var series = BarSeries()
    var lines: [Int]? = []
    var dropped: [DroppedRow] = []
    var label = task.fileName
    for entry in files {
      // Spot archives have no header; futures archives do (open_time,open,…): detect handles both.
      label = "\(task.fileName): \(entry.name)"
      let csv = try CSVBody.read(entry.data, options: CSVOptions(), file: label, url: task.request.url, mapApplies: false)
      series.append(contentsOf: csv.series)
      if let rows = csv.origin.lines, files.count == 1 { lines = rows } else { lines = nil }
      dropped += csv.dropped
    }
    return try SourceBatch.checked(
      series, origin: BarOrigin(file: label, lines: lines), task: task, timeframe: timeframe, now: now, dropped: dropped)
  }

  /// A zip is whole when it ends with its end record.
  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? { BodyFraming.zip(response.body) }
}
