import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// The market-data operations: one function per thing a user can do, shared by the CLI and
/// the server.
public struct DataOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  public func list() throws -> [DatasetSummary] { try database.datasets() }

  /// `data verify`: every dataset, or the one named.
  public func verify(name: String?) throws -> [DatasetVerification] {
    let targets = try name.map { [try database.dataset(named: $0)] } ?? database.datasets()
    return try targets.map { dataset in
      let bars = try database.bars(datasetID: dataset.id)
      let report = DatasetVerifier.verify(
        bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar, allowNonPositive: dataset.allowsNonPositive)
      var verification = DatasetVerification(dataset: dataset.name, calendar: dataset.calendar, timeframe: dataset.timeframe, report: report)
      verification.refetch = Self.refetchHints(dataset, months: report.refetchMonths(timeframe: dataset.parsedTimeframe))
      return verification
    }
  }

  /// One hint per run of consecutive months with problems: the download that fetches them
  /// again and reports what it replaced (for datasets from a source qtool downloads from).
  static func refetchHints(_ dataset: DatasetSummary, months: [String]) -> [DatasetVerification.Refetch] {
    func start(_ month: String) -> Int64? { AcceptedPeriod.parse(month)?.lowerBound }
    var runs: [(first: String, last: String)] = []
    for month in months {
      if let last = runs.last, let end = AcceptedPeriod.parse(last.last)?.upperBound, start(month) == end {
        runs[runs.count - 1].last = month
      } else {
        runs.append((month, month))
      }
    }
    let downloadable = SourceFactory.names.contains(dataset.source) && dataset.source != "csv"
    return runs.compactMap { run in
      guard let from = start(run.first), let to = AcceptedPeriod.parse(run.last)?.upperBound else { return nil }
      let command =
        downloadable
        ? "qtool data download --source \(dataset.source) --symbols \(dataset.symbol) -t \(dataset.timeframe) --from \(UTCCalendar.format(from)) --to \(UTCCalendar.format(to)) --full"
        : nil
      return DatasetVerification.Refetch(months: run.first == run.last ? run.first : "\(run.first)..\(run.last)", command: command)
    }
  }

  /// Deletes a dataset, holding its lease so no writer is halfway through it.
  public func delete(name: String, wait: Bool = false) throws -> DatasetSummary {
    let dataset = try database.dataset(named: name)
    let lease = try context.leases.acquire(
      LeaseManager.datasetKey(dataset.name), holder: context.holder("delete"), wait: wait, cancellation: context.cancellation,
      clock: context.clock)
    defer { lease.release() }
    try database.deleteDataset(id: dataset.id)
    return dataset
  }

  /// `data info`: the catalog entry, per-column statistics, sample rows and the content hash.
  public func info(name: String, sampleRows: Int = 5) throws -> DatasetInfo {
    var dataset = try database.dataset(named: name)
    let bars = try database.bars(datasetID: dataset.id)
    if dataset.contentHash == nil {
      let hash = ContentHash.of(bars)
      try? database.setContentHash(datasetID: dataset.id, hash)  // a cache: a read-only store goes without
      dataset.contentHash = hash
    }
    let columns: [(String, [Double])] = [
      ("open", bars.open), ("high", bars.high), ("low", bars.low), ("close", bars.close), ("volume", bars.volume),
    ]
    let statistics = columns.map { ColumnStatistics(name: $0.0, values: $0.1) }
    let head = Array(0..<min(sampleRows, bars.count))
    let tail = Array(max(head.count, bars.count - sampleRows)..<bars.count)
    let stored = try database.columns(datasetID: dataset.id)
    let sample = (head + tail).map { SampleRow(bars, $0, features: stored.map(\.name)) }
    let extra = stored.map { ColumnStatistics(name: $0.name, values: $0.values) }
    return DatasetInfo(dataset: dataset, columns: statistics + extra, sample: sample)
  }

  /// Writes the bars of `name` in `[from, to)` as CSV or JSON lines, chunk by chunk.
  public func export(name: String, format: ExportFormat, from: Int64?, to: Int64?, write: (String) throws -> Void) throws -> Int {
    try OperationError.checkRange(from: from, to: to)
    let dataset = try database.dataset(named: name)
    let bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
    // Feature columns follow the prices, in the order they were added; a value not yet
    // defined (an indicator's warm-up) is an empty CSV field and a JSON null.
    let features = try database.columns(datasetID: dataset.id).map(\.name).compactMap { name in bars.columns[name].map { (name, $0) } }
    let jsonKeys = try features.map { String(decoding: try JSONEncoder().encode($0.0), as: UTF8.self) }
    var chunk = ""
    chunk.reserveCapacity(1 << 16)
    if format == .csv { chunk += "timestamp,open,high,low,close,volume" + features.map { ",\($0.0)" }.joined() + "\n" }
    for i in 0..<bars.count {
      let time = UTCCalendar.format(bars.timestamps[i], alwaysTime: true)
      switch format {
      case .csv:
        chunk += "\(time),\(bars.open[i]),\(bars.high[i]),\(bars.low[i]),\(bars.close[i]),\(bars.volume[i])"
        for (_, values) in features { chunk += values[i].isFinite ? ",\(values[i])" : "," }
        chunk += "\n"
      case .jsonl:
        // JSON has no inf or NaN: such values are null (`qtool help json`).
        func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }
        chunk +=
          "{\"time\":\"\(time)\",\"open\":\(number(bars.open[i])),\"high\":\(number(bars.high[i])),\"low\":\(number(bars.low[i])),\"close\":\(number(bars.close[i])),\"volume\":\(number(bars.volume[i]))"
        for (key, (_, values)) in zip(jsonKeys, features) { chunk += ",\(key):\(number(values[i]))" }
        chunk += "}\n"
      }
      if chunk.utf8.count > 60_000 {
        // Ctrl-C stops a long export between chunks; the file being written is abandoned.
        try context.cancellation.check()
        try write(chunk)
        chunk.removeAll(keepingCapacity: true)
      }
    }
    if !chunk.isEmpty { try write(chunk) }
    return bars.count
  }
}

public enum ExportFormat: String, Sendable, CaseIterable { case csv, jsonl }

public struct DatasetVerification: Codable, Sendable {
  public var dataset: String
  public var calendar: String
  public var timeframe: String
  public var report: VerifyReport
  /// The months holding problems, with the download that fetches them again.
  public var refetch: [Refetch] = []

  public struct Refetch: Codable, Sendable, Equatable {
    /// `2024-03` or `2024-03..2024-05`.
    public var months: String
    /// nil for datasets not from a download source.
    public var command: String?
  }

  enum CodingKeys: String, CodingKey { case dataset, calendar, timeframe, ok, bars, problems, warnings, refetch }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(dataset, forKey: .dataset)
    try container.encode(calendar, forKey: .calendar)
    try container.encode(timeframe, forKey: .timeframe)
    try container.encode(report.ok, forKey: .ok)
    try container.encode(report.bars, forKey: .bars)
    try container.encode(report.problems, forKey: .problems)
    try container.encode(report.warnings, forKey: .warnings)
    try container.encode(refetch, forKey: .refetch)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    dataset = try container.decode(String.self, forKey: .dataset)
    calendar = try container.decode(String.self, forKey: .calendar)
    timeframe = try container.decode(String.self, forKey: .timeframe)
    report = VerifyReport(
      bars: try container.decode(Int.self, forKey: .bars), problems: try container.decode([VerifyFinding].self, forKey: .problems),
      warnings: try container.decode([VerifyFinding].self, forKey: .warnings))
    refetch = try container.decodeIfPresent([Refetch].self, forKey: .refetch) ?? []
  }

  public init(dataset: String, calendar: String, timeframe: String, report: VerifyReport) {
    self.dataset = dataset
    self.calendar = calendar
    self.timeframe = timeframe
    self.report = report
  }
}

public struct ColumnStatistics: Codable, Sendable {
  public var name: String
  public var count: Int
  public var missing: Int
  public var min: Double?
  public var max: Double?
  public var mean: Double?
  public var std: Double?

  init(name: String, values: [Double]) {
    self.name = name
    var count = 0
    var sum = 0.0
    var low = Double.infinity
    var high = -Double.infinity
    for value in values where value.isFinite {
      count += 1
      sum += value
      low = Swift.min(low, value)
      high = Swift.max(high, value)
    }
    self.count = count
    missing = values.count - count
    guard count > 0 else { return }
    let mean = sum / Double(count)
    var squares = 0.0
    for value in values where value.isFinite { squares += (value - mean) * (value - mean) }
    self.min = low
    self.max = high
    self.mean = mean
    std = count > 1 ? (squares / Double(count - 1)).squareRoot() : 0
  }
}

public struct SampleRow: Codable, Sendable {
  public var time: String
  public var open: Double
  public var high: Double
  public var low: Double
  public var close: Double
  public var volume: Double
  /// The dataset's feature columns on this bar, in the order they were added (nil: not yet
  /// defined, as in an indicator's warm-up).
  public var features: [Feature]?

  public struct Feature: Codable, Sendable {
    public var name: String
    public var value: Double?

    enum CodingKeys: String, CodingKey { case name, value }

    /// An undefined value is written as null, not left out (`qtool help json`).
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(name, forKey: .name)
      try container.encode(value, forKey: .value)
    }
  }

  init(_ bars: BarSeries, _ i: Int, features names: [String] = []) {
    time = UTCCalendar.format(bars.timestamps[i], alwaysTime: true)
    open = bars.open[i]
    high = bars.high[i]
    low = bars.low[i]
    close = bars.close[i]
    volume = bars.volume[i]
    let values = names.compactMap { name in bars.columns[name].map { Feature(name: name, value: $0[i].isFinite ? $0[i] : nil) } }
    features = values.isEmpty ? nil : values
  }
}

public struct DatasetInfo: Codable, Sendable {
  public var dataset: DatasetSummary
  public var columns: [ColumnStatistics]
  public var sample: [SampleRow]
}
