import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool data download`.
public struct DownloadRequest: Sendable {
  public var source: String
  public var symbols: [String]
  public var timeframe: Timeframe
  public var from: Int64?
  public var to: Int64?
  /// Refetch everything in range instead of only what is missing.
  public var full: Bool
  public var jobs: Int
  /// Wait for another download's lock instead of exiting 75.
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
  public var timeframe: String
  public var symbols: [Symbol]
  public var seconds: Double

  public var failed: [Symbol] { symbols.filter { $0.status == "failed" } }
  public var barsAdded: Int { symbols.map(\.barsAdded).reduce(0, +) }
}

public enum DownloadError: QtoolError, Equatable {
  case fromRequired(dataset: String)

  public var exitStatus: ExitStatus { .usage }
  public var description: String {
    switch self {
    case .fromRequired(let dataset):
      return "\(dataset) has no bars yet: pass --from DATE to say where its history starts"
    }
  }
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
        throw OperationError.invalidArgument("the csv source needs --url URL_OR_PATH (with {symbol} for several symbols)")
      }
      return CSVSource(location: location, options: request.csv)
    default: throw SourceError.unknownSource(request.source, known: names)
    }
  }
}

extension DataOperations {
  /// Fetches what is missing for each symbol, committing every response's bars in its own
  /// transaction: a run killed at any moment leaves whole chunks only, and the next run
  /// fetches the rest. One symbol failing does not stop the others.
  public func download(_ request: DownloadRequest, settings: Settings, progress: any ProgressReporter = SilentProgress())
    throws -> DownloadReport
  {
    let started = Date()
    let lock = try StoreLock.acquire(databasePath: database.path, purpose: "qtool data download --source \(request.source)", wait: request.wait)
    defer { withExtendedLifetime(lock) {} }
    let source = try SourceFactory.make(request, settings: settings)
    let now = Int64(Date().timeIntervalSince1970 * 1000)
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
    var records: [DownloadTaskRecord] = []
    progress.begin("downloading", total: tasks.count, unit: .files)
    var done = 0

    func store(_ batch: SourceBatch, for index: Int) throws -> Int {
      let state = states[index]
      let definition = DatasetDefinition(
        name: state.dataset, source: request.source, symbol: state.symbol, timeframe: request.timeframe,
        calendar: state.calendar ?? .allDays, origin: "downloaded")
      return try database.write { db -> Int in
        let id = try QtoolDatabase.findOrCreateDataset(db, definition)
        let before = try QtoolDatabase.counts(db, datasetID: id).rows
        if !batch.series.isEmpty { _ = try QtoolDatabase.upsertBars(db, datasetID: id, batch.series) }
        try QtoolDatabase.refreshStatistics(db, datasetID: id)
        if !batch.events.isEmpty { try QtoolDatabase.mergeEvents(db, datasetID: id, batch.events) }
        states[index].datasetID = id
        let after = try QtoolDatabase.counts(db, datasetID: id)
        states[index].gapsAfter = after.gaps
        return after.rows - before
      }
    }

    func handle(_ index: Int, task: SourceTask, body: Data, attempts: Int) {
      states[index].requests += attempts
      states[index].retries += attempts - 1
      do {
        if let expected = expectedHash[task.request.url] {
          let actual = ContentHash.sha256Hex(body)
          guard actual == expected else { throw FetchError.checksumMismatch(url: task.request.url, expected: expected, actual: actual, arrived: "\(body.count) bytes") }
        }
        let batch = try source.batch(from: body, task: task, timeframe: request.timeframe, now: now)
        let added = try store(batch, for: index)
        states[index].barsAdded += added
        records.append(
          DownloadTaskRecord(
            url: task.request.url, datasetID: states[index].datasetID, status: "completed", attempts: attempts, bytes: body.count,
            bars: batch.series.count, error: nil))
      } catch {
        fail(index, task: task, error: error, attempts: attempts)
      }
    }

    func fail(_ index: Int, task: SourceTask, error: any Error, attempts: Int) {
      if case .status(_, 404, _, _) = error as? FetchError, task.checksumURL != nil {
        // An archive not published (before the listing, or not yet): nothing to store.
        states[index].missingFiles += 1
        records.append(
          DownloadTaskRecord(
            url: task.request.url, datasetID: states[index].datasetID, status: "completed", attempts: attempts, bytes: 0, bars: 0,
            error: "404: not published"))
        return
      }
      if states[index].error == nil {
        states[index].error = "\(error)"
        states[index].retryable = (error as? FetchError)?.isRetryable ?? false
      }
      records.append(
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
    progress.finish()
    for index in states.indices where states[index].pending > 0 && states[index].missingFiles == states[index].pending && states[index].error == nil {
      states[index].error = "no archive of \(states[index].symbol) \(request.timeframe) is published in that range; check the symbol"
      states[index].retryable = false
    }

    let seconds = Date().timeIntervalSince(started)
    let report = DownloadReport(
      source: request.source, timeframe: request.timeframe.description,
      symbols: states.map { state in
        let status = state.error != nil ? "failed" : state.pending == 0 ? "up_to_date" : "downloaded"
        return DownloadReport.Symbol(
          symbol: state.symbol, dataset: state.dataset, status: status, barsAdded: state.barsAdded,
          gapsFilled: max(0, state.gapsBefore - state.gapsAfter), requests: state.requests, retries: state.retries, bytes: state.bytes,
          missingFiles: state.missingFiles, seconds: seconds, error: state.error, retryable: state.retryable)
      }, seconds: seconds)
    try? database.recordDownloadJob(
      source: request.source, request: request.symbols.joined(separator: ",") + " " + request.timeframe.description,
      status: report.failed.isEmpty ? "completed" : "failed", error: report.failed.first?.error,
      startedAt: Int64(started.timeIntervalSince1970 * 1000), tasks: records)
    return report
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
}
