import Foundation
import QtoolCore
import QtoolStore
import Synchronization
import Testing

@testable import QtoolEngine

/// A store on disk with GOOG's daily bars and a registered SMA strategy.
func googStore() throws -> (OperationContext, String) {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-engine-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  let database = try QtoolDatabase.open(path: directory.appendingPathComponent("qtool.db").path)
  let context = OperationContext(database: database)
  let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  _ = try DataOperations(context).importFiles(
    ImportRequest(files: [root.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path], symbol: "GOOG", timeframe: Timeframe("1d")!))
  return (context, directory.path)
}

let smaSpec = """
  name: sma
  universe: { symbols: [GOOG], timeframe: 1d }
  params: { fast: 10, slow: 30 }
  rules:
    entry: cross_above(sma(close, fast), sma(close, slow))
    exit: cross_below(sma(close, fast), sma(close, slow))
  """

/// Records every progress event.
final class RecordedProgress: ProgressSink {
  let events = Mutex<[ProgressEvent]>([])
  func emit(_ event: ProgressEvent) { events.withLock { $0.append(event) } }
}

@Suite struct RuntimeTests {
  /// Time comes from the context's clock: a manual clock drives job and catalog times.
  @Test func manualClockDrivesTime() throws {
    let clock = ManualClock(1_700_000_000_000)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-clock-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let file = directory.appendingPathComponent("m.csv")
    try "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10\n".write(
      to: file, atomically: true, encoding: .utf8)
    let context = OperationContext(database: try QtoolDatabase.inMemory(), clock: clock)
    let report = try DataOperations(context).importFiles(ImportRequest(files: [file.path], symbol: "M", timeframe: Timeframe("1d")!))
    #expect(report.seconds == 0, "the clock did not move")
    let job = try #require(try JobOperations(context).list(JobFilter()).first)
    #expect(job.createdAt == "2023-11-14T22:13:20Z")
    #expect(job.finishedAt == "2023-11-14T22:13:20Z")
    #expect(job.status == .completed)
    #expect(try context.database.dataset(named: "M-1d").updatedAt == 1_700_000_000_000)
    clock.advance(by: 2 * 86_400_000)
    #expect(try JobOperations(context).list(JobFilter(since: clock.now() - 86_400_000)).isEmpty, "older than a day by the clock")
    #expect(try JobOperations(context).prune(olderThan: 86_400_000) == 1)
  }

  @Test func leasesExcludeWritersOfOneDatasetOnly() throws {
    let leases = LeaseManager(directory: FileManager.default.temporaryDirectory.appendingPathComponent("qtool-leases-\(UUID().uuidString)").path)
    let holder = LeaseHolder(pid: 42, host: "here", jobID: "j1", purpose: "test", since: 0)
    let goog = try leases.acquire(LeaseManager.datasetKey("GOOG-1d"), holder: holder, wait: false)
    // Another dataset: free. The same one, even from this process: held, naming the holder.
    let other = try leases.acquire(LeaseManager.datasetKey("MSFT/1d weird"), holder: holder, wait: false)
    #expect(throws: LeaseError.held(key: "dataset:GOOG-1d", holder: holder)) {
      try leases.acquire(LeaseManager.datasetKey("GOOG-1d"), holder: holder, wait: false)
    }
    #expect(leases.state(of: LeaseManager.datasetKey("GOOG-1d")) == .held(holder))
    // A waiter gets it once it is released.
    let released = Atomic<Bool>(false)
    Thread.detachNewThread {
      usleep(100_000)
      released.store(true, ordering: .sequentiallyConsistent)
      goog.release()
    }
    let waited = try leases.acquire(LeaseManager.datasetKey("GOOG-1d"), holder: holder, wait: true)
    let wasReleased = released.load(ordering: .sequentiallyConsistent)
    #expect(wasReleased)
    waited.release()
    other.release()
    #expect(leases.state(of: LeaseManager.datasetKey("GOOG-1d")) == .free)
  }

  /// Two grids awaited at once from async code share the compute slots and give the results
  /// of a grid run alone.
  @Test func concurrentGridsShareTheCores() async throws {
    let (context, _) = try googStore()
    let request = GridRequest(
      strategy: .inline(spec: smaSpec, origin: nil), axes: [GridAxis(name: "fast", values: [5, 8, 10, 12]), GridAxis(name: "slow", values: [20, 30, 40])],
      top: 12, jobs: 4)
    let alone = try BacktestOperations(context).grid(request).results.map(\.metrics.sharpe)
    ComputePool.resetPeak()
    async let first = OperationAwait.run(cancellation: context.cancellation) { try BacktestOperations(context).grid(request) }
    async let second = OperationAwait.run(cancellation: context.cancellation) { try BacktestOperations(context).grid(request) }
    let (a, b) = try await (first, second)
    #expect(a.results.map(\.metrics.sharpe) == alone)
    #expect(b.results.map(\.metrics.sharpe) == alone)
    #expect(ComputePool.peakBusy <= ComputePool.cores, "never more compute than cores, though 8 workers asked")
    #expect(a.id != b.id)
  }

  /// A REST client saw a completed job with a run id and no trace of a failed --assert; a
  /// blank assertion passed every run; a malformed one was caught after the run.
  @Test func failedAssertionsAreInTheJobsResultAndBadOnesRefusedFirst() throws {
    let (context, _) = try googStore()
    let report = try BacktestOperations(context).run(
      BacktestRequest(strategy: .inline(spec: smaSpec, origin: nil), assertions: ["trades > 1000000 and trades >= 0"]))
    #expect(report.failedAssertions.map(\.clause) == ["trades > 1000000"])
    let job = try #require(try context.database.jobs(JobFilter()).first { $0.kind == "backtest" })
    let result = try #require(try JSONSerialization.jsonObject(with: Data((job.result ?? "").utf8)) as? [String: Any])
    #expect(result["run_id"] as? String == report.id)
    let failed = try #require(result["failed_assertions"] as? [[String: Any]], "\(result)")
    #expect(failed.first?["clause"] as? String == "trades > 1000000")
    let runs = try context.database.jobs(JobFilter()).count
    for bad in ["", "  ", "trades", "nonsense > 1", "trades > 0 and", "and trades > 0"] {
      #expect(throws: RuleError.self, "\(bad)") {
        try BacktestOperations(context).run(BacktestRequest(strategy: .inline(spec: smaSpec, origin: nil), assertions: [bad]))
      }
    }
    #expect(try context.database.jobs(JobFilter()).count == runs, "refused before any job")
  }

  /// Cancelling the awaiting task cancels the grid: it throws, and its job is recorded cancelled.
  @Test func cancellingTheTaskCancelsTheOperation() async throws {
    let (base, _) = try googStore()
    let progress = RecordedProgress()
    let context = OperationContext(database: base.database, progress: progress)
    let request = GridRequest(
      strategy: .inline(spec: smaSpec, origin: nil),
      axes: [GridAxis(name: "fast", values: (2...200).map(Double.init)), GridAxis(name: "slow", values: (20...420).map(Double.init))], jobs: 1)
    let task = Task { try await OperationAwait.run(cancellation: context.cancellation) { try BacktestOperations(context).grid(request) } }
    while !progress.events.withLock({ $0.contains { $0.phase == "grid" && $0.done > 0 } }) { try await Task.sleep(nanoseconds: 1_000_000) }
    task.cancel()
    await #expect(throws: OperationCancelled(reason: .requested)) { try await task.value }
    let job = try #require(try JobOperations(context).list(JobFilter(kinds: ["grid"])).first)
    #expect(job.status == .cancelled)
    #expect(job.progress?.total == 199 * 401)
    #expect(try context.database.info().rowCounts["grid_results"] == 0)
  }

  /// A grid and a check on a portfolio spec run (they used to look for a dataset named A+B).
  @Test func gridAndCheckOnAPortfolio() throws {
    let (context, _) = try googStore()
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    _ = try DataOperations(context).importFiles(
      ImportRequest(
        files: [root.appendingPathComponent("../shared/data/stooq/aapl_us_d.csv").standardized.path], symbol: "AAPL", timeframe: Timeframe("1d")!))
    let spec = """
      name: momentum
      universe: { symbols: [GOOG, AAPL], timeframe: 1d }
      params: { lookback: 20 }
      rules: {}
      portfolio: { rank: "roc(close, lookback)", top: 1, rebalance: monthly }
      """
    let grid = try BacktestOperations(context).grid(
      GridRequest(strategy: .inline(spec: spec, origin: nil), axes: [GridAxis(name: "lookback", values: [10, 20, 60])], rank: "total_return", allowGaps: true))
    #expect(grid.combinations == 3)
    #expect(grid.dataset == "GOOG-1d+AAPL-1d")
    #expect(grid.results.allSatisfy { $0.metrics.trades > 0 })
    let single = try BacktestOperations(context).run(
      BacktestRequest(strategy: .inline(spec: spec, origin: nil), params: ["lookback": grid.results[0].parameters["lookback"]!], allowGaps: true))
    #expect(single.metrics.totalReturn == grid.results[0].metrics.totalReturn, "a grid row is the run with its params")
    let check = try BacktestOperations(context).check(BacktestRequest(strategy: .inline(spec: spec, origin: nil), allowGaps: true))
    #expect(!check.cuts.isEmpty)
    #expect(check.clean)
  }
}

@Suite struct RequestCodingTests {
  @Test func backtestRequestRoundTrips() throws {
    let json = #"{"strategy": {"name": "sma", "version": 2}, "from": "2010-01-04", "params": {"fast": 20}, "allow_gaps": true}"#
    let request = try JSONDecoder().decode(BacktestRequest.self, from: Data(json.utf8))
    #expect(request.strategy == .registered(name: "sma", version: 2))
    #expect(request.from == UTCCalendar.timestamp(year: 2010, month: 1, day: 4))
    #expect(request.to == nil)
    #expect(request.params == ["fast": 20])
    #expect(request.allowGaps)
    #expect(request.assertions.isEmpty)
    let again = try JSONDecoder().decode(BacktestRequest.self, from: try JSONEncoder().encode(request))
    #expect(again == request)
    let encoded = String(decoding: try JSONCoding.encoder.encode(request), as: UTF8.self)
    #expect(encoded.contains(#""from":"2010-01-04T00:00:00Z""#), "timestamps are ISO-8601 in JSON")
  }

  @Test func strategyReferenceForms() throws {
    func decode(_ json: String) throws -> StrategyReference { try JSONDecoder().decode(StrategyReference.self, from: Data(json.utf8)) }
    #expect(try decode(#""sma""#) == .registered(name: "sma", version: nil))
    #expect(try decode(#"{"spec": "name: x"}"#) == .inline(spec: "name: x", origin: nil))
    guard case .inline(let text, _) = try decode(#"{"spec": {"name": "x", "params": {"a": 1}}}"#) else {
      Issue.record("a spec object is an inline spec")
      return
    }
    #expect(text == #"{"name":"x","params":{"a":1}}"#)
    #expect(throws: DecodingError.self) { try decode(#"{"path": "/etc/passwd"}"#) }
  }

  @Test func gridRequestDefaults() throws {
    let request = try JSONDecoder().decode(GridRequest.self, from: Data(#"{"strategy": "sma", "axes": [{"name": "fast", "values": [5, 10]}]}"#.utf8))
    #expect(request.rank == "sharpe")
    #expect(request.top == 10)
    #expect(request.condition == nil)
    #expect(request.axes == [GridAxis(name: "fast", values: [5, 10])])
  }

  /// Resolving a registered strategy reads the store only: a changed file is not read, nor registered.
  @Test func resolvingNeverWrites() throws {
    let (context, directory) = try googStore()
    let path = directory + "/sma.yaml"
    try smaSpec.write(toFile: path, atomically: true, encoding: .utf8)
    _ = try StrategyOperations(context).register(name: "sma", path: path, text: smaSpec)
    try smaSpec.replacingOccurrences(of: "fast: 10", with: "fast: 11").write(toFile: path, atomically: true, encoding: .utf8)
    let loaded = try StrategyLoader.resolve(.registered(name: "sma", version: nil), database: context.database)
    #expect(loaded.spec.params?["fast"] == 10)
    #expect(try context.database.strategyVersions(name: "sma").count == 1)
  }

  @Test func errorCategoriesMapToExitCodesAndStatuses() {
    #expect(LeaseError.held(key: "dataset:X", holder: nil).exitStatus == .temporaryFailure)
    #expect(LeaseError.held(key: "dataset:X", holder: nil).category.httpStatus == 409)
    #expect(OperationCancelled(reason: .terminate).exitStatus == .terminated)
    #expect(DatasetError.notFound(name: "X", suggestion: nil).category.httpStatus == 404)
    #expect(ErrorHint("run anyway with {allow_gaps}; {{symbol}} stays").rendered { "--" + $0.replacingOccurrences(of: "_", with: "-") }
      == "run anyway with --allow-gaps; {symbol} stays")
    // No message names a flag: hints carry options, rendered by each front end.
    for error: any QtoolError in [
      BacktestError.gaps(dataset: "X", count: 1, first: "y"), DownloadError.fromRequired(dataset: "X"), OperationError.alreadyExists(path: "/x"),
      StoreError.notADatabase(path: "/x"), LeaseError.held(key: "dataset:X", holder: nil),
    ] {
      #expect(!error.message.contains("--"), "\(error.message)")
    }
  }
}
