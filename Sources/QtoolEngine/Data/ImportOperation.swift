import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool data import`: local files of bars into one dataset.
public struct ImportRequest: Sendable {
  public var files: [String]
  public var symbol: String
  public var timeframe: Timeframe
  public var name: String?
  public var sourceName: String
  public var calendar: TradingCalendar?
  public var csv: CSVOptions

  public init(
    files: [String], symbol: String, timeframe: Timeframe, name: String? = nil, sourceName: String = "csv",
    calendar: TradingCalendar? = nil, csv: CSVOptions = CSVOptions()
  ) {
    self.files = files
    self.symbol = symbol
    self.timeframe = timeframe
    self.name = name
    self.sourceName = sourceName
    self.calendar = calendar
    self.csv = csv
  }

  /// `SYMBOL-timeframe`, e.g. `GOOG-1d`.
  public var datasetName: String { name ?? "\(symbol)-\(timeframe)" }
}

public struct ImportReport: Codable, Sendable {
  public struct File: Codable, Sendable {
    public var path: String
    public var entries: Int
    public var bars: Int
    public var skippedRows: Int
    enum CodingKeys: String, CodingKey { case path, entries, bars, skippedRows = "skipped_rows" }
  }

  public var dataset: String
  public var files: [File]
  public var barsRead: Int
  public var barsWritten: Int
  public var duplicatesInInput: Int
  public var datasetBars: Int
  public var gaps: Int
  public var first: String?
  public var last: String?
  public var seconds: Double

  enum CodingKeys: String, CodingKey {
    case dataset, files, barsRead = "bars_read", barsWritten = "bars_written", duplicatesInInput = "duplicates_in_input"
    case datasetBars = "dataset_bars", gaps, first, last, seconds
  }
}

extension DataOperations {
  /// Reads every file (plain, .gz, .zip, .tar.gz), then writes all bars in one transaction:
  /// either the whole import is stored or none of it.
  public func importFiles(_ request: ImportRequest, progress: any ProgressReporter = SilentProgress()) throws -> ImportReport {
    let started = Date()
    var combined = BarSeries()
    var fileReports: [ImportReport.File] = []
    progress.begin("reading", total: request.files.count, unit: .files)
    for (index, path) in request.files.enumerated() {
      // Each file is read as a stream (unpacked if need be) and parsed while it is read.
      var results: [CSVBarReader.Result] = []
      var current: CSVStream?
      try ArchiveReader.stream(
        path: path,
        entry: { name in
          current = CSVStream(options: request.csv, file: name == URL(fileURLWithPath: path).lastPathComponent ? path : "\(path):\(name)")
        }, chunk: { try current!.append($0) }, end: { results.append(try current!.finish()) })
      for result in results { combined.append(contentsOf: result.series) }
      fileReports.append(
        ImportReport.File(
          path: path, entries: results.count, bars: results.reduce(0) { $0 + $1.series.count }, skippedRows: results.reduce(0) { $0 + $1.skippedRows }
        ))
      progress.update(done: index + 1)
    }
    progress.finish()
    let barsRead = combined.count
    guard barsRead > 0 else { throw CSVError.empty(file: request.files.joined(separator: ", ")) }
    let clean = combined.sortedAndDeduplicated()
    let calendar = request.calendar ?? TradingCalendar.guess(source: request.sourceName, symbol: request.symbol)
    let definition = DatasetDefinition(
      name: request.datasetName, source: request.sourceName, symbol: request.symbol, timeframe: request.timeframe,
      calendar: calendar, origin: "imported")
    let written = try database.write { db -> Int in
      let id = try QtoolDatabase.findOrCreateDataset(db, definition)
      let count = try QtoolDatabase.upsertBars(db, datasetID: id, clean)
      try QtoolDatabase.refreshStatistics(db, datasetID: id)
      return count
    }
    let summary = try database.dataset(named: request.datasetName)
    return ImportReport(
      dataset: summary.name, files: fileReports, barsRead: barsRead, barsWritten: written,
      duplicatesInInput: barsRead - clean.count, datasetBars: summary.rowCount, gaps: summary.gapCount,
      first: summary.firstTs.map { UTCCalendar.format($0) }, last: summary.lastTs.map { UTCCalendar.format($0) },
      seconds: Date().timeIntervalSince(started))
  }
}
