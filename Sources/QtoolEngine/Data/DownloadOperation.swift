import Foundation
import QtoolCore
import QtoolData
import QtoolStore

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

  public init(
    source: String, symbols: [String], timeframe: Timeframe, from: Int64? = nil, to: Int64? = nil, full: Bool = false,
    jobs: Int = 4, wait: Bool = false, adjusted: Bool = false, location: String? = nil, csv: CSVOptions = CSVOptions(),
    retry: RetryPolicy = RetryPolicy()
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
  }

  enum CodingKeys: String, CodingKey { case source, symbols, timeframe, from, to, full, jobs, wait, adjusted, location = "url", csv, retries }

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
  }
}

public struct DownloadReport: Codable, Sendable {
  public struct Symbol: Codable, Sendable {
    public var symbol: String
    public var dataset: String
    /// `downloaded`, `up_to_date` or `failed`.
    public var status: String
    public var barsAdded: Int
    public var gapsFilled: Int
    public var requests: Int
    public var retries: Int
    public var bytes: Int
    public var missingFiles: Int
    public var seconds: Double
    public var error: String?
    public var retryable: Bool?

    enum CodingKeys: String, CodingKey {
      case symbol, dataset, status, barsAdded = "bars_added", gapsFilled = "gaps_filled", requests, retries, bytes
      case missingFiles = "missing_files", seconds, error, retryable
    }
  }

  public var source: String
  public var jobID: String?
  public var timeframe: String
  public var symbols: [Symbol]
  public var seconds: Double

  enum CodingKeys: String, CodingKey { case source, jobID = "job_id", timeframe, symbols, seconds }

  public var failed: [Symbol] { symbols.filter { $0.status == "failed" } }

  /// What failed, as one error: temporary when every failure may pass on a later run.
  public var failure: DownloadFailed? {
    let failed = self.failed
    guard !failed.isEmpty else { return nil }
    return DownloadFailed(
      symbols: failed.map { ($0.dataset, $0.error ?? "failed") }, total: symbols.count, temporary: failed.allSatisfy { $0.retryable == true })
  }
  public var barsAdded: Int { symbols.map(\.barsAdded).reduce(0, +) }
}

/// Some symbols of a download failed (the others were stored).
public struct DownloadFailed: QtoolError {
  public var symbols: [(dataset: String, error: String)]
  public var total: Int
  public var temporary: Bool

  public var category: ErrorCategory { temporary ? .temporary : .unavailable }
  public var code: String { "download_failed" }
  public var message: String {
    "\(symbols.count) of \(total) symbols failed: " + symbols.map { "\($0.dataset): \($0.error)" }.joined(separator: "; ")
  }
  public var details: [String: JSONValue] {
    ["failed": .array(symbols.map { .object(["dataset": .string($0.dataset), "error": .string($0.error)]) })]
  }
  public var hint: ErrorHint? { temporary ? "run the same command again later: it fetches only what is missing" : nil }
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
}

extension DataOperations {
  /// Fetches what is missing for each symbol, committing every response's bars (with the
  /// record of the request that brought them) in its own transaction: a run killed at any
  /// moment leaves whole chunks only, and the next run fetches the rest. One symbol failing
  /// does not stop the others. A job, holding the lease of every dataset it writes, so
  /// downloads of other datasets run alongside.
  public func download(_ request: DownloadRequest, settings: Settings) throws -> DownloadReport {
    let names = request.symbols.map { "\($0)-\(request.timeframe)" }
    return try JobRunner.run(
      .download, request: request, context: context, link: { _ in ["datasets": .array(names.map { .string($0) })] }, failure: { $0.failure }
    ) { context in
      let leases = try context.leases.acquireAll(
        names.map(LeaseManager.datasetKey), holder: context.holder("download from \(request.source)"), wait: request.wait,
        cancellation: context.cancellation, clock: context.clock)
      defer { for lease in leases { lease.release() } }
      return try DataOperations(context).downloadNow(request, settings: settings)
    }
  }

  func downloadNow(_ request: DownloadRequest, settings: Settings) throws -> DownloadReport {
    let started = context.clock.now()
    let (progress, cancellation) = (context.progress, context.cancellation)
    let jobID = context.jobID ?? "unrecorded"
    let source = try SourceFactory.make(request, settings: settings)
    let now = context.clock.now()
    let to = min(request.to ?? now, now)

    var states: [SymbolState] = []
    var tasks: [(symbol: Int, task: SourceTask)] = []
    for symbol in request.symbols {
      let name = "\(symbol)-\(request.timeframe)"
      let existing = try? database.dataset(named: name)
      var state = SymbolState(symbol: symbol, dataset: name)
      state.gapsBefore = existing?.gapCount ?? 0
      let stored = request.full ? [] : try existing.map { try database.timestamps(datasetID: $0.id) } ?? []
      guard let from = request.from ?? stored.first else { throw DownloadError.fromRequired(dataset: name) }
      let calendar = existing?.parsedCalendar ?? source.calendar(for: symbol)
      let plan = MissingRanges.plan(existing: stored, from: from, to: to, timeframe: request.timeframe, calendar: calendar)
      state.calendar = calendar
      do {
        for task in try source.tasks(symbol: symbol, timeframe: request.timeframe, windows: plan.windows, now: now) {
          tasks.append((states.count, task))
          state.pending += 1
        }
      } catch let error as SourceError {
        throw error
      }
      states.append(state)
    }

    let client = HTTPClient(
      settings: HTTPSettings(userAgent: "qtool/\(VersionInfo.version) (+https://github.com/qtool)", proxy: settings.value("proxy")))
    // Checksums are fetched alongside the archives, in one pool: an archive that arrives
    // before its checksum waits for it. A checksum that cannot be fetched leaves its archive
    // unverified, as before.
    var expectedHash: [String: String] = [:]
    let checksumJobs = tasks.enumerated().compactMap { index, entry in
      entry.task.checksumURL.map { (tag: tasks.count + index, request: HTTPRequest(url: $0)) }
    }
    for job in checksumJobs { states[tasks[job.tag - tasks.count].symbol].requests += 1 }
    var checksumPending = Set(checksumJobs.map { $0.tag - tasks.count })
    var waiting: [Int: Result<Fetched, FetchError>] = [:]

    let fetcher = Fetcher(client: client, policy: request.retry)
    fetcher.pacing = { source.pacing($0) }
    fetcher.cancellation = cancellation
    fetcher.wallClock = context.clock
    progress.begin("downloading", total: tasks.count, unit: .files)
    var done = 0

    /// Stores a response's bars and the record of its request in one transaction.
    var stores = 0
    func store(_ batch: SourceBatch, for index: Int, task: DownloadTaskRecord) throws -> Int {
      try context.hooks.checkpoint("download.store", stores, cancellation: cancellation)
      stores += 1
      let state = states[index]
      let definition = DatasetDefinition(
        name: state.dataset, source: request.source, symbol: state.symbol, timeframe: request.timeframe,
        calendar: state.calendar ?? .allDays, origin: "downloaded")
      return try database.write { db -> Int in
        let stored = try QtoolDatabase.storeBars(db, into: definition, batch.series, at: context.clock.now(), cancellation: cancellation)
        if !batch.events.isEmpty { try QtoolDatabase.mergeEvents(db, datasetID: stored.datasetID, batch.events) }
        var record = task
        record.datasetID = stored.datasetID
        try QtoolDatabase.recordDownloadTask(db, jobID: jobID, record)
        try cancellation.check()
        states[index].datasetID = stored.datasetID
        states[index].gapsAfter = stored.gaps
        return stored.counts.added
      }
    }

    /// Records a request that stored nothing (failed, or not published).
    func record(_ task: DownloadTaskRecord) {
      do {
        try database.write { try QtoolDatabase.recordDownloadTask($0, jobID: jobID, task) }
      } catch {
        context.logger.warning("could not record \(task.url): \(error)")
      }
    }

    func handle(_ index: Int, task: SourceTask, body: Data, attempts: Int) {
      states[index].requests += attempts
      states[index].retries += attempts - 1
      do {
        if let expected = expectedHash[task.request.url] {
          let actual = ContentHash.sha256Hex(body)
          guard actual == expected else { throw FetchError.checksumMismatch(url: task.request.url, expected: expected, actual: actual) }
        }
        let batch = try source.batch(from: body, task: task, timeframe: request.timeframe, now: now)
        let added = try store(
          batch, for: index,
          task: DownloadTaskRecord(
            url: task.request.url, datasetID: nil, status: "completed", attempts: attempts, bytes: body.count, bars: batch.series.count, error: nil))
        states[index].barsAdded += added
      } catch let error as OperationCancelled {
        states[index].cancelled = error
      } catch {
        fail(index, task: task, error: error, attempts: attempts)
      }
    }

    func fail(_ index: Int, task: SourceTask, error: any Error, attempts: Int) {
      if case .status(_, 404, _, _) = error as? FetchError, task.checksumURL != nil {
        // An archive not published (before the listing, or not yet): nothing to store.
        states[index].missingFiles += 1
        record(
          DownloadTaskRecord(
            url: task.request.url, datasetID: states[index].datasetID, status: "completed", attempts: attempts, bytes: 0, bars: 0,
            error: "404: not published"))
        return
      }
      if states[index].error == nil {
        states[index].error = "\(error)"
        states[index].retryable = (error as? FetchError)?.isRetryable ?? false
      }
      record(
        DownloadTaskRecord(
          url: task.request.url, datasetID: states[index].datasetID, status: "failed", attempts: attempts, bytes: 0, bars: 0, error: "\(error)"))
    }

    var remoteJobs: [(tag: Int, request: HTTPRequest)] = []
    for (tag, entry) in tasks.enumerated() {
      if let path = entry.task.localPath {
        do {
          let entries = try ArchiveReader.entries(path: path)
          handle(
            entry.symbol, task: entry.task, body: entries.count == 1 ? entries[0].data : try Data(contentsOf: URL(fileURLWithPath: path)), attempts: 1
          )
        } catch {
          fail(entry.symbol, task: entry.task, error: error, attempts: 1)
        }
        done += 1
        progress.update(done: done)
      } else {
        remoteJobs.append((tag, entry.task.request))
      }
    }
    // Each archive right after its checksum, so it rarely has to wait for it.
    let checksumByArchive = Dictionary(uniqueKeysWithValues: checksumJobs.map { ($0.tag - tasks.count, $0) })
    let jobs = remoteJobs.flatMap { job in (checksumByArchive[job.tag].map { [$0] } ?? []) + [job] }
    // Transfers finish on the transfer loop's thread; the worker does the rest, one at a time,
    // and is the only one to touch the state below until it is drained.
    let worker = SerialWorker(limit: 2 * max(1, request.jobs))
    fetcher.fetch(jobs, concurrency: request.jobs) { tag, result in
      worker.submit { finished(tag, result) }
    }
    worker.drain()

    func finished(_ tag: Int, _ result: Result<Fetched, FetchError>) {
      if tag >= tasks.count {
        let index = tag - tasks.count
        if case .success(let fetched) = result, let word = String(decoding: fetched.response.body, as: UTF8.self).split(separator: " ").first {
          expectedHash[tasks[index].task.request.url] = String(word)
        }
        checksumPending.remove(index)
        if let archive = waiting.removeValue(forKey: index) { finished(index, archive) }
        return
      }
      if case .success = result, checksumPending.contains(tag) {
        waiting[tag] = result
        return
      }
      let entry = tasks[tag]
      switch result {
      case .success(let fetched): handle(entry.symbol, task: entry.task, body: fetched.response.body, attempts: fetched.attempts)
      case .failure(let error):
        states[entry.symbol].requests += error.attempts
        states[entry.symbol].retries += max(0, error.attempts - 1)
        fail(entry.symbol, task: entry.task, error: error, attempts: error.attempts)
      }
      states[entry.symbol].bytes += (try? result.get().response.body.count) ?? 0
      done += 1
      progress.update(done: done)
    }
    if let cancelled = states.compactMap(\.cancelled).first { throw cancelled }
    try cancellation.check()
    progress.finish()
    for index in states.indices where states[index].pending > 0 && states[index].missingFiles == states[index].pending && states[index].error == nil {
      states[index].error = "no archive of \(states[index].symbol) \(request.timeframe) is published in that range; check the symbol"
      states[index].retryable = false
    }

    let seconds = context.clock.seconds(since: started)
    return DownloadReport(
      source: request.source, jobID: context.jobID, timeframe: request.timeframe.description,
      symbols: states.map { state in
        let status = state.error != nil ? "failed" : state.pending == 0 ? "up_to_date" : "downloaded"
        return DownloadReport.Symbol(
          symbol: state.symbol, dataset: state.dataset, status: status, barsAdded: state.barsAdded,
          gapsFilled: max(0, state.gapsBefore - state.gapsAfter), requests: state.requests, retries: state.retries, bytes: state.bytes,
          missingFiles: state.missingFiles, seconds: seconds, error: state.error, retryable: state.retryable)
      }, seconds: seconds)
  }
}

private struct SymbolState {
  var symbol: String
  var dataset: String
  var calendar: TradingCalendar?
  var datasetID: Int64?
  var pending = 0
  var requests = 0
  var retries = 0
  var barsAdded = 0
  var gapsBefore = 0
  var gapsAfter = 0
  var bytes = 0
  var missingFiles = 0
  var error: String?
  var retryable: Bool?
  var cancelled: OperationCancelled?
}
