import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool data import`: local files of bars into one dataset.
public struct ImportRequest: Codable, Sendable, Equatable {
  /// Local paths: only the CLI imports files (the server takes uploads).
  public var files: [String]
  public var symbol: String
  public var timeframe: Timeframe
  public var name: String?
  public var sourceName: String
  public var calendar: TradingCalendar?
  public var csv: CSVOptions
  /// Wait for another writer of the dataset instead of failing.
  public var wait: Bool
  /// Store the bars although their spacing does not fit `timeframe`.
  public var forceTimeframe: Bool
  /// Accept zero and negative prices (spreads, some futures); recorded in the dataset.
  public var allowNonPositive: Bool
  /// What messages and the report call each file, when not its path: `standard input` for the
  /// temporary file the CLI keeps stdin in, an upload's name. Never a private temporary path.
  public var displayNames: [String]?

  public init(
    files: [String], symbol: String, timeframe: Timeframe, name: String? = nil, sourceName: String = "csv",
    calendar: TradingCalendar? = nil, csv: CSVOptions = CSVOptions(), wait: Bool = false, forceTimeframe: Bool = false,
    allowNonPositive: Bool = false, displayNames: [String]? = nil
  ) {
    self.displayNames = displayNames
    self.forceTimeframe = forceTimeframe
    self.allowNonPositive = allowNonPositive
    self.files = files
    self.symbol = symbol
    self.timeframe = timeframe
    self.name = name
    self.sourceName = sourceName
    self.calendar = calendar
    self.csv = csv
    self.wait = wait
  }

  enum CodingKeys: String, CodingKey {
    case files, symbol, timeframe, name, sourceName = "source", calendar, csv, wait, forceTimeframe = "force_timeframe"
    case allowNonPositive = "allow_nonpositive", displayNames = "display_names"
  }

  /// The files as messages name them (see `displayNames`).
  var names: [String] { displayNames.map { $0.count == files.count ? $0 : files } ?? files }

  /// `SYMBOL-timeframe`, e.g. `GOOG-1d`.
  public var datasetName: String { name ?? "\(symbol)-\(timeframe)" }
}

public struct ImportReport: Encodable, Sendable {
  public struct File: Codable, Sendable {
    public var path: String
    public var entries: Int
    public var bars: Int
    public var skippedRows: Int
    enum CodingKeys: String, CodingKey { case path, entries, bars, skippedRows = "skipped_rows" }
  }

  public var dataset: String
  public var jobID: String?
  public var files: [File]
  public var barsRead: Int
  public var barsWritten: Int
  public var duplicatesInInput: Int
  /// Bars at timestamps the dataset did not have, and stored bars given other values.
  public var barsAdded: Int
  public var barsReplaced: Int
  public var datasetBars: Int
  public var gaps: Int
  public var first: String?
  public var last: String?
  public var seconds: Double

  enum CodingKeys: String, CodingKey {
    case dataset, jobID = "job_id", files, barsRead = "rows_read", duplicatesInInput = "duplicates_in_input"
    case barsAdded = "bars_added", barsReplaced = "bars_replaced", datasetBars = "bars", gaps, first, last, seconds
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(dataset, forKey: .dataset)
    try container.encode(jobID, forKey: .jobID)
    try container.encode(files, forKey: .files)
    try container.encode(barsRead, forKey: .barsRead)
    try container.encode(duplicatesInInput, forKey: .duplicatesInInput)
    try container.encode(barsAdded, forKey: .barsAdded)
    try container.encode(barsReplaced, forKey: .barsReplaced)
    try container.encode(datasetBars, forKey: .datasetBars)
    try container.encode(gaps, forKey: .gaps)
    try container.encode(first, forKey: .first)
    try container.encode(last, forKey: .last)
    try container.encode(seconds, forKey: .seconds)
  }
}

extension DataOperations {
  /// Reads every file (plain, .gz, .zip, .tar.gz), then writes all bars in one transaction —
  /// either the whole import is stored or none of it — holding the dataset's lease. A job.
  public func importFiles(_ request: ImportRequest) throws -> ImportReport {
    try JobRunner.run(.import, request: request, context: context, link: { ["dataset": .string($0.dataset)] }) { context in
      try DataOperations(context).importNow(request)
    }
  }

  func importNow(_ request: ImportRequest) throws -> ImportReport {
    try Identifier.check(request.symbol, as: .symbol)
    try Identifier.check(request.datasetName, as: .dataset)
    // The source name is stored with the dataset and shown in listings: a name like the others.
    try Identifier.check(request.sourceName, as: .source)
    let started = context.clock.now()
    let (cancellation, progress, hooks) = (context.cancellation, context.progress, context.hooks)
    let lease = try context.leases.acquire(
      LeaseManager.datasetKey(request.datasetName), holder: context.holder("import"), wait: request.wait, cancellation: cancellation,
      clock: context.clock)
    defer { lease.release() }
    if let existing = try? database.dataset(named: request.datasetName), existing.origin == "derived" {
      // Its bars are what its pipeline made of its parent: imported ones would make its lineage false.
      throw OperationError.invalidInput(
        "\(existing.name) is derived from \(existing.parentName ?? "another dataset") by preprocessing; importing into it would make its lineage untrue",
        code: "dataset_derived", details: ["dataset": .string(existing.name)],
        hint: "import into another dataset with {name}, or preprocess its parent again")
    }
    var combined = BarSeries()
    var fileReports: [ImportReport.File] = []
    progress.begin("reading", total: request.files.count, unit: .files)
    for (index, (path, shown)) in zip(request.files, request.names).enumerated() {
      // Each file is read as a stream (unpacked if need be) and parsed while it is read.
      var results: [CSVBarReader.Result] = []
      var current: CSVStream?
      var pieces = 0
      try ArchiveReader.stream(
        path: path,
        entry: { name in
          current = CSVStream(options: request.csv, file: name == URL(fileURLWithPath: path).lastPathComponent ? shown : "\(shown):\(name)")
          current!.cancellation = cancellation
        },
        chunk: { piece in
          try cancellation.check()
          try hooks.checkpoint("import.read", pieces, cancellation: cancellation)
          pieces += 1
          try current!.append(piece)
        }, end: { results.append(try current!.finish()) })
      try cancellation.check()
      let calendar = request.calendar ?? TradingCalendar.guess(source: request.sourceName, symbol: request.symbol)
      for (entry, result) in results.enumerated() {
        // The rules every way of bringing bars in follows (downloads too): nothing impossible is stored.
        let label = results.count == 1 ? shown : "\(shown) (file \(entry + 1))"
        // (Open times are checked once dated bars have been moved to their dates, below.)
        if let problem = BarValidation.check(
          result.series, timeframe: request.timeframe, calendar: calendar, origin: BarOrigin(file: label),
          allowNonPositive: request.allowNonPositive, grid: false)
        {
          throw ImportError.badBar(problem)
        }
        combined.append(contentsOf: result.series)
      }
      fileReports.append(
        ImportReport.File(
          path: shown, entries: results.count, bars: results.reduce(0) { $0 + $1.series.count }, skippedRows: results.reduce(0) { $0 + $1.skippedRows }
        ))
      progress.update(done: index + 1)
    }
    progress.finish()
    let barsRead = combined.count
    guard barsRead > 0 else { throw CSVError.empty(file: request.names.joined(separator: ", ")) }
    // The spacing first: hourly rows called 1d must be refused, not moved onto one date each.
    if !request.forceTimeframe, let spacing = BarValidation.spacingProblem(combined.sortedAndDeduplicated().timestamps, timeframe: request.timeframe) {
      throw ImportError.wrongTimeframe(files: request.names, timeframe: request.timeframe.description, reason: spacing)
    }
    if LocalDates.needed(combined, timeframe: request.timeframe, options: request.csv) {
      // Daily bars written with an offset: each on the date it is written with.
      combined = try LocalDates.apply(combined, files: request.names, options: request.csv)
    }
    // Rows that disagree for one bar time: which is right cannot be known (downloads refuse them too).
    let clean: BarSeries
    switch BarValidation.deduplicate(combined, origin: BarOrigin(file: request.names.joined(separator: ", "))) {
    case .success(let deduplicated): clean = deduplicated.series
    case .failure(let problem): throw ImportError.badBar(problem)
    }
    if !request.forceTimeframe {
      let origin = BarOrigin(file: request.names.joined(separator: ", "))
      let calendar = request.calendar ?? TradingCalendar.guess(source: request.sourceName, symbol: request.symbol)
      if let problem = BarValidation.check(clean, timeframe: request.timeframe, calendar: calendar, origin: origin, allowNonPositive: true),
        problem.kind == .offGrid
      {
        throw ImportError.badBar(problem)
      }
    }
    let calendar = request.calendar ?? TradingCalendar.guess(source: request.sourceName, symbol: request.symbol)
    let definition = DatasetDefinition(
      name: request.datasetName, source: request.sourceName, symbol: request.symbol, timeframe: request.timeframe,
      calendar: calendar, origin: "imported")
    progress.begin("storing", total: clean.count, unit: .bars)
    let stored = try database.write { db -> StoredBars in
      let stored = try QtoolDatabase.storeBars(db, into: definition, clean, at: context.clock.now(), cancellation: cancellation)
      if request.allowNonPositive { try QtoolDatabase.setMetadata(db, datasetID: stored.datasetID, key: "allow_nonpositive", json: Data("true".utf8)) }
      // The last moment to stop: everything above rolls back.
      try hooks.checkpoint("import.store", 0, cancellation: cancellation)
      try cancellation.check()
      return stored
    }
    progress.update(done: clean.count)
    progress.finish()
    let summary = try database.dataset(named: request.datasetName)
    return ImportReport(
      dataset: summary.name, jobID: context.jobID, files: fileReports, barsRead: barsRead, barsWritten: clean.count,
      duplicatesInInput: barsRead - clean.count, barsAdded: stored.counts.added, barsReplaced: stored.counts.replaced, datasetBars: summary.rowCount,
      gaps: summary.gapCount, first: summary.firstTs.map { UTCCalendar.format($0, alwaysTime: true) },
      last: summary.lastTs.map { UTCCalendar.format($0, alwaysTime: true) },
      seconds: context.clock.seconds(since: started))
  }
}

public enum ImportError: QtoolError {
  case badBar(BarProblem)
  case wrongTimeframe(files: [String], timeframe: String, reason: String)

  public var category: ErrorCategory { .invalidInput }
  public var code: String {
    switch self {
    case .badBar(let problem): return "bad_bar_" + problem.kind.rawValue
    case .wrongTimeframe: return "wrong_timeframe"
    }
  }
  public var message: String {
    switch self {
    case .badBar(let problem): return "\(problem); nothing was imported"
    case .wrongTimeframe(let files, let timeframe, let reason):
      return "\(files.joined(separator: ", ")): \(reason) (as \(timeframe) was given); nothing was imported"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .badBar(let problem):
      return ["kind": .string(problem.kind.rawValue), "row": JSONValue(problem.row + 1), "time": .string(UTCCalendar.format(problem.timestamp, alwaysTime: true))]
    case .wrongTimeframe(_, let timeframe, _): return ["timeframe": .string(timeframe)]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .badBar(let problem) where problem.kind == .nonPositive: return "for spreads or futures that trade below zero, allow it with {allow_nonpositive}"
    case .badBar(let problem) where problem.kind == .offGrid: return "check {timeframe}, or store it anyway with {force_timeframe}"
    case .badBar: return nil
    case .wrongTimeframe: return "give the bars' own timeframe with {timeframe}, or store them anyway with {force_timeframe}"
    }
  }
}

extension CSVOptions: Codable {
  enum CodingKeys: String, CodingKey {
    case columns, hasHeader = "has_header", delimiter, epochUnit = "epoch_unit", timestampFormat = "timestamp_format"
  }

  public init(from decoder: any Decoder) throws {
    self.init()
    let container = try decoder.container(keyedBy: CodingKeys.self)
    columns = try container.decodeIfPresent([String: String].self, forKey: .columns) ?? [:]
    hasHeader = try container.decodeIfPresent(Bool.self, forKey: .hasHeader)
    if let text = try container.decodeIfPresent(String.self, forKey: .delimiter) {
      guard text.utf8.count == 1 else {
        throw DecodingError.dataCorruptedError(forKey: .delimiter, in: container, debugDescription: "a delimiter is one character")
      }
      delimiter = text.utf8.first
    }
    epochUnit = try container.decodeIfPresent(TimestampParser.EpochUnit.self, forKey: .epochUnit)
    timestampFormat = try container.decodeIfPresent(String.self, forKey: .timestampFormat)
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    if !columns.isEmpty { try container.encode(columns, forKey: .columns) }
    try container.encodeIfPresent(hasHeader, forKey: .hasHeader)
    try container.encodeIfPresent(delimiter.map { String(UnicodeScalar($0)) }, forKey: .delimiter)
    try container.encodeIfPresent(epochUnit, forKey: .epochUnit)
    try container.encodeIfPresent(timestampFormat, forKey: .timestampFormat)
  }
}
