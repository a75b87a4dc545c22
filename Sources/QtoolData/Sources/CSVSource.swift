import Foundation
import QtoolCore

/// Any CSV by URL or local path (plain, .gz, .zip, .tar.gz). `{symbol}` in the location is
/// replaced by each symbol.
public struct CSVSource: MarketSource {
  public let name = "csv"
  public let location: String
  public let options: CSVOptions

  public init(location: String, options: CSVOptions) {
    self.location = location
    self.options = options
  }

  public func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask] {
    guard let lower = windows.map(\.lowerBound).min(), let upper = windows.map(\.upperBound).max() else { return [] }
    let resolved = location.replacingOccurrences(of: "{symbol}", with: symbol)
    let isURL = resolved.hasPrefix("http://") || resolved.hasPrefix("https://")
    return [
      SourceTask(request: HTTPRequest(url: isURL ? resolved : "file://" + resolved), window: lower..<upper, localPath: isURL ? nil : resolved)
    ]
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    var series = BarSeries()
    for entry in try ArchiveReader.entries(data: body, label: task.localPath ?? task.request.url) {
      let firstLine = String(decoding: entry.data.prefix { $0 != 10 }, as: UTF8.self)
      let layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: task.request.url)
      series.append(contentsOf: try CSVBarReader.read(entry.data, layout: layout, file: task.request.url).series)
    }
    return SourceBatch(series: series.sortedAndDeduplicated().finalBars(in: task.window, timeframe: timeframe, now: now))
  }
}
