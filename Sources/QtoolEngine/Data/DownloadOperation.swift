import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Synchronization

/// `qtool data download`.
public struct DownloadRequest: Codable, Sendable {
  public var source: String
  public var symbols: [String]
  public var timeframe: Timeframe
  @ISOTimestamp public var from: Int64?
  @ISOTimestamp public var to: Int64?
  /// Refetch everything in range instead of only what is missing.
  public var full: Bool
  public var jobs: Int
  /// Wait for another writer of a dataset instead of failing.
  public var wait: Bool
  /// Yahoo: store split- and dividend-adjusted prices.
  public var adjusted: Bool
  /// The csv source: URL or path, `{symbol}` replaced by each symbol.
  public var location: String?
  public var csv: CSVOptions
  public var retry: RetryPolicy
  /// binance-bulk: store an archive whose `.CHECKSUM` cannot be fetched, recording it as
  /// unverified in the dataset's metadata (a checksum that does not match still fails).
  public var noVerify: Bool
  /// Ranges known to be missing at the source: not a failure, recorded in the dataset.
  public var acceptMissing: [Range<Int64>]

  public init(
    source: String, symbols: [String], timeframe: Timeframe, from: Int64? = nil, to: Int64? = nil, full: Bool = false,
    jobs: Int = 4, wait: Bool = false, adjusted: Bool = false, location: String? = nil, csv: CSVOptions = CSVOptions(),
    retry: RetryPolicy = RetryPolicy(), noVerify: Bool = false, acceptMissing: [Range<Int64>] = []
  ) {
    self.source = source
    self.symbols = symbols
    self.timeframe = timeframe
    self.from = from
    self.to = to
    self.full = full
    self.jobs = jobs
    self.wait = wait
    self.adjusted = adjusted
    self.location = location
    self.csv = csv
    self.retry = retry
    self.noVerify = noVerify
    self.acceptMissing = acceptMissing
  }

  enum CodingKeys: String, CodingKey {
    case source, symbols, timeframe, from, to, full, jobs, wait, adjusted, location = "url", csv, retries, noVerify = "no_verify"
    case acceptMissing = "accept_missing"
  }

  /// A range accepted as missing, in JSON: `{"from": …, "to": …}` (ISO-8601, `to` exclusive).
  struct AcceptedRange: Codable {
    @ISOTimestamp var from: Int64?
    @ISOTimestamp var to: Int64?
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    source = try container.decode(String.self, forKey: .source)
    symbols = try container.decode([String].self, forKey: .symbols)
    timeframe = try container.decode(Timeframe.self, forKey: .timeframe)
    _from = try container.decode(ISOTimestamp.self, forKey: .from)
    _to = try container.decode(ISOTimestamp.self, forKey: .to)
    full = try container.decodeIfPresent(Bool.self, forKey: .full) ?? false
    jobs = try container.decodeIfPresent(Int.self, forKey: .jobs) ?? 4
    wait = try container.decodeIfPresent(Bool.self, forKey: .wait) ?? false
    adjusted = try container.decodeIfPresent(Bool.self, forKey: .adjusted) ?? false
    location = try container.decodeIfPresent(String.self, forKey: .location)
    csv = try container.decodeIfPresent(CSVOptions.self, forKey: .csv) ?? CSVOptions()
    retry = RetryPolicy(maxAttempts: try container.decodeIfPresent(Int.self, forKey: .retries) ?? 5)
    noVerify = try container.decodeIfPresent(Bool.self, forKey: .noVerify) ?? false
    acceptMissing = try (container.decodeIfPresent([AcceptedRange].self, forKey: .acceptMissing) ?? []).map { range in
      guard let from = range.from, let to = range.to, from < to else {
        throw DecodingError.dataCorruptedError(forKey: .acceptMissing, in: container, debugDescription: "a range is {from, to} with from before to")
      }
      return from..<to
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(source, forKey: .source)
    try container.encode(symbols, forKey: .symbols)
    try container.encode(timeframe, forKey: .timeframe)
    try container.encode(_from, forKey: .from)
    try container.encode(_to, forKey: .to)
    try container.encode(full, forKey: .full)
    try container.encode(jobs, forKey: .jobs)
    try container.encode(wait, forKey: .wait)
    try container.encode(adjusted, forKey: .adjusted)
    try container.encodeIfPresent(location, forKey: .location)
    try container.encode(csv, forKey: .csv)
    try container.encode(retry.maxAttempts, forKey: .retries)
    try container.encode(noVerify, forKey: .noVerify)
    try container.encode(acceptMissing.map { AcceptedRange(from: $0.lowerBound, to: $0.upperBound) }, forKey: .acceptMissing)
  }
}

public struct DownloadReport: Encodable, Sendable {
  public struct Symbol: Encodable, Sendable {
    public var symbol: String
    public var dataset: String
    /// `downloaded`, `up_to_date`, `incomplete` (holes in the range) or `failed`.
    public var status: String
    public var barsAdded: Int
    /// Stored bars the source sent again with other values.
    public var barsReplaced: Int = 0
    /// Stored bars inside a refetched range that the source no longer sends.
    public var barsRemoved: Int = 0
    public var gapsFilled: Int
    public var requests: Int
    public var retries: Int
    public var bytes: Int
    public var missingFiles: Int
    /// Rows the source sent without usable values (null, empty, NaN): left out.
    public var rowsDropped: Int = 0
    /// The first few dropped rows, `file:line: reason`.
    public var dropped: [String] = []
    /// Rows repeated with identical values: left out.
    public var duplicatesDropped: Int = 0
    public var holes: [DownloadLedger.Hole] = []
    public var acceptedHoles: [DownloadLedger.Hole] = []
    /// Archives stored without a checksum (`--no-verify`).
    public var unverifiedFiles: [String] = []
    public var notes: [String] = []
    public var seconds: Double
    public var error: String?
    public var retryable: Bool?
    /// What this symbol alone would exit with.
    public var exitCode: Int32 = 0
    /// Every failure and hole, one line each (`error` is the first).
    public var failures: [String] = []
    /// What to do about the failures; each front end names the options its own way.
    public var hints: [ErrorHint] = []

    enum CodingKeys: String, CodingKey {
      case symbol, dataset, status, barsAdded = "bars_added", barsReplaced = "bars_replaced", barsRemoved = "bars_removed"
      case gapsFilled = "gaps_filled", requests, retries, bytes, missingFiles = "missing_files", rowsDropped = "rows_dropped", dropped
      case duplicatesDropped = "duplicates_dropped", holes, acceptedHoles = "accepted_holes", unverifiedFiles = "unverified_files", notes
      case seconds, error, retryable, exitCode = "exit_code", failures, hints
    }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(symbol, forKey: .symbol)
      try container.encode(dataset, forKey: .dataset)
      try container.encode(status, forKey: .status)
      try container.encode(barsAdded, forKey: .barsAdded)
      try container.encode(barsReplaced, forKey: .barsReplaced)
      try container.encode(barsRemoved, forKey: .barsRemoved)
      try container.encode(gapsFilled, forKey: .gapsFilled)
      try container.encode(requests, forKey: .requests)
      try container.encode(retries, forKey: .retries)
      try container.encode(bytes, forKey: .bytes)
      try container.encode(missingFiles, forKey: .missingFiles)
      try container.encode(rowsDropped, forKey: .rowsDropped)
      try container.encode(dropped, forKey: .dropped)
      try container.encode(duplicatesDropped, forKey: .duplicatesDropped)
      try container.encode(holes, forKey: .holes)
      try container.encode(acceptedHoles, forKey: .acceptedHoles)
      try container.encode(unverifiedFiles, forKey: .unverifiedFiles)
      try container.encode(notes, forKey: .notes)
      try container.encode(seconds, forKey: .seconds)
      try container.encode(error, forKey: .error)
      try container.encode(retryable, forKey: .retryable)
      try container.encode(exitCode, forKey: .exitCode)
      try container.encode(failures, forKey: .failures)
      try container.encode(hints.map { $0.rendered { $0 } }, forKey: .hints)
    }
  }

  public var source: String
  public var jobID: String?
  public var timeframe: String
  public var symbols: [Symbol]
  public var seconds: Double

  enum CodingKeys: String, CodingKey { case source, jobID = "job_id", timeframe, symbols, seconds }

  public var failed: [Symbol] { symbols.filter { $0.exitCode != 0 } }

  /// What failed, as one error whose category gives the run's exit status.
  public var failure: DownloadFailed? {
    let failed = self.failed
    guard !failed.isEmpty else { return nil }
    return DownloadFailed(symbols: failed.map { ($0.dataset, $0.error ?? "failed") }, total: symbols.count, exitStatus: exitStatus)
  }
  public var barsAdded: Int { symbols.map(\.barsAdded).reduce(0, +) }
  /// The run's exit status: a permanent failure (69, 65) wins over a temporary one (75).
  public var exitStatus: ExitStatus {
    DownloadAudit.combine(symbols.compactMap { ExitStatus(rawValue: $0.exitCode) })
  }
}

/// Some symbols of a download failed or left holes (the others were stored).
public struct DownloadFailed: QtoolError {
  public var symbols: [(dataset: String, error: String)]
  public var total: Int
  /// The run's exit status (a permanent failure wins over a temporary one).
  public var runStatus: ExitStatus

  public init(symbols: [(dataset: String, error: String)], total: Int, exitStatus: ExitStatus) {
    self.symbols = symbols
    self.total = total
    runStatus = exitStatus
  }

  public var category: ErrorCategory {
    switch runStatus {
    case .temporaryFailure: return .temporary
    case .dataError: return .invalidInput
    case .usage: return .usage
    default: return .unavailable
    }
  }
  public var code: String { "download_failed" }
  public var message: String {
    "\(symbols.count) of \(total) symbols failed: " + symbols.map { $0.error.hasPrefix($0.dataset) ? $0.error : "\($0.dataset): \($0.error)" }.joined(separator: "; ")
  }
  public var details: [String: JSONValue] {
    ["failed": .array(symbols.map { .object(["dataset": .string($0.dataset), "error": .string($0.error)]) })]
  }
  public var hint: ErrorHint? { runStatus == .temporaryFailure ? "run the same command again later: it fetches only what is missing" : nil }
}

public enum DownloadError: QtoolError, Equatable {
  case fromRequired(dataset: String)

  public var category: ErrorCategory { .usage }
  public var code: String { "from_required" }
  public var message: String {
    switch self {
    case .fromRequired(let dataset): return "\(dataset) has no bars yet, so the download needs to know where its history starts"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .fromRequired(let dataset): return ["dataset": .string(dataset), "field": "from"]
    }
  }
  public var hint: ErrorHint? { "give the start date with {from}" }
}

/// The available sources, by name.
public enum SourceFactory {
  public static let names = ["binance", "binance-bulk", "yahoo", "stooq", "csv"]

  public static func make(_ request: DownloadRequest, settings: Settings) throws -> any MarketSource {
    try refuseInapplicableOptions(request)
    func base(_ name: String) -> String { settings.baseURL(for: name) ?? "" }
    switch request.source {
    case "binance": return BinanceSource(baseURL: base("binance"))
    case "binance-bulk": return BinanceBulkSource(baseURL: base("binance-bulk"))
    case "yahoo": return YahooSource(baseURL: base("yahoo"), adjusted: request.adjusted)
    case "stooq": return StooqSource(baseURL: base("stooq"))
    case "csv":
      guard let location = request.location else {
        throw OperationError.invalidArgument(
          "the csv source needs the location of its file", field: "url", hint: "give a URL or path with {url}; {{symbol}} in it is replaced by each symbol")
      }
      return CSVSource(location: location, options: request.csv)
    default: throw SourceError.unknownSource(request.source, known: names)
    }
  }

  /// Options that mean nothing to the chosen source are refused rather than ignored.
  static func refuseInapplicableOptions(_ request: DownloadRequest) throws {
    var wrong: [(field: String, source: String)] = []
    if request.adjusted, request.source != "yahoo" { wrong.append(("adjusted", "yahoo")) }
    if request.location != nil, request.source != "csv" { wrong.append(("url", "csv")) }
    if request.csv != CSVOptions(), request.source != "csv" { wrong.append(("csv", "csv")) }
    if request.noVerify, request.source != "binance-bulk" { wrong.append(("no_verify", "binance-bulk")) }
    if let (field, source) = wrong.first {
      // The hint names the option the way each front end spells it.
      let option = field == "csv" ? "the CSV layout options ({map}, {no_header}, {delimiter}, …)" : "{\(field)}"
      throw OperationError.invalidArgument(
        "an option given applies only to the \(source) source, not to \(request.source)", field: field, hint: ErrorHint("leave out " + option))
    }
  }
}

/// The download settings a user can change (config `download.*`, env `QTOOL_DOWNLOAD_*`).
public struct DownloadLimits: Sendable {
  public var retryAfterCap: Double = 120
  public var minimumSpeed: Int = 1024
  public var stallTimeout: Int = 30
  public var fileTimeout: Int = 600
  public var maxResponseBytes: Int = 64 << 20
  public var maxArchiveBytes: Int = 1024 << 20

  public init() {}

  public init(settings: Settings) throws {
    func number(_ key: String, _ fallback: Double) throws -> Double {
      guard let text = settings.value("download.\(key)") else { return fallback }
      guard let value = Double(text), value.isFinite, value > 0 else {
        throw OperationError.invalidArgument("download.\(key) must be a number above 0, not '\(text)'", field: "download.\(key)")
      }
      return value
    }
    retryAfterCap = try number("retry_after_cap", retryAfterCap)
    minimumSpeed = Int(try number("min_speed", Double(minimumSpeed)))
    stallTimeout = max(1, Int(try number("stall_timeout", Double(stallTimeout))))
    fileTimeout = max(1, Int(try number("file_timeout", Double(fileTimeout))))
    maxResponseBytes = Int(try number("max_response_mib", Double(maxResponseBytes >> 20)) * 1_048_576)
    maxArchiveBytes = Int(try number("max_archive_mib", Double(maxArchiveBytes >> 20)) * 1_048_576)
  }
}

/// The download's requests, shared by the transfer loop (which adds next pages) and the worker.
private final class TaskList: Sendable {
  struct Entry {
    var symbol: Int
    var task: SourceTask
    /// Where the next page starts, when one was requested: this page covers up to there.
    var coveredUntil: Int64?
  }
  private let entries = Mutex<[Entry]>([])
  func append(_ entry: Entry) -> Int {
    entries.withLock {
      $0.append(entry)
      return $0.count - 1
    }
  }
  subscript(index: Int) -> Entry { entries.withLock { $0[index] } }
  func setCovered(_ index: Int, until: Int64) { entries.withLock { $0[index].coveredUntil = until } }
  var count: Int { entries.withLock { $0.count } }
}

extension DataOperations {
  /// Fetches what is missing for each symbol, committing every response's bars in its own
  /// transaction: a run killed at any moment leaves whole chunks only, and the next run
  /// fetches the rest. One symbol failing does not stop the others. Nothing the source did
  /// not send is stored: bodies cut short are fetched again, archives without a checksum are
  /// not stored (unless `noVerify`), bad rows refuse their file, missing values are left out
  /// and reported. Holes left in the range fail the symbol (75) on every run until filled or
  /// accepted.
  /// A job, holding the lease of every dataset it writes, so downloads of other datasets run
  /// alongside; every response's bars commit with the record of the request that brought them.
  public func download(_ request: DownloadRequest, settings: Settings, notice: @escaping @Sendable (String) -> Void = { _ in }) throws
    -> DownloadReport
  {
    for symbol in request.symbols { try Identifier.check(symbol, as: .symbol) }
    try OperationError.checkRange(from: request.from, to: request.to)
    let names = request.symbols.map { "\($0)-\(request.timeframe)" }
    return try JobRunner.run(
      .download, request: request, context: context, link: { _ in ["datasets": .array(names.map { .string($0) })] }, failure: { $0.failure }
    ) { context in
      let leases = try context.leases.acquireAll(
        names.map(LeaseManager.datasetKey), holder: context.holder("download from \(request.source)"), wait: request.wait,
        cancellation: context.cancellation, clock: context.clock)
      defer { for lease in leases { lease.release() } }
      return try DataOperations(context).downloadNow(request, settings: settings, notice: notice)
    }
  }

  func downloadNow(_ request: DownloadRequest, settings: Settings, notice: @escaping (String) -> Void) throws -> DownloadReport {
    let started = context.clock.now()
    let (progress, cancellation) = (context.progress, context.cancellation)
    let jobID = context.jobID ?? "unrecorded"
    let source = try SourceFactory.make(request, settings: settings)
    let limits = try DownloadLimits(settings: settings)
    let now = context.clock.now()
    let to = min(request.to ?? now, now)

    var states: [SymbolState] = []
    let tasks = TaskList()
    for symbol in request.symbols {
      let name = "\(symbol)-\(request.timeframe)"
      let existing = try? database.dataset(named: name)
      var state = SymbolState(symbol: symbol, dataset: name)
      state.gapsBefore = existing?.gapCount ?? 0
      state.ledger = DownloadLedger.read(metadata: existing?.metadata)
      state.ledger.accept(request.acceptMissing)
      let stored = try existing.map { try database.timestamps(datasetID: $0.id) } ?? []
      guard var from = request.from ?? stored.first else { throw DownloadError.fromRequired(dataset: name) }
      if !request.full, let starts = state.ledger.startsAt { from = max(from, starts) }
      let calendar = existing?.parsedCalendar ?? source.calendar(for: symbol)
      state.calendar = calendar
      state.range = from..<max(from, to)
      let windows = Self.downloadWindows(
        stored: request.full ? [] : stored, from: from, to: to, timeframe: request.timeframe, calendar: calendar, ledger: state.ledger,
        full: request.full)
      for var task in try source.tasks(symbol: symbol, timeframe: request.timeframe, windows: windows, now: now) {
        task.calendar = calendar
        task.request.maxBytes = task.checksumURL != nil || task.localPath != nil ? limits.maxArchiveBytes : limits.maxResponseBytes
        _ = tasks.append(TaskList.Entry(symbol: states.count, task: task))
        state.pending += 1
      }
      states.append(state)
    }

    let client = HTTPClient(
      settings: HTTPSettings(
        userAgent: "qtool/\(VersionInfo.version) (+https://github.com/qtool)", proxy: settings.value("proxy"),
        stallTimeout: limits.stallTimeout, minimumSpeed: limits.minimumSpeed, totalTimeout: limits.fileTimeout,
        maxBodyBytes: limits.maxResponseBytes))
    // Checksums are fetched alongside the archives, in one pool: an archive that arrives
    // before its checksum waits for it. Tags: 2·index for a task, 2·index + 1 for its checksum.
    var expectedHash: [Int: String] = [:]
    var checksumFailure: [Int: String] = [:]
    let initialCount = tasks.count
    var checksumPending = Set((0..<initialCount).filter { tasks[$0].task.checksumURL != nil })
    for index in checksumPending { states[tasks[index].symbol].requests += 1 }
    var waiting: [Int: Result<Fetched, FetchError>] = [:]

    var policy = request.retry
    policy.retryAfterCap = limits.retryAfterCap
    let fetcher = Fetcher(client: client, policy: policy)
    fetcher.pacing = { source.pacing($0) }
    fetcher.notice = notice
    fetcher.cancellation = cancellation
    fetcher.wallClock = context.clock
    fetcher.validate = { tag, response in
      tag % 2 == 0 ? source.incompleteness(of: response, task: tasks[tag / 2].task) : nil
    }
    fetcher.followUp = { tag, response in
      guard tag % 2 == 0 else { return [] }
      let entry = tasks[tag / 2]
      guard let page = source.nextPage(after: response, task: entry.task, timeframe: request.timeframe, now: now) else { return [] }
      tasks.setCovered(tag / 2, until: page.window.lowerBound)
      let index = tasks.append(TaskList.Entry(symbol: entry.symbol, task: page))
      return [(tag: 2 * index, request: page.request)]
    }
    progress.begin("downloading", total: initialCount, unit: .files)
    var done = 0

    func handle(_ index: Int, body: Data, attempts: Int) {
      let entry = tasks[index]
      let (symbol, task) = (entry.symbol, entry.task)
      states[symbol].requests += attempts
      states[symbol].retries += attempts - 1
      do {
        var unverified: String?
        if task.checksumURL != nil {
          if let expected = expectedHash[index] {
            let actual = ContentHash.sha256Hex(body)
            guard actual == expected else {
              throw FetchError.checksumMismatch(url: task.request.url, expected: expected, actual: actual, arrived: Self.describeArrival(body))
            }
          } else {
            let reason = checksumFailure[index] ?? "no answer"
            guard request.noVerify else {
              throw FetchError.checksumUnavailable(url: task.request.url, checksumURL: task.checksumURL!, reason: reason)
            }
            unverified = reason
          }
        }
        let batch = try source.batch(from: body, task: task, timeframe: request.timeframe, now: now)
        let covered = task.window.lowerBound..<(entry.coveredUntil ?? task.window.upperBound)
        states[symbol].dropped += batch.dropped
        states[symbol].duplicates += batch.duplicates
        if batch.series.isEmpty {
          // Nothing to store: the dataset is not created for it. What it means is judged at the end.
          states[symbol].outcomes.append(
            TaskOutcome(
              window: covered, file: task.fileName,
              result: .empty(reason: batch.emptyReason, receivedRange: batch.received > 0 ? batch.receivedRange : nil)))
        } else {
          let record = DownloadTaskRecord(
            url: task.request.url, datasetID: nil, status: "completed", attempts: attempts, bytes: body.count, bars: batch.series.count, error: nil)
          let changes = try store(batch, window: covered, for: symbol, task: record)
          states[symbol].changes += changes
          states[symbol].outcomes.append(TaskOutcome(window: covered, file: task.fileName, result: .stored(bars: batch.series.count)))
        }
        if let unverified {
          states[symbol].unverified.append(
            DownloadLedger.Unverified(
              file: task.fileName, from: UTCCalendar.format(task.window.lowerBound), to: UTCCalendar.format(task.window.upperBound),
              reason: "its .CHECKSUM could not be fetched (\(unverified)); stored with --no-verify"))
        } else if task.checksumURL != nil {
          states[symbol].verifiedFiles.insert(task.fileName)
        }
        if batch.series.isEmpty {
          record(
            DownloadTaskRecord(
              url: task.request.url, datasetID: states[symbol].datasetID, status: "completed", attempts: attempts, bytes: body.count, bars: 0,
              error: nil))
        }
      } catch let error as OperationCancelled {
        states[symbol].cancelled = error
      } catch {
        fail(index, error: error, attempts: attempts)
      }
    }

    /// Records a request that stored nothing (failed, empty, or not published).
    func record(_ task: DownloadTaskRecord) {
      do {
        try database.write { try QtoolDatabase.recordDownloadTask($0, jobID: jobID, task) }
      } catch {
        context.logger.warning("could not record \(task.url): \(error)")
      }
    }

    /// Writes a response's bars, and the record of the request that brought them, in one
    /// transaction, after comparing them with the bars stored in the window they cover: what
    /// is added, replaced and removed is reported.
    var stores = 0
    func store(_ batch: SourceBatch, window: Range<Int64>, for index: Int, task: DownloadTaskRecord) throws -> BarChanges {
      try context.hooks.checkpoint("download.store", stores, cancellation: cancellation)
      stores += 1
      let state = states[index]
      let definition = DatasetDefinition(
        name: state.dataset, source: request.source, symbol: state.symbol, timeframe: request.timeframe,
        calendar: state.calendar ?? .allDays, origin: "downloaded")
      return try database.write { db -> BarChanges in
        let id = try QtoolDatabase.findOrCreateDataset(db, definition, at: context.clock.now())
        let stored = try QtoolDatabase.readBars(db, datasetID: id, from: window.lowerBound, to: window.upperBound)
        let changes = BarChanges.compare(stored: stored, incoming: batch.series, window: window)
        if !changes.removed.isEmpty {
          _ = try QtoolDatabase.removeBars(db, datasetID: id, timestamps: changes.removed)
          try QtoolDatabase.refreshStatistics(db, datasetID: id)
        }
        _ = try QtoolDatabase.storeBars(db, into: definition, batch.series, at: context.clock.now(), cancellation: cancellation)
        if !batch.events.isEmpty { try QtoolDatabase.mergeEvents(db, datasetID: id, batch.events) }
        var record = task
        record.datasetID = id
        try QtoolDatabase.recordDownloadTask(db, jobID: jobID, record)
        try cancellation.check()
        states[index].datasetID = id
        return changes
      }
    }

    func fail(_ index: Int, error: any Error, attempts: Int) {
      let entry = tasks[index]
      let (symbol, task) = (entry.symbol, entry.task)
      if case .status(_, 404, _, _) = error as? FetchError, task.checksumURL != nil {
        // An archive not published (before the listing, not yet, or a hole): judged at the end.
        states[symbol].missingFiles += 1
        states[symbol].outcomes.append(TaskOutcome(window: task.window, file: task.fileName, result: .notPublished))
        record(
          DownloadTaskRecord(
            url: task.request.url, datasetID: states[symbol].datasetID, status: "completed", attempts: attempts, bytes: 0, bars: 0,
            error: "404: not published"))
        return
      }
      states[symbol].outcomes.append(TaskOutcome(window: task.window, file: task.fileName, result: .failed))
      let status = (error as? any QtoolError)?.exitStatus ?? .unavailable
      states[symbol].errors.append((message: (error as? any QtoolError)?.message ?? "\(error)", status: status))
      if let hint = (error as? any QtoolError)?.hint, !states[symbol].hints.contains(hint) { states[symbol].hints.append(hint) }
      record(
        DownloadTaskRecord(
          url: task.request.url, datasetID: states[symbol].datasetID, status: "failed", attempts: attempts, bytes: 0, bars: 0, error: "\(error)"))
    }

    var remoteJobs: [(tag: Int, request: HTTPRequest)] = []
    for index in 0..<initialCount {
      let entry = tasks[index]
      if let path = entry.task.localPath {
        do {
          let entries = try ArchiveReader.entries(path: path)
          handle(index, body: entries.count == 1 ? entries[0].data : try Data(contentsOf: URL(fileURLWithPath: path)), attempts: 1)
        } catch {
          fail(index, error: error, attempts: 1)
        }
        done += 1
        progress.update(done: done)
      } else {
        // Each archive right after its checksum, so it rarely has to wait for it.
        if let checksum = entry.task.checksumURL { remoteJobs.append((2 * index + 1, HTTPRequest(url: checksum, maxBytes: 64 << 10))) }
        remoteJobs.append((2 * index, entry.task.request))
      }
    }
    // Transfers finish on the transfer loop's thread; the worker does the rest, one at a time,
    // and is the only one to touch the state below until it is drained.
    let worker = SerialWorker(limit: 2 * max(1, request.jobs))
    fetcher.fetch(remoteJobs, concurrency: request.jobs) { tag, result in
      worker.submit { finished(tag, result) }
    }
    worker.drain()

    func finished(_ tag: Int, _ result: Result<Fetched, FetchError>) {
      let index = tag / 2
      if tag % 2 == 1 {
        switch result {
        case .success(let fetched):
          if let problem = Self.checksumProblem(fetched.response.body) {
            checksumFailure[index] = problem
          } else {
            expectedHash[index] = String(String(decoding: fetched.response.body, as: UTF8.self).split(whereSeparator: \.isWhitespace).first ?? "")
          }
        case .failure(let error):
          if case .status(_, let status, _, _) = error { checksumFailure[index] = "HTTP \(status)" } else { checksumFailure[index] = "\(error)" }
        }
        checksumPending.remove(index)
        if let archive = waiting.removeValue(forKey: index) { finished(2 * index, archive) }
        return
      }
      if case .success = result, checksumPending.contains(index) {
        waiting[index] = result
        return
      }
      let symbol = tasks[index].symbol
      switch result {
      case .success(let fetched): handle(index, body: fetched.response.body, attempts: fetched.attempts)
      case .failure(let error):
        states[symbol].requests += error.attempts
        states[symbol].retries += max(0, error.attempts - 1)
        fail(index, error: error, attempts: error.attempts)
      }
      states[symbol].bytes += (try? result.get().response.body.count) ?? 0
      done += 1
      progress.update(done: done)
    }
    if let cancelled = states.compactMap(\.cancelled).first { throw cancelled }
    try cancellation.check()
    progress.finish()

    let seconds = context.clock.seconds(since: started)
    var symbols: [DownloadReport.Symbol] = []
    for index in states.indices {
      symbols.append(try conclude(&states[index], request: request, sourceName: source.name, seconds: seconds))
    }
    return DownloadReport(source: request.source, jobID: context.jobID, timeframe: request.timeframe.description, symbols: symbols, seconds: seconds)
  }

  /// What to fetch: the missing ranges (or the whole range with `full`), plus the holes the
  /// last run left, less the ranges accepted as missing.
  static func downloadWindows(
    stored: [Int64], from: Int64, to: Int64, timeframe: Timeframe, calendar: TradingCalendar, ledger: DownloadLedger, full: Bool
  ) -> [Range<Int64>] {
    guard from < to else { return [] }
    if full { return MissingRanges.plan(existing: [], from: from, to: to, timeframe: timeframe, calendar: calendar).windows }
    let plan = MissingRanges.plan(existing: stored, from: from, to: to, timeframe: timeframe, calendar: calendar).windows
    let holes = ledger.holes.compactMap { $0.range?.clamped(to: from..<to) }.filter { !$0.isEmpty }
    return RangeSet64.subtract(plan + holes, ledger.acceptedRanges)
  }

  /// Judges one symbol's run (holes, nothing at all, where history starts), records what
  /// was learned in the dataset's metadata, and returns its report.
  private func conclude(_ state: inout SymbolState, request: DownloadRequest, sourceName: String, seconds: Double) throws -> DownloadReport.Symbol {
    let dataset = try? database.dataset(named: state.dataset)
    let stored = try dataset.map { try database.timestamps(datasetID: $0.id) } ?? []
    let changed = state.changes.added + state.changes.replaced + state.changes.removed.count > 0
    let conclusion = DownloadAudit.conclude(
      source: sourceName, symbol: state.symbol, dataset: state.dataset, timeframe: request.timeframe, calendar: state.calendar ?? .allDays,
      range: state.range, stored: stored, outcomes: state.outcomes, dropped: state.dropped, ledger: state.ledger, errors: state.errors,
      changed: changed)
    if let dataset {
      var ledger = state.ledger
      if let starts = conclusion.starts { ledger.starts = UTCCalendar.format(starts) }
      ledger.holes = conclusion.holes
      ledger.unverified = (ledger.unverified.filter { !state.verifiedFiles.contains($0.file) && !state.unverified.map(\.file).contains($0.file) }
        + state.unverified).sorted { $0.from < $1.from }
      let json = ledger.isEmpty ? nil : ledger.json()
      try database.write { try QtoolDatabase.setMetadata($0, datasetID: dataset.id, key: "download", json: json) }
    }
    let gapsAfter = (try? database.dataset(named: state.dataset))?.gapCount ?? 0
    let firstError = state.errors.first?.message
    return DownloadReport.Symbol(
      symbol: state.symbol, dataset: state.dataset, status: conclusion.status, barsAdded: state.changes.added,
      barsReplaced: state.changes.replaced, barsRemoved: state.changes.removed.count, gapsFilled: max(0, state.gapsBefore - gapsAfter),
      requests: state.requests, retries: state.retries, bytes: state.bytes, missingFiles: state.missingFiles, rowsDropped: state.dropped.count,
      dropped: state.dropped.prefix(5).map(\.description), duplicatesDropped: state.duplicates, holes: conclusion.holes,
      acceptedHoles: conclusion.acceptedHoles, unverifiedFiles: state.unverified.map(\.file).sorted(), notes: conclusion.notes, seconds: seconds,
      error: conclusion.failures.isEmpty ? nil : (firstError.map { "\(state.dataset): \($0)" } ?? conclusion.failures[0]),
      retryable: conclusion.failures.isEmpty ? nil : conclusion.exitStatus == .temporaryFailure, exitCode: conclusion.exitStatus.rawValue,
      failures: conclusion.failures, hints: conclusion.failures.isEmpty ? [] : state.hints)
  }

  /// Why a `.CHECKSUM` body is not a checksum (an HTML page, a cut line), or nil.
  static func checksumProblem(_ body: Data) -> String? {
    let word = String(decoding: body.prefix(200), as: UTF8.self).split(whereSeparator: \.isWhitespace).first.map(String.init) ?? ""
    guard word.count == 64, word.allSatisfy(\.isHexDigit) else {
      return "it is not a checksum: \(BodyFraming.describe(body))"
    }
    return nil
  }

  /// What an archive whose SHA-256 does not match was: an HTML page, a cut zip, a whole one.
  static func describeArrival(_ body: Data) -> String {
    guard body.count >= 2, body[body.startIndex] == 0x50, body[body.startIndex + 1] == 0x4B else {
      return BodyFraming.describe(body) + ", not the archive; the file is damaged or was replaced"
    }
    return "a zip archive of \(body.count) bytes with other content; the file is damaged"
  }
}

private struct SymbolState {
  var symbol: String
  var dataset: String
  var calendar: TradingCalendar?
  var datasetID: Int64?
  var range: Range<Int64> = 0..<0
  var ledger = DownloadLedger()
  var pending = 0
  var requests = 0
  var retries = 0
  var changes = BarChanges()
  var gapsBefore = 0
  var bytes = 0
  var missingFiles = 0
  var outcomes: [TaskOutcome] = []
  var dropped: [DroppedRow] = []
  var duplicates = 0
  var unverified: [DownloadLedger.Unverified] = []
  var verifiedFiles = Set<String>()
  var errors: [(message: String, status: ExitStatus)] = []
  var cancelled: OperationCancelled?
  var hints: [ErrorHint] = []
}
