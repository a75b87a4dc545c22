import Dispatch
import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Heartbeat and staleness (`live.*` settings).
struct LiveSettings {
  var heartbeatInterval: Int64 = 5_000
  var staleAfter: Int64 = 30_000

  init() {}
  init(settings: Settings) throws {
    heartbeatInterval = Int64(try settings.positiveNumber("live.heartbeat_interval", 5) * 1000)
    staleAfter = Int64(try settings.positiveNumber("live.stale_after", 30) * 1000)
  }
}

/// A strategy running live on paper: the one type the CLI (`strategy run`, and `strategy
/// start` detached) and a server both start and stop.
///
/// `start()` resolves the strategy (a spec given as text is registered as a version), takes the
/// runner's lease (`runner:NAME`: a second runner of the strategy is refused, naming the
/// holder; a runner whose process died has a free lease, so it is known dead, never guessed),
/// opens or continues the strategy's paper account and records the run. `run()` then feeds the
/// account its final bars — downloaded at each close, written by another process, or replayed —
/// one transaction per bar (signals, fills, positions, equity, cursor and notification outbox
/// together), delivers notifications on a thread of its own, and returns at the next bar
/// boundary after `stop()`, a stop request from another process (`strategy stop`), Ctrl-C or
/// SIGTERM, or when a replay runs out of bars.
///
/// ```swift
/// let runner = LiveRunner(LiveRunRequest(strategy: .registered(name: "goog-sma", version: nil), feed: .replay), settings: settings, context: context)
/// let started = try runner.start()
/// let summary = try runner.run()
/// ```
public final class LiveRunner: @unchecked Sendable {
  public struct Started: Codable, Sendable, Equatable {
    public var runID: String
    public var accountID: String
    public var strategy: String
    public var version: Int
    /// The account existed and is continued.
    public var continued: Bool
    /// The account is paused (`strategy pause`; a stop does not end it): no new entries and
    /// no notifications until `strategy resume`.
    public var paused: Bool
    enum CodingKeys: String, CodingKey { case runID = "run_id", accountID = "account_id", strategy, version, continued, paused }
  }

  public let request: LiveRunRequest
  let settings: Settings
  let context: OperationContext
  /// Cancelled by `stop()`, a stop request, or the context's own token (signals).
  let stopToken: CancellationToken
  private let emit: @Sendable (LiveEvent) -> Void

  private var started: Started?
  private var lease: Lease?
  private var trader: PaperTrader!
  private var stopFile = ""
  private var watcher: (any DispatchSourceTimer)?
  private var dispatcher: NotificationDispatcher?
  private let closeRequested = Atomic<Bool>(false)
  private var sessionBars = 0
  private var sessionSignals = 0
  private var sessionFills = 0
  private var lastWindow = LiveWindow.empty
  private var calendar = TradingCalendar.allDays
  private var models = ModelAttachments()

  public init(
    _ request: LiveRunRequest, settings: Settings, context: OperationContext, events: @escaping @Sendable (LiveEvent) -> Void = { _ in }
  ) {
    self.request = request
    self.settings = settings
    self.stopToken = CancellationToken(parent: context.cancellation)
    var own = context
    own.cancellation = stopToken
    self.context = own
    emit = events
  }

  private var database: QtoolDatabase { context.database }
  private var clock: any WallClock { context.clock }

  /// Asks the runner to stop at its next bar boundary.
  public func stop() { stopToken.cancel(.requested) }

  static func leaseKey(_ strategy: String) -> String { "runner:" + strategy }

  /// The file whose presence asks the runner of `strategy` to stop (written by `strategy stop`).
  static func stopFile(_ strategy: String, leases: LeaseManager) -> String { leases.path(leaseKey(strategy)) + ".stop" }

  // MARK: Starting

  public func start() throws -> Started {
    if let started { return started }
    try request.validate()
    let now = clock.now()
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    let name: String
    let version: Int
    switch request.strategy {
    case .registered(let registered, _):
      name = registered
      version = try database.strategyVersions(name: registered).first { $0.hash == loaded.hash }?.version ?? 1
    case .inline(_, let origin):
      name = loaded.spec.name
      let known = (try? database.strategyVersions(name: name)) ?? []
      let path = origin.flatMap { FileManager.default.fileExists(atPath: $0) ? URL(fileURLWithPath: $0).standardizedFileURL.path : nil }
      let type = (try? database.strategy(named: name).type) ?? "rules"
      version = try database.registerStrategy(name: name, type: type, path: path, specText: loaded.text, hash: loaded.hash, at: now)
      if !known.contains(where: { $0.hash == loaded.hash }) {
        emit(.note("registered \(name) v\(version)\(path.map { " from \($0)" } ?? "")"))
      }
    }
    var strategy = try PaperTrader.compile(loaded.spec, params: request.params, capital: request.capital, origin: loaded.origin)
    // model("name"): the latest ready version of each, loaded as `backtest run` loads it and
    // pinned for the run (a version trained meanwhile would change the decisions on bars
    // already traded); each signal records the versions.
    models = try ModelAttachments.load(strategy.modelNames, database: database, allowInSample: false)
    models.apply(to: &strategy)
    let spec = loaded.spec
    let isPortfolio = spec.portfolio != nil
    guard isPortfolio || spec.universe.symbols.count == 1 else { throw BacktestError.severalSymbols(count: spec.universe.symbols.count) }
    guard let timeframe = Timeframe(spec.universe.timeframe) else {
      throw SpecError.invalid("\(loaded.origin): universe.timeframe '\(spec.universe.timeframe)' is not a timeframe like 1m, 1h or 1d")
    }
    let symbols = spec.universe.symbols
    let datasetNames = spec.datasetNames
    let existing = datasetNames.map { try? database.dataset(named: $0) }
    let source = spec.universe.source ?? existing.compactMap { $0 }.first?.source
    calendar = existing.compactMap { $0 }.first?.parsedCalendar ?? TradingCalendar.guess(source: source ?? "", symbol: symbols[0])
    switch request.feed {
    case .download:
      let standard = symbols.map { "\($0)-\(timeframe)" }
      let stored = existing.compactMap { $0 }
      guard let source, LiveSources.names.contains(source), datasetNames == standard || isPortfolio else {
        let dataset = stored.first
        let origin =
          dataset.map { $0.origin == "imported" ? "imported from a file" : $0.origin == "derived" ? "derived by preprocessing" : "downloaded" }
          ?? "not stored yet, and the spec names no universe.source"
        throw LiveError.sourceCannotServeLive(dataset: datasetNames[0], source: source, origin: origin, liveSources: LiveSources.names)
      }
    case .replay:
      for (name, dataset) in zip(datasetNames, existing) where dataset == nil { _ = try database.dataset(named: name) }
      // Before any account is opened (or, with a new account, the old one closed).
      let from = request.from ?? .min
      if !existing.contains(where: { ($0?.lastTs ?? .min) >= from && $0?.lastTs != nil }) {
        let after = request.from.map { " from \(UTCCalendar.format($0)) on" } ?? ""
        throw LiveError.nothingToReplay(dataset: datasetNames.joined(separator: ", ") + after)
      }
    case .store:
      break
    }
    if !models.predictors.isEmpty {
      // The account trades from its first bar on, open-ended: refused, as `backtest run` is,
      // when a split model trained on any of those bars.
      let account = request.newAccount ? nil : try database.openAccount(strategy: name)
      let firstStored = existing.compactMap { $0?.firstTs }.min()
      let first: Int64?
      if let account {
        first = account.fromTs ?? firstStored
      } else {
        first = request.from ?? (request.feed == .replay ? firstStored : Self.barOpen(containing: now, timeframe: timeframe))
      }
      try models.checkOutOfSample(from: first ?? Self.barOpen(containing: now, timeframe: timeframe), to: nil, allowInSample: false)
    }

    lease = try context.leases.acquire(
      Self.leaseKey(name), holder: LeaseHolder.current(jobID: nil, purpose: "strategy run \(name) (\(request.feed.rawValue) feed)", at: now),
      wait: false)
    do {
      return try open(name: name, version: version, loaded: loaded, strategy: strategy, symbols: symbols, datasetNames: datasetNames, source: source)
    } catch {
      lease?.release()
      lease = nil
      throw error
    }
  }

  private func open(
    name: String, version: Int, loaded: LoadedSpec, strategy: CompiledStrategy, symbols: [String], datasetNames: [String], source: String?
  ) throws -> Started {
    let now = clock.now()
    // Holding the lease, every run of this strategy the rows call active is dead.
    try LiveOperations(context).markDead(strategy: name, because: "its process ended without stopping it")
    stopFile = Self.stopFile(name, leases: context.leases)
    unlink(stopFile)

    var account = try database.openAccount(strategy: name)
    var continued = false
    if let existing = account, !request.newAccount {
      func mismatch(_ what: String, _ stored: String, _ asked: String) -> LiveError {
        .accountMismatch(strategy: name, what: what, account: stored, requested: asked)
      }
      if existing.strategyVersion != version { throw mismatch("version", "v\(existing.strategyVersion)", "v\(version)") }
      let params = PaperTrader.decodeParams(existing.params)
      if !request.params.isEmpty, request.params != params { throw mismatch("params", Self.describe(params), Self.describe(request.params)) }
      if let capital = request.capital, capital != existing.capital { throw mismatch("capital", "\(existing.capital)", "\(capital)") }
      if let from = request.from, from != existing.fromTs {
        throw mismatch("first bar", existing.fromTs.map { UTCCalendar.format($0) } ?? "the first stored bar", UTCCalendar.format(from))
      }
      continued = true
    } else {
      let timeframe = Timeframe(loaded.spec.universe.timeframe)!
      let from = request.from ?? (request.feed == .replay ? nil : Self.barOpen(containing: now, timeframe: timeframe))
      let encoder = JSONCoding.encoder
      let record = PaperAccountRecord(
        id: "pa_" + JobRunner.randomHex(12), strategyName: name, strategyVersion: version, specHash: loaded.hash, specText: loaded.text,
        params: String(decoding: try encoder.encode(request.params), as: UTF8.self), capital: strategy.capital, timeframe: timeframe.description,
        symbols: String(decoding: try encoder.encode(symbols), as: UTF8.self),
        datasets: String(decoding: try encoder.encode(datasetNames), as: UTF8.self), source: source, fromTs: from, cash: strategy.capital,
        equity: strategy.capital, createdAt: now, updatedAt: now)
      try database.createAccount(record, closingOpen: true)
      if account != nil { emit(.note("closed the previous paper account of \(name) (\(account!.id)) and opened \(record.id)")) }
      account = record
    }
    let runID = "lr_" + JobRunner.randomHex(12)
    try database.insertStrategyRun(
      StrategyRunRecord(
        id: runID, accountID: account!.id, strategyName: name, feed: request.feed.rawValue,
        request: String(decoding: try JSONCoding.encoder.encode(request), as: UTF8.self), status: "running", pid: Int(getpid()),
        host: ProcessIdentity.host, logPath: request.logPath, startedAt: now, heartbeatAt: now, finishedAt: nil, stopRequestedAt: nil,
        closePositions: false, barsProcessed: 0, lastBarTs: nil, staleRounds: 0, divergences: 0, note: nil, error: nil))
    if account!.paused { try database.setStrategyStatus(name, "paused", at: now) }
    trader = try PaperTrader(
      account: account!, feed: request.feed, runID: runID, lateAfterBars: request.lateAfterBars, notifyLate: request.notifyLate, models: models)
    let result = Started(runID: runID, accountID: account!.id, strategy: name, version: version, continued: continued, paused: account!.paused)
    started = result
    emit(
      .started(
        runID: runID, accountID: account!.id, strategy: name, version: version, feed: request.feed, continued: continued, cursor: account!.cursorTs))
    if account!.paused {
      // A pause belongs to the account and outlives its runs: a new run says so, or it would
      // look like a runner that signals and never trades.
      emit(.warning("paper account \(account!.id) is paused: no new entries and no notifications until `qtool strategy resume \(name)`"))
    }
    return result
  }

  static func describe(_ params: [String: Double]) -> String {
    params.isEmpty ? "none" : params.keys.sorted().map { "\($0)=\(params[$0]!)" }.joined(separator: ",")
  }

  /// The open time of the bar forming at `time`.
  static func barOpen(containing time: Int64, timeframe: Timeframe) -> Int64 {
    switch timeframe.unit {
    case .month:
      let (year, month, _, _) = UTCCalendar.components(time)
      let index = (year * 12 + month - 1) / timeframe.count * timeframe.count
      return UTCCalendar.timestamp(year: index / 12, month: index % 12 + 1, day: 1)
    case .week:
      let origin: Int64 = 4 * 86_400_000  // a Monday
      let length = timeframe.milliseconds
      return origin + ((time - origin) / length - ((time - origin) % length < 0 ? 1 : 0)) * length
    default:
      let length = timeframe.milliseconds
      return (time / length - (time % length < 0 ? 1 : 0)) * length
    }
  }

  // MARK: Running

  /// Runs until stopped; see the type's description. Throws what made it fail (the run is
  /// then recorded as failed).
  public func run() throws -> LiveRunSummary {
    let started = try start()
    let liveSettings = try LiveSettings(settings: settings)
    let notify = try NotifySettings(settings: settings)
    startWatching(started, interval: liveSettings.heartbeatInterval)
    let dispatcher = NotificationDispatcher(strategy: started.strategy, database: database, clock: clock, settings: notify, logger: context.logger)
    self.dispatcher = dispatcher
    dispatcher.start()
    var status = "stopped"
    var failure: (any Error)?
    do {
      switch request.feed {
      case .replay: status = try runReplay()
      case .store: status = try runStore()
      case .download: status = try runDownload()
      }
    } catch is OperationCancelled where stopToken.isCancelled {
      status = "stopped"
    } catch {
      failure = error
    }
    var settleFailure: (any Error)?
    if failure == nil, closeRequested.load(ordering: .relaxed) {
      do { try settle() } catch { settleFailure = error }
    }
    dispatcher.wake()
    dispatcher.stop(grace: 2_000)
    watcher?.cancel()
    let failed = failure ?? settleFailure
    let errorJSON = failed.map { error -> String in
      let report = (error as? any QtoolError)?.report ?? ErrorReport(code: "internal", category: .internal, message: "\(error)")
      return String(decoding: (try? JSONCoding.encoder.encode(report)) ?? Data(), as: UTF8.self)
    }
    do {
      try database.finishStrategyRun(id: started.runID, status: failed == nil ? status : "failed", error: errorJSON, at: clock.now())
    } catch {
      context.logger.warning("could not record the end of run \(started.runID): \(error)")
    }
    unlink(stopFile)
    // The store whole in its file before `strategy stop`, waiting on the lease, hears the runner
    // is gone: after that the process only prints its summary and exits.
    database.checkpoint()
    lease?.release()
    lease = nil
    if let failed { throw failed }
    let account = try database.account(id: started.accountID)
    return LiveRunSummary(
      runID: started.runID, accountID: started.accountID, strategy: started.strategy, status: status, barsProcessed: sessionBars,
      signals: sessionSignals, fills: sessionFills, equity: account.equity,
      lastBar: account.cursorTs.map { UTCCalendar.format($0, alwaysTime: true) }, paused: account.paused)
  }

  /// Heartbeats, and stop requests from other processes: the stop file (seen within 100 ms)
  /// and the run's row.
  private func startWatching(_ started: Started, interval: Int64) {
    let timer = DispatchSource.makeTimerSource(queue: .global())
    let (file, database, clock, token, runID) = (stopFile, database, clock, stopToken, started.runID)
    nonisolated(unsafe) var lastBeat = clock.now()
    nonisolated(unsafe) var ticks = 0
    timer.schedule(deadline: .now() + .milliseconds(100), repeating: .milliseconds(100))
    timer.setEventHandler { [self] in
      ticks += 1
      if access(file, F_OK) == 0 {
        if let text = try? String(contentsOfFile: file, encoding: .utf8), text.contains("close") { closeRequested.store(true, ordering: .relaxed) }
        token.cancel(.requested)
      }
      let now = clock.now()
      if now - lastBeat >= interval {
        lastBeat = now
        try? database.heartbeat(runID: runID, at: now)
      }
      if ticks % 5 == 0, let row = try? database.strategyRun(id: runID), row.stopRequestedAt != nil {
        if row.closePositions { closeRequested.store(true, ordering: .relaxed) }
        token.cancel(.requested)
      }
    }
    timer.resume()
    watcher = timer
  }

  private var stopping: Bool { stopToken.isCancelled }

  /// Sleeps `milliseconds`; false when the runner was asked to stop meanwhile.
  private func pause(_ milliseconds: Int64) -> Bool {
    do {
      try clock.sleep(milliseconds: max(0, milliseconds), cancellation: stopToken)
      return true
    } catch {
      return false
    }
  }

  private func load() throws -> LiveWindow {
    let window = try trader.loadWindow(BacktestOperations(context))
    lastWindow = window
    return window
  }

  /// The index of the first bar after the account's cursor.
  private func nextIndex(_ window: LiveWindow) throws -> Int {
    trader.firstUnprocessed(in: window, cursor: try database.account(id: trader.account.id).cursorTs)
  }

  // MARK: Feeds

  /// The stored bars one by one, as if each had just closed.
  private func runReplay() throws -> String {
    let window = try load()
    if window.isEmpty, let cursor = try database.account(id: trader.account.id).cursorTs {
      // A continued account that has traded every stored bar: the bars exist, the account is done.
      emit(.running(runID: started!.runID))
      emit(.note("nothing left to replay: the account's last bar is \(UTCCalendar.format(cursor, alwaysTime: true)); replay again on a new account with --new-account"))
      return "completed"
    }
    guard !window.isEmpty else { throw LiveError.nothingToReplay(dataset: trader.datasetNames.joined(separator: ", ")) }
    emit(.running(runID: started!.runID))
    var k = try nextIndex(window)
    if k >= window.timestamps.count {
      emit(
        .note(
          "nothing left to replay: the account's last bar is \(UTCCalendar.format(window.timestamps[window.timestamps.count - 1], alwaysTime: true)); replay again on a new account with --new-account"
        ))
      return "completed"
    }
    let interval = request.speed.map { Int64((1000 / $0).rounded()) }
    while k < window.timestamps.count {
      if stopping { return "stopped" }
      if let interval, !pause(interval) { return "stopped" }
      try process(window, k, feedNow: trader.closeTime(window.timestamps[k]))
      k += 1
    }
    emit(.note("replay finished: the stored bars ran out at \(UTCCalendar.format(window.timestamps[k - 1], alwaysTime: true))"))
    return "completed"
  }

  /// Bars another process stores: the store's data version is polled every 100 ms, and a
  /// stored bar is processed once its close has passed.
  private func runStore() throws -> String {
    let watcher = database.isInMemory ? nil : try StoreChangeWatcher(path: database.path)
    var window = try load()
    emit(.running(runID: started!.runID))
    if window.isEmpty {
      let from = trader.account.fromTs.map { " from \(UTCCalendar.format($0, alwaysTime: true)) on" } ?? ""
      emit(.note("waiting for bars of \(trader.datasetNames.joined(separator: ", "))\(from) to be stored"))
    }
    while true {
      try processFinal(window)
      if request.once { return "completed" }
      if stopping { return "stopped" }
      let k = try nextIndex(window)
      let nextClose = k < window.timestamps.count ? trader.closeTime(window.timestamps[k]) : nil
      while true {
        guard pause(100) else { return "stopped" }
        if (try watcher?.changed()) ?? true { break }
        if let nextClose, clock.now() >= nextClose { break }
      }
      window = try load()
    }
  }

  /// Downloads each new bar at its close plus the settle delay, asking again with doubling
  /// waits while it is not there, then logging stale data and waiting for the next close —
  /// the missed bar is caught up when it arrives, never skipped.
  private func runDownload() throws -> String {
    try download(initial: true)
    var window = try load()
    emit(.running(runID: started!.runID))
    while true {
      try processFinal(window)
      if request.once { return "completed" }
      if stopping { return "stopped" }
      let expected = expectedBar(after: window)
      let target = trader.closeTime(expected) + request.settleMilliseconds
      guard pause(target - clock.now()) else { return "stopped" }
      var attempt = 0
      while true {
        try? download(initial: false)
        if stopping { return "stopped" }
        window = try load()
        try processFinal(window)
        if let last = window.timestamps.last, last >= expected { break }
        attempt += 1
        if attempt > request.retries {
          let message =
            "stale data: the \(trader.timeframe) bar of \(UTCCalendar.format(expected, alwaysTime: true)) is not there \(Self.duration(clock.now() - trader.closeTime(expected))) after its close (\(attempt) tries); it is caught up when it arrives"
          emit(.warning(message))
          context.logger.warning("\(message)")
          try? database.heartbeat(runID: started!.runID, at: clock.now(), note: message, staleRound: true)
          break
        }
        let wait = min(60_000, max(1_000, request.settleMilliseconds) << min(attempt, 6), max(1_000, trader.timeframe.milliseconds / 2))
        guard pause(wait) else { return "stopped" }
      }
    }
  }

  static func duration(_ milliseconds: Int64) -> String {
    let seconds = Double(milliseconds) / 1000
    if seconds < 120 { return String(format: "%.0f s", seconds) }
    if seconds < 7200 { return String(format: "%.0f min", seconds / 60) }
    return String(format: "%.1f h", seconds / 3600)
  }

  /// The bar expected after the window's last (or at the account's first bar), on the
  /// dataset's calendar.
  private func expectedBar(after window: LiveWindow) -> Int64 {
    guard let last = window.timestamps.last else {
      return trader.account.fromTs ?? Self.barOpen(containing: clock.now(), timeframe: trader.timeframe)
    }
    var next = trader.timeframe.next(after: last)
    var guardCount = 0
    while !calendar.isTradingTime(next), guardCount < 14 {
      next = trader.timeframe.next(after: next)
      guardCount += 1
    }
    return next
  }

  /// One incremental download of the account's symbols: from the bar after the last stored
  /// (or enough history to warm up on). At start, a source that cannot be reached is an error.
  private func download(initial: Bool) throws {
    guard let source = trader.source else { return }
    let timeframe = trader.timeframe
    let (warmup, _) = trader.strategy.warmup
    var from = Int64.max
    for name in trader.datasetNames {
      if let dataset = try? database.dataset(named: name), let last = dataset.lastTs {
        from = min(from, timeframe.next(after: last))
      } else {
        let start = trader.account.fromTs ?? Self.barOpen(containing: clock.now(), timeframe: timeframe)
        let bars = Int64(warmup + 5) * (calendar == .weekdays ? 7 : 5) / 5 + 2
        from = min(from, start - bars * timeframe.milliseconds)
      }
    }
    let request = DownloadRequest(
      source: source, symbols: trader.symbols, timeframe: timeframe, from: from, jobs: 2, wait: false,
      retry: RetryPolicy(maxAttempts: 2, baseDelay: 0.5, maxDelay: 2))
    do {
      let report = try DataOperations(context).download(request, settings: settings)
      if let failure = report.failure {
        let allFailed = report.symbols.allSatisfy { $0.status == "failed" }
        if initial, allFailed, report.barsAdded == 0 { throw LiveError.sourceUnreachable(source: source, reason: failure.message) }
        context.logger.info("download: \(failure.message)")
      }
    } catch let error as LeaseError {
      // Another process is writing these bars: they will be there when it is done.
      context.logger.info("download skipped: \(error.message)")
    } catch let error as LiveError {
      throw error
    } catch let error as OperationCancelled {
      throw error
    } catch let error as FetchError where initial {
      throw LiveError.sourceUnreachable(source: source, reason: error.message)
    } catch let error as any QtoolError where initial && (error.category == .usage || error.category == .unavailable) {
      throw error
    } catch {
      if initial { throw LiveError.sourceUnreachable(source: source, reason: "\(error)") }
      context.logger.warning("download failed: \(error)")
    }
  }

  /// Processes every stored bar after the cursor whose close has passed.
  private func processFinal(_ window: LiveWindow) throws {
    var k = try nextIndex(window)
    while k < window.timestamps.count, trader.closeTime(window.timestamps[k]) <= clock.now() {
      if stopping { return }
      try process(window, k, feedNow: clock.now())
      k += 1
    }
  }

  /// Decides bar `k` and commits everything it changes in one transaction.
  private func process(_ window: LiveWindow, _ k: Int, feedNow: Int64) throws {
    let account = try database.account(id: trader.account.id)
    guard account.status == "open" else { throw LiveError.noAccount(strategy: account.strategyName) }
    let t = window.timestamps[k]
    if let cursor = account.cursorTs, t <= cursor { return }
    let pauses = try database.pauses(accountID: account.id)
    let openPause = pauses.last.map { $0.to == nil } ?? false
    let begins = account.paused && !openPause
    let ends = !account.paused && openPause
    var ranges = pauses.map { $0.from..<max($0.from, $0.to ?? .max) }
    if begins { ranges.append(t..<Int64.max) }
    if ends, let last = ranges.indices.last { ranges[last] = ranges[last].lowerBound..<max(ranges[last].lowerBound, t) }
    let held = try database.positions(accountID: account.id)
    let now = clock.now()
    let outcome = try trader.decide(window, at: k, held: held, suspensions: EntrySuspensions(ranges), feedNow: feedNow, now: now)
    try context.hooks.checkpoint("live.bar", sessionBars, cancellation: stopToken)
    if let divergence = outcome.divergence {
      emit(.warning(divergence))
      context.logger.warning("\(divergence)")
    }
    let committed = try database.commitBar(
      BarCommit(
        accountID: account.id, runID: started?.runID, barTs: t, cash: outcome.cash, equity: outcome.equity, halted: outcome.halted,
        positions: outcome.positions, fills: outcome.fills, signals: outcome.signals, pauseBegins: begins, pauseEnds: ends, notify: !account.paused,
        notifyLate: request.notifyLate, note: outcome.divergence, diverged: outcome.divergence != nil, now: now))
    guard committed.written else { return }
    sessionBars += 1
    sessionSignals += committed.signals
    sessionFills += outcome.fills.count
    if committed.notifications > 0 { dispatcher?.wake() }
    if begins { emit(.note("paused from \(UTCCalendar.format(t, alwaysTime: true)): no new entries, no notifications")) }
    if ends { emit(.note("resumed from \(UTCCalendar.format(t, alwaysTime: true))")) }
    for signal in outcome.signals { emit(.signal(SignalInfo(signal))) }
    for fill in outcome.fills { emit(.fill(FillInfo(fill))) }
    emit(.bar(time: t, equity: outcome.equity, signals: outcome.signals.count))
  }

  /// `stop --close-positions`: closes what the account holds at the last processed bar's
  /// closes (reason manual) and closes the account.
  private func settle() throws {
    let account = try database.account(id: trader.account.id)
    guard account.status == "open" else { return }
    let positions = try database.positions(accountID: account.id)
    let closed = try LiveOperations(context).settle(account: account, positions: positions, trader: trader, window: lastWindow)
    for fill in closed.fills { emit(.fill(FillInfo(fill))) }
    for signal in closed.signals { emit(.signal(SignalInfo(signal))) }
    emit(.note("closed the paper account \(account.id): equity \(String(format: "%.2f", closed.equity))"))
    dispatcher?.wake()
  }
}
