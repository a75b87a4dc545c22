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
      SourceTask(
        request: HTTPRequest(url: isURL ? resolved : "file://" + resolved), window: lower..<upper, localPath: isURL ? nil : resolved, symbol: symbol)
    ]
  }

  public func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch {
    let label = task.localPath ?? task.request.url
    var series = BarSeries()
    var dropped: [DroppedRow] = []
    var lines: [Int]? = []
    let entries = try ArchiveReader.entries(data: body, label: label)
    for entry in entries {
      let file = entries.count == 1 && entry.name == label ? label : "\(label): \(entry.name)"
      let csv = try CSVBody.read(entry.data, options: options, file: file, url: task.request.url, mapApplies: true)
      series.append(contentsOf: csv.series)
      dropped += csv.dropped
      lines = entries.count == 1 ? csv.origin.lines : nil
    }
    return try SourceBatch.checked(
      series, origin: BarOrigin(file: entries.count == 1 ? (entries[0].name == label ? label : "\(label): \(entries[0].name)") : label, lines: lines),
      task: task, timeframe: timeframe, now: now, dropped: dropped)
  }

  /// A plain CSV fetched without a Content-Length (close-delimited) must end with a line
  /// break; with one, curl has checked the length already.
  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? {
    guard response.headers["content-length"] == nil || response.headers["content-encoding"] != nil else { return nil }
    guard !ArchiveReader.isCompressedOrArchive(response.body.prefix(6)) else { return nil }
    return BodyFraming.lines(response.body)
  }
}
