import Foundation
import QtoolCore
import QtoolData
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// What `strategy stop` did.
public struct StopReport: Codable, Sendable, Equatable {
  public var strategy: String
  public var runID: String?
  /// running (asked and stopped), dead (its process was gone: the run is marked failed), or
  /// not_running.
  public var was: String
  /// The run's status after.
  public var status: String?
  /// The fills that closed the positions (`close_positions`).
  public var closed: [FillInfo]
  public var equity: Double?

  enum CodingKeys: String, CodingKey { case strategy, runID = "run_id", was, status, closed, equity }
}

/// A notification channel as `signals notify add` takes it and the API's POST body.
public struct ChannelRequest: Codable, Sendable, Equatable {
  public var name: String
  public var kind: ChannelKind
  public var config: ChannelConfig
  public var filter: SignalFilter
  public var includeLate: Bool

  public init(name: String, kind: ChannelKind, config: ChannelConfig, filter: SignalFilter = SignalFilter(), includeLate: Bool = false) {
    self.name = name
    self.kind = kind
    self.config = config
    self.filter = filter
    self.includeLate = includeLate
  }

  enum CodingKeys: String, CodingKey { case name, kind, config, filter, includeLate = "include_late" }
}

/// A channel as listed: its settings (secrets only by where they are read from), its filters,
/// and how its notifications fared.
public struct ChannelInfo: Codable, Sendable, Equatable {
  public var name: String
  public var kind: String
  public var config: ChannelConfig
  public var filter: SignalFilter
  public var includeLate: Bool
  public var enabled: Bool
  public var createdAt: String
  /// Notifications by status: pending, delivered, dead.
  public var notifications: [String: Int]

  enum CodingKeys: String, CodingKey {
    case name, kind, config, filter, includeLate = "include_late", enabled, createdAt = "created_at", notifications
  }
}

/// What `signals notify test` got back.
public struct ChannelTestReport: Codable, Sendable, Equatable {
  public var channel: String
  public var delivered: Bool
  public var outcome: String
  public var status: Int?
  public var latencyMs: Int64
  public var error: String?
  enum CodingKeys: String, CodingKey { case channel, delivered, outcome, status, latencyMs = "latency_ms", error }
}

/// One notification and its attempts.
public struct NotificationInfo: Codable, Sendable, Equatable {
  public struct Attempt: Codable, Sendable, Equatable {
    public var attempt: Int
    public var at: String
    public var latencyMs: Int64
    public var status: Int?
    public var outcome: String
    public var error: String?
    enum CodingKeys: String, CodingKey { case attempt, at, latencyMs = "latency_ms", status, outcome, error }
  }
  public var id: Int64
  public var signalID: String
  public var channel: String
  /// pending, delivered, dead.
  public var status: String
  public var attempts: Int
  public var createdAt: String
  public var deliveredAt: String?
  public var nextAttemptAt: String?
  public var lastError: String?
  public var history: [Attempt]

  enum CodingKeys: String, CodingKey {
    case id, signalID = "signal_id", channel, status, attempts, createdAt = "created_at", deliveredAt = "delivered_at"
    case nextAttemptAt = "next_attempt_at", lastError = "last_error", history
  }
}

/// A paper account in full: its summary, fills, closed trades and equity at every bar.
public struct AccountDetail: Codable, Sendable, Equatable {
  public struct EquityPoint: Codable, Sendable, Equatable {
    public var time: String
    public var equity: Double
    public var cash: Double
  }
  public var strategy: String
  public var account: AccountInfo
  public var fills: [FillInfo]
  public var trades: [PaperTrade]
  public var equityCurve: [EquityPoint]
  /// The curve's bar times (epoch milliseconds) and equity, for callers comparing runs.
  public var timestamps: [Int64] { equityTimes }
  public var equity: [Double] { equityCurve.map(\.equity) }
  var equityTimes: [Int64] = []

  enum CodingKeys: String, CodingKey { case strategy, account, fills, trades, equityCurve = "equity_curve" }

  init(strategy: String, account: AccountInfo, fills: [FillInfo], trades: [PaperTrade], timestamps: [Int64], equity: [Double], cash: [Double]) {
    self.strategy = strategy
    self.account = account
    self.fills = fills
    self.trades = trades
    equityTimes = timestamps
    equityCurve = timestamps.indices.map {
      EquityPoint(time: UTCCalendar.format(timestamps[$0], alwaysTime: true), equity: equity[$0], cash: cash[$0])
    }
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    strategy = try container.decode(String.self, forKey: .strategy)
    account = try container.decode(AccountInfo.self, forKey: .account)
    fills = try container.decode([FillInfo].self, forKey: .fills)
    trades = try container.decode([PaperTrade].self, forKey: .trades)
    equityCurve = try container.decode([EquityPoint].self, forKey: .equityCurve)
    equityTimes = equityCurve.compactMap { TimestampParser.parse($0.time) }
  }
}

/// `strategy status|stop|pause|resume`, `signals …` and the API's routes for them: the
/// state of runners and paper accounts, read from the store, and control by request (a stop
/// file and a row the runner watches — never a signal to a pid that may have been reused).
public struct LiveOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  // MARK: Status

  /// The status of `strategy`'s runner and account, or of every strategy that has run.
  public func status(strategy: String? = nil, settings: Settings? = nil) throws -> [RunnerStatus] {
    let staleAfter = try settings.map { try LiveSettings(settings: $0).staleAfter } ?? LiveSettings().staleAfter
    reconcileQuietly()
    var names: [String]
    if let strategy {
      names = [strategy]
    } else {
      names = Set(try database.accountStrategyNames() + (try database.activeStrategyRuns().map(\.strategyName))).sorted()
    }
    return try names.map { try status(of: $0, staleAfter: staleAfter, single: strategy != nil) }
  }

  private func status(of name: String, staleAfter: Int64, single: Bool) throws -> RunnerStatus {
    let now = context.clock.now()
    let run = try database.latestRun(strategy: name)
    let account = try database.latestAccount(strategy: name)
    if run == nil, account == nil {
      _ = try database.strategy(named: name)  // 66 for an unknown name
      return RunnerStatus(strategy: name, status: "idle", signals24h: 0)
    }
    var status = run?.status ?? "idle"
    var error = run?.error.flatMap { try? JSONDecoder().decode(ErrorReport.self, from: Data($0.utf8)) }
    var note = run?.note
    if let run, run.isActive {
      let age = run.heartbeatAt.map { now - $0 } ?? .max
      if isGone(run) {
        status = "dead"
        error = error ?? Self.goneReport(run)
      } else if age > staleAfter {
        status = "dead"
        note = "no heartbeat for \(LiveRunner.duration(age)) (its lease is still held: the process may be stopped or hung)"
      } else if run.status == "stopping" {
        status = "stopping"
      } else if account?.paused == true, account?.status == "open" {
        status = "paused"
      }
    }
    let active = status == "running" || status == "paused" || status == "stopping"
    let timeframe = account.flatMap { Timeframe($0.timeframe) }
    let lag = active ? account?.cursorTs.flatMap { cursor in timeframe.map { Double(now - $0.next(after: cursor)) / 1000 } } : nil
    return RunnerStatus(
      strategy: name, status: status, runID: run?.id, runStatus: status == "dead" ? "failed" : run?.status, feed: run?.feed, pid: run?.pid,
      host: run?.host,
      startedAt: run.map { UTCCalendar.format($0.startedAt, alwaysTime: true) },
      finishedAt: run?.finishedAt.map { UTCCalendar.format($0, alwaysTime: true) },
      heartbeatAt: run?.heartbeatAt.map { UTCCalendar.format($0, alwaysTime: true) },
      heartbeatAgeSeconds: active ? run?.heartbeatAt.map { Double(now - $0) / 1000 } : nil,
      lastBar: account?.cursorTs.map { UTCCalendar.format($0, alwaysTime: true) }, lagSeconds: lag, barsProcessed: run?.barsProcessed,
      staleRounds: run?.staleRounds, divergences: run?.divergences, note: note,
      signals24h: try database.signalCount(strategy: name, since: now - 86_400_000), account: try account.map { try accountInfo($0) },
      logPath: run?.logPath, error: error)
  }

  static func goneReport(_ run: StrategyRunRecord) -> ErrorReport {
    ErrorReport(
      code: "process_gone", category: .failure,
      message: "the runner's process (pid \(run.pid.map(String.init) ?? "?") on \(run.host ?? "?")) ended without stopping it",
      details: ["pid": run.pid.map { JSONValue($0) } ?? .null, "host": JSONValue(run.host)])
  }

  /// An account's summary, its positions valued at the last processed bar's close.
  func accountInfo(_ account: PaperAccountRecord) throws -> AccountInfo {
    let positions = try database.positions(accountID: account.id)
    let fills = try database.fills(accountID: account.id)
    let datasets = (try? JSONDecoder().decode([String].self, from: Data(account.datasets.utf8))) ?? []
    let symbols = (try? JSONDecoder().decode([String].self, from: Data(account.symbols.utf8))) ?? []
    let prices = try lastPrices(account, symbols: positions.map(\.symbol))
    let exits = fills.filter { $0.pnl != nil }
    return AccountInfo(
      id: account.id, strategyVersion: account.strategyVersion, status: account.status, capital: account.capital, cash: account.cash,
      equity: account.equity, returnPct: account.equity / account.capital - 1,
      positions: positions.map { position in
        let price = prices[position.symbol]
        return PositionInfo(
          symbol: position.symbol, side: position.side, size: position.size, entryTime: UTCCalendar.format(position.entryTs, alwaysTime: true),
          entryPrice: position.entryPrice, stop: position.stop, target: position.target, lastPrice: price,
          unrealizedPnl: price.map { (position.side == "long" ? 1 : -1) * position.size * ($0 - position.entryPrice) })
      }, from: account.fromTs.map { UTCCalendar.format($0, alwaysTime: true) },
      lastBar: account.cursorTs.map { UTCCalendar.format($0, alwaysTime: true) },
      fills: fills.count, trades: exits.count, realizedPnl: exits.reduce(0) { $0 + ($1.pnl ?? 0) }, paused: account.paused, halted: account.halted,
      symbols: symbols, timeframe: account.timeframe, datasets: datasets, createdAt: UTCCalendar.format(account.createdAt, alwaysTime: true))
  }

  /// The close of each symbol's bar at the account's cursor.
  func lastPrices(_ account: PaperAccountRecord, symbols: [String]) throws -> [String: Double] {
    guard let cursor = account.cursorTs, !symbols.isEmpty else { return [:] }
    let datasets = (try? JSONDecoder().decode([String].self, from: Data(account.datasets.utf8))) ?? []
    let allSymbols = (try? JSONDecoder().decode([String].self, from: Data(account.symbols.utf8))) ?? []
    var prices: [String: Double] = [:]
    for symbol in symbols {
      let name = allSymbols.count == 1 ? datasets.first : datasets.first { $0 == "\(symbol)-\(account.timeframe)" }
      guard let name, let dataset = try? database.dataset(named: name) else { continue }
      let bars = try database.bars(datasetID: dataset.id, from: cursor, to: cursor + 1)
      if let close = bars.close.first { prices[symbol] = close }
    }
    return prices
  }

  /// A strategy's paper account in full (the latest one).
  public func account(strategy: String) throws -> AccountDetail {
    guard let account = try database.latestAccount(strategy: strategy) else {
      _ = try database.strategy(named: strategy)
      throw LiveError.noAccount(strategy: strategy)
    }
    let fills = try database.fills(accountID: account.id)
    var open: [String: PaperFillRecord] = [:]
    var trades: [PaperTrade] = []
    for fill in fills {
      if fill.action.hasPrefix("enter_") {
        open[fill.symbol] = fill
      } else if let entry = open.removeValue(forKey: fill.symbol) {
        trades.append(
          PaperTrade(
            symbol: fill.symbol, side: entry.action == "enter_long" ? "long" : "short", size: entry.size, entryTime: entry.ts,
            entryPrice: entry.price,
            exitTime: fill.ts, exitPrice: fill.price, pnl: fill.pnl ?? 0, reason: fill.reason))
      }
    }
    let curve = try database.equityCurve(accountID: account.id)
    return AccountDetail(
      strategy: strategy, account: try accountInfo(account), fills: fills.map(FillInfo.init), trades: trades, timestamps: curve.timestamps,
      equity: curve.equity, cash: curve.cash)
  }

  /// Every run of `strategy`, newest first (a run whose process is gone is marked failed first).
  public func runs(strategy: String) throws -> [RunInfo] {
    reconcileQuietly()
    let runs = try database.strategyRuns(strategy: strategy)
    if runs.isEmpty { _ = try database.strategy(named: strategy) }  // 66 for an unknown name
    // A reader that cannot write shows a gone runner's run as failed, as `status` does, even
    // though it cannot record it.
    return runs.map { run in
      var info = RunInfo(run)
      if isGone(run) {
        info.status = "failed"
        info.error = Self.goneReport(run)
      }
      return info
    }
  }

  /// The positions of `strategy`'s latest paper account, valued at its last processed bar's
  /// close (what `strategy status NAME` shows); none before it first ran.
  public func positions(strategy: String) throws -> [PositionInfo] {
    guard let account = try database.latestAccount(strategy: strategy) else {
      _ = try database.strategy(named: strategy)
      return []
    }
    return try accountInfo(account).positions
  }

  /// The equity and cash of `strategy`'s latest paper account at every processed bar, oldest
  /// first; none before it first ran.
  public func equity(strategy: String) throws -> [AccountDetail.EquityPoint] {
    try equity(strategy: strategy, offset: 0, limit: -1).points
  }

  /// `limit` points of that curve from the `offset`-th (-1: all), and how many there are: a
  /// page read from the store, not cut from the whole curve (a year of minute bars is 500k points).
  public func equity(strategy: String, offset: Int, limit: Int) throws -> (points: [AccountDetail.EquityPoint], total: Int) {
    guard let account = try database.latestAccount(strategy: strategy) else {
      _ = try database.strategy(named: strategy)
      return ([], 0)
    }
    let curve = try database.equityCurve(accountID: account.id, offset: offset, limit: limit)
    let points = curve.timestamps.indices.map {
      AccountDetail.EquityPoint(time: UTCCalendar.format(curve.timestamps[$0], alwaysTime: true), equity: curve.equity[$0], cash: curve.cash[$0])
    }
    let total = limit < 0 ? points.count : try database.equityPointCount(accountID: account.id)
    return (points, total)
  }

  /// The last `lines` lines of the log of `strategy`'s latest run that has one (a runner that
  /// `strategy start` detached logs to `$QTOOL_HOME/logs/NAME.log`; one in a terminal logs to
  /// its stderr). Only logs in that directory are read: a run's row names its log, and a
  /// row is no reason to read any file.
  public func log(strategy: String, lines: Int, settings: Settings) throws -> RunLog {
    let runs = try self.runs(strategy: strategy)
    guard let run = runs.first(where: { $0.logPath != nil }) ?? runs.first else {
      return RunLog(strategy: strategy, runID: nil, log: nil, lines: [], truncated: false)
    }
    let directory = URL(fileURLWithPath: settings.home).appendingPathComponent("logs").standardizedFileURL.resolvingSymlinksInPath().path + "/"
    guard let path = run.logPath, URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path.hasPrefix(directory),
      let handle = FileHandle(forReadingAtPath: path)
    else {
      return RunLog(strategy: strategy, runID: run.id, log: nil, lines: [], truncated: false)
    }
    defer { try? handle.close() }
    // The end of the file is enough: at most 4 MiB are read, whatever the log's size.
    let size = (try? handle.seekToEnd()) ?? 0
    let start = size > 4 << 20 ? size - (4 << 20) : 0
    try? handle.seek(toOffset: start)
    let data = (try? handle.readToEnd()) ?? Data()
    var all = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    if all.last == "" { all.removeLast() }
    if start > 0, !all.isEmpty { all.removeFirst() }  // a line cut by the 4 MiB window
    let kept = Array(all.suffix(lines))
    return RunLog(strategy: strategy, runID: run.id, log: path, lines: kept, truncated: start > 0 || kept.count < all.count)
  }

  // MARK: Dead runners

  /// True when `run` is active, of this host, and its runner's lease is free: the kernel freed
  /// it, so the process is gone (a lease of another host cannot be seen from here).
  func isGone(_ run: StrategyRunRecord) -> Bool {
    guard run.isActive, run.host == ProcessIdentity.host, case .free = context.leases.state(of: LiveRunner.leaseKey(run.strategyName)) else {
      return false
    }
    return true
  }

  /// Marks failed the active runs whose process is gone (`isGone`), and says how many it
  /// marked. Readers that cannot write only report them.
  @discardableResult
  public func reconcileQuietly() -> Int {
    guard !database.isReadOnly else { return 0 }
    var marked = 0
    do {
      for run in try database.activeStrategyRuns() where isGone(run) {
        guard try database.strategyRun(id: run.id)?.isActive == true else { continue }
        try fail(run, Self.goneReport(run))
        marked += 1
      }
    } catch {
      context.logger.info("runs not reconciled: \(error)")
    }
    return marked
  }

  /// Marks every active run of `strategy` failed: the caller holds its lease, so none is alive.
  func markDead(strategy: String, because reason: String) throws {
    for run in try database.activeStrategyRuns() where run.strategyName == strategy {
      var report = Self.goneReport(run)
      report.message = "the runner (pid \(run.pid.map(String.init) ?? "?") on \(run.host ?? "?")): \(reason)"
      try fail(run, report)
    }
  }

  private func fail(_ run: StrategyRunRecord, _ report: ErrorReport) throws {
    let json = String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)
    try database.finishStrategyRun(id: run.id, status: "failed", error: json, at: context.clock.now())
  }

  // MARK: Control

  /// Asks `strategy`'s runner to stop at its next bar boundary and waits up to `timeout`
  /// milliseconds for its process to let go of its lease. A dead runner's run is marked
  /// failed. With `closePositions`, the account's positions are closed at the last processed
  /// bar's close (reason manual) and the account is closed — by the runner, or here when none runs.
  public func stop(strategy: String, closePositions: Bool, timeoutMilliseconds: Int64) throws -> StopReport {
    let key = LiveRunner.leaseKey(strategy)
    let run = try database.latestRun(strategy: strategy)
    if run == nil, try database.latestAccount(strategy: strategy) == nil { _ = try database.strategy(named: strategy) }
    switch context.leases.state(of: key) {
    case .held(let holder):
      let file = LiveRunner.stopFile(strategy, leases: context.leases)
      try? FileManager.default.createDirectory(atPath: context.leases.directory, withIntermediateDirectories: true)
      _ = FileManager.default.createFile(atPath: file, contents: Data((closePositions ? "close" : "stop").utf8))
      if let run, run.isActive { try database.requestStop(runID: run.id, closePositions: closePositions, at: context.clock.now()) }
      let deadline = context.clock.now() + timeoutMilliseconds
      while context.leases.state(of: key) != .free {
        guard context.clock.now() < deadline else {
          throw LiveError.stopTimeout(strategy: strategy, pid: holder?.pid ?? run?.pid, seconds: Double(timeoutMilliseconds) / 1000)
        }
        try context.clock.sleep(milliseconds: 20, cancellation: context.cancellation)
      }
      // A runner in another process on this host has freed its lease and only prints its summary
      // now: "stopped" means the process is gone, so wait for that too (briefly).
      if let pid = holder?.pid, pid != Int(getpid()), holder?.host == ProcessIdentity.host {
        let until = min(deadline, context.clock.now() + 2_000)
        while !ChildProcesses.hasExited(Int32(pid)), context.clock.now() < until {
          try context.clock.sleep(milliseconds: 10, cancellation: context.cancellation)
        }
      }
      let after = try run.flatMap { try database.strategyRun(id: $0.id) }
      var closed: [FillInfo] = []
      var equity = try database.latestAccount(strategy: strategy)?.equity
      if closePositions, let account = try database.openAccount(strategy: strategy) {
        // The runner stopped before it could settle (it failed): settle here.
        let report = try settleHere(account)
        closed = report.fills
        equity = report.equity
      } else if closePositions, let account = try database.latestAccount(strategy: strategy), let run {
        closed = try database.fills(accountID: account.id).filter { $0.reason == "manual" && $0.createdAt >= run.startedAt }.map(FillInfo.init)
      }
      return StopReport(strategy: strategy, runID: run?.id, was: "running", status: after?.status, closed: closed, equity: equity)
    case .free:
      var was = "not_running"
      if let run, run.isActive {
        try fail(run, Self.goneReport(run))
        was = "dead"
      }
      var closed: [FillInfo] = []
      var equity = try database.latestAccount(strategy: strategy)?.equity
      if closePositions, let account = try database.openAccount(strategy: strategy) {
        let report = try settleHere(account)
        closed = report.fills
        equity = report.equity
      }
      let after = try run.flatMap { try database.strategyRun(id: $0.id) }
      return StopReport(strategy: strategy, runID: run?.id, was: was, status: after?.status, closed: closed, equity: equity)
    }
  }

  /// The strategies whose runs the store calls active.
  public func activeStrategies() throws -> [String] {
    Array(Set(try database.activeStrategyRuns().map(\.strategyName))).sorted()
  }

  /// Settles an account with no runner: takes the runner's lease so none starts meanwhile.
  private func settleHere(_ account: PaperAccountRecord) throws -> (fills: [FillInfo], equity: Double) {
    let lease = try context.leases.acquire(
      LiveRunner.leaseKey(account.strategyName),
      holder: LeaseHolder.current(jobID: nil, purpose: "strategy stop \(account.strategyName) --close-positions", at: context.clock.now()),
      wait: false)
    defer { lease.release() }
    let current = try database.account(id: account.id)
    guard current.status == "open" else { return ([], current.equity) }
    let trader = try PaperTrader(account: current, feed: .store, runID: nil, lateAfterBars: 1, notifyLate: false)
    let result = try settle(account: current, positions: try database.positions(accountID: current.id), trader: trader, window: .empty)
    return (result.fills.map(FillInfo.init), result.equity)
  }

  /// Closes `positions` at the closes of the account's last processed bar and closes the account.
  func settle(account: PaperAccountRecord, positions: [PaperPositionRecord], trader: PaperTrader, window: LiveWindow) throws -> (
    fills: [PaperFillRecord], signals: [SignalRecord], equity: Double
  ) {
    let now = context.clock.now()
    guard let cursor = account.cursorTs, !positions.isEmpty else {
      try database.closeAccount(id: account.id, at: now)
      return ([], [], account.equity)
    }
    let prices = try lastPrices(account, symbols: positions.map(\.symbol))
    let settled = trader.settle(positions, prices: prices, at: cursor, cash: account.cash, now: now)
    try database.closeAccount(id: account.id, fills: settled.fills, signals: settled.signals, cash: settled.cash, equity: settled.cash, at: now)
    return (settled.fills, settled.signals, settled.cash)
  }

  /// Suspends new entries and notifications from the next bar the runner processes (it keeps
  /// evaluating: exits, stops and targets still act).
  public func pause(strategy: String, settings: Settings? = nil) throws -> RunnerStatus {
    try setPaused(strategy, true, settings: settings)
  }

  public func resume(strategy: String, settings: Settings? = nil) throws -> RunnerStatus {
    try setPaused(strategy, false, settings: settings)
  }

  private func setPaused(_ strategy: String, _ paused: Bool, settings: Settings?) throws -> RunnerStatus {
    guard let account = try database.openAccount(strategy: strategy) else {
      _ = try database.strategy(named: strategy)
      throw LiveError.noAccount(strategy: strategy)
    }
    let now = context.clock.now()
    try database.setPaused(accountID: account.id, paused, at: now)
    let running = try database.latestRun(strategy: strategy)?.isActive == true
    try database.setStrategyStatus(strategy, paused ? "paused" : running ? "active" : "stopped", at: now)
    return try status(strategy: strategy, settings: settings)[0]
  }

  // MARK: Signals

  /// A page of signals, newest first.
  public func signals(_ filter: SignalFilter, page: Int, size: Int) throws -> SignalPage {
    let total = try database.countSignals(filter)
    let items = try database.signals(filter, limit: size, offset: (page - 1) * size, newestFirst: true).map(SignalInfo.init)
    return SignalPage(items: items, total: total, page: page, size: size, pages: total == 0 ? 0 : (total + size - 1) / size)
  }

  /// The last `count` matching signals, oldest first.
  /// - parameter through: only those stored up to this insertion number (`lastSignalSeq()`).
  public func tail(_ filter: SignalFilter, count: Int, through: Int64? = nil) throws -> [SignalInfo] {
    try database.lastSignals(filter, count: count, throughSeq: through).map(SignalInfo.init)
  }

  /// Matching signals stored after `seq` (and up to `through`), oldest first (a follower's
  /// next batch).
  public func signals(after seq: Int64, through: Int64? = nil, _ filter: SignalFilter, limit: Int = 1000) throws -> [SignalInfo] {
    try database.signals(filter, afterSeq: seq, throughSeq: through, limit: limit).map(SignalInfo.init)
  }

  public func lastSignalSeq() throws -> Int64 { try database.lastSignalSeq() }

  /// One signal by its id (`signals list` shows ids; the API's `GET /signals/{id}`).
  public func signal(id: String) throws -> SignalInfo {
    guard let record = try database.signal(id: id) else {
      throw OperationError.notFound(
        "no signal '\(id)'", code: "signal_not_found", details: ["id": .string(id)], hint: "`qtool signals list` shows the signals and their ids")
    }
    return SignalInfo(record)
  }

  /// Counts of matching signals by type, strength, strategy, symbol and reason.
  public func stats(_ filter: SignalFilter) throws -> SignalStats {
    let total = try database.countSignals(filter)
    return SignalStats(
      total: total, since: filter.since.map { UTCCalendar.format($0, alwaysTime: true) },
      until: filter.until.map { UTCCalendar.format($0, alwaysTime: true) },
      byType: try database.signalCounts(filter, by: "type"), byStrength: try database.signalCounts(filter, by: "strength_level"),
      byStrategy: try database.signalCounts(filter, by: "strategy_name"), bySymbol: try database.signalCounts(filter, by: "symbol"),
      byReason: try database.signalCounts(filter, by: "reason"), late: try database.countSignals(filter, late: true),
      suppressed: try database.countSignals(filter, suppressed: true))
  }

  // MARK: Channels

  public func addChannel(_ request: ChannelRequest) throws -> ChannelInfo {
    try Self.validate(request)
    let filters = ChannelFilter(signals: request.filter, includeLate: request.includeLate)
    try database.addChannel(
      ChannelRecord(
        name: request.name, kind: request.kind.rawValue, config: String(decoding: try JSONCoding.encoder.encode(request.config), as: UTF8.self),
        filters: String(decoding: try JSONCoding.encoder.encode(filters), as: UTF8.self), createdAt: context.clock.now()))
    return try channels().first { $0.name == request.name }!
  }

  static func validate(_ request: ChannelRequest) throws {
    let name = request.name
    guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }),
      name.first!.isLetter || name.first!.isNumber
    else {
      throw OperationError.invalidArgument(
        "'\(name)' cannot name a channel: use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64)", field: "name")
    }
    let config = request.config
    func httpURL(_ text: String, field: String) throws {
      guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host?.isEmpty == false else {
        throw OperationError.invalidArgument("'\(text)' is not an http(s) URL; notifications are sent over http or https only", field: field)
      }
    }
    func exactlyOne(_ values: [(String, String?)], what: String) throws {
      let given = values.filter { $0.1 != nil }
      guard given.count == 1 else {
        throw OperationError.invalidArgument(
          "a \(request.kind.rawValue) channel needs its \(what) from exactly one of " + values.map { "{\($0.0)}" }.joined(separator: ", "),
          field: values[0].0, hint: ErrorHint("give one of " + values.map { "{\($0.0)}" }.joined(separator: ", ")))
      }
    }
    switch request.kind {
    case .webhook:
      guard let url = config.url else {
        throw OperationError.invalidArgument("a webhook channel needs a URL", field: "url", hint: "give it with {url}")
      }
      try httpURL(url, field: "url")
      if config.secretEnv != nil, config.secretFile != nil {
        throw OperationError.invalidArgument("give the signing secret from one place: an environment variable or a file", field: "secret_env")
      }
    case .slack, .discord:
      if config.url != nil {
        throw OperationError.invalidArgument(
          "a \(request.kind.rawValue) webhook URL carries its token, and secrets are never stored: name the environment variable or file that holds it",
          field: "url", hint: "use {url_env} or {url_file}")
      }
      try exactlyOne([("url_env", config.urlEnv), ("url_file", config.urlFile)], what: "webhook URL")
    case .telegram:
      try exactlyOne([("token_env", config.tokenEnv), ("token_file", config.tokenFile)], what: "bot token")
      guard let chat = config.chatID, !chat.isEmpty else {
        throw OperationError.invalidArgument("a telegram channel needs the chat to write to", field: "chat_id", hint: "give it with {chat_id}")
      }
    case .command:
      guard let command = config.command, !command.trimmingCharacters(in: .whitespaces).isEmpty else {
        throw OperationError.invalidArgument("a command channel needs the command to run", field: "command", hint: "give it with {command}")
      }
    }
    if request.kind != .command, config.command != nil {
      throw OperationError.invalidArgument("a command applies only to a command channel", field: "command")
    }
    // The runner reads these at each delivery; one it cannot read now would fail only then.
    for (field, value) in [("url_file", config.urlFile), ("secret_file", config.secretFile), ("token_file", config.tokenFile)] {
      guard let path = value else { continue }
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
        FileManager.default.isReadableFile(atPath: path)
      else {
        throw OperationError.notFound(
          "\(path) cannot be read (missing, a directory, or not readable)", code: "file_not_found",
          details: ["path": .string(path), "field": .string(field)],
          hint: ErrorHint("give {\(field)} a readable file; the runner reads it each time it sends"))
      }
    }
    for (field, value) in [("secret_env", config.secretEnv), ("url_env", config.urlEnv), ("token_env", config.tokenEnv)] {
      if let value, value.isEmpty || !value.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
        throw OperationError.invalidArgument("'\(value)' is not an environment variable name", field: field)
      }
    }
    if let template = config.template {
      let unknown = MessageTemplate.unknownPlaceholders(template)
      guard unknown.isEmpty else {
        throw OperationError.invalidArgument(
          "the template has unknown placeholders: \(unknown.map { "{\($0)}" }.joined(separator: ", ")); known: \(MessageTemplate.placeholders.map { "{\($0)}" }.joined(separator: " "))",
          field: "template")
      }
    }
    guard config.timeoutMilliseconds >= 1, config.timeoutMilliseconds <= 300_000 else {
      throw OperationError.invalidArgument("the timeout must be from 1 ms to 5 minutes", field: "timeout")
    }
    if let attempts = config.maxAttempts, !(1...100).contains(attempts) {
      throw OperationError.invalidArgument("max attempts must be from 1 to 100", field: "max_attempts")
    }
    let filter = request.filter
    for type in filter.types where !["BUY", "SELL", "HOLD"].contains(type) {
      throw OperationError.invalidArgument("'\(type)' is not a signal type (BUY, SELL, HOLD)", field: "types")
    }
    for level in filter.levels where !["strong", "medium", "weak", "none"].contains(level) {
      throw OperationError.invalidArgument("'\(level)' is not a strength level (strong, medium, weak, none)", field: "levels")
    }
    if let minimum = filter.minStrength, !(0...100).contains(minimum) {
      throw OperationError.invalidArgument("the minimum strength must be from 0 to 100", field: "min_strength")
    }
  }

  public func channels() throws -> [ChannelInfo] {
    let counts = try database.outboxCounts()
    return try database.channels().map { record in
      let filters = record.filter
      return ChannelInfo(
        name: record.name, kind: record.kind,
        config: (try? JSONDecoder().decode(ChannelConfig.self, from: Data(record.config.utf8))) ?? ChannelConfig(), filter: filters.signals,
        includeLate: filters.includeLate, enabled: record.enabled, createdAt: UTCCalendar.format(record.createdAt, alwaysTime: true),
        notifications: ["pending": 0, "delivered": 0, "dead": 0].merging(counts[record.name] ?? [:]) { $1 })
    }
  }

  @discardableResult
  public func removeChannel(named name: String) throws -> ChannelInfo {
    _ = try database.channel(named: name)
    let info = try channels().first { $0.name == name }
    try database.removeChannel(named: name)
    return info!
  }

  /// Sends a test event (`type: test`, a signal that is not stored) to a channel once, now.
  public func testChannel(named name: String, settings: Settings) throws -> ChannelTestReport {
    let record = try database.channel(named: name)
    let config = (try? JSONDecoder().decode(ChannelConfig.self, from: Data(record.config.utf8))) ?? ChannelConfig()
    let now = context.clock.now()
    let signal = Delivery.testSignal(now: now)
    let result: DeliveryResult
    if record.kind == ChannelKind.command.rawValue {
      let body = try Delivery.eventBody(signal, type: "test")
      result = CommandDelivery.run(
        command: config.command ?? "false", input: body, signal: signal, timeoutMilliseconds: config.timeoutMilliseconds, clock: context.clock)
    } else {
      do {
        var request = try Delivery.request(
          channel: record, config: config, signal: signal, webhookID: signal.id, now: now, settings: try NotifySettings(settings: settings),
          environment: ProcessInfo.processInfo.environment)
        if record.kind == ChannelKind.webhook.rawValue {
          request.body = try Delivery.eventBody(signal, type: "test")
          if let secret = try Delivery.secret(
            env: config.secretEnv, file: config.secretFile, what: "signing secret", environment: ProcessInfo.processInfo.environment)
          {
            request.headers["webhook-signature"] = WebhookSignature.sign(secret: secret, id: signal.id, timestamp: now / 1000, body: request.body!)
          }
        }
        let client = HTTPClient(settings: HTTPSettings(userAgent: "qtool/\(VersionInfo.version)", minimumSpeed: 1, maxRedirects: 0))
        let started = context.clock.now()
        let response = client.fetchAll([request], concurrency: 1)[0]
        result = Delivery.classify(response, latency: context.clock.now() - started, now: context.clock.now())
      } catch let problem as DeliveryProblem {
        result = DeliveryResult(outcome: .dead, status: nil, latencyMilliseconds: 0, error: problem.description)
      }
    }
    return ChannelTestReport(
      channel: name, delivered: result.outcome == .delivered, outcome: result.outcome.rawValue, status: result.status,
      latencyMs: result.latencyMilliseconds, error: result.error)
  }

  /// Notifications newest first, with every attempt.
  public func history(channel: String?, status: String?, limit: Int) throws -> [NotificationInfo] {
    try history(channel: channel, status: status, offset: 0, limit: limit)
  }

  /// A page of that history (`limit` from the `offset`-th newest) and how many there are in all.
  public func historyPage(channel: String?, status: String?, offset: Int, limit: Int) throws -> (items: [NotificationInfo], total: Int) {
    let items = try history(channel: channel, status: status, offset: offset, limit: limit)
    return (items, try database.notificationCount(channel: channel, status: status))
  }

  private func history(channel: String?, status: String?, offset: Int, limit: Int) throws -> [NotificationInfo] {
    if let channel { _ = try database.channel(named: channel) }
    return try database.notificationHistory(channel: channel, status: status, limit: limit, offset: offset).map { row, attempts in
      NotificationInfo(
        id: row.id, signalID: row.signalID, channel: row.channel, status: row.status, attempts: row.attempts,
        createdAt: UTCCalendar.format(row.createdAt, alwaysTime: true), deliveredAt: row.deliveredAt.map { UTCCalendar.format($0, alwaysTime: true) },
        nextAttemptAt: row.status == "pending" ? UTCCalendar.format(row.nextAttemptAt, alwaysTime: true) : nil, lastError: row.lastError,
        history: attempts.map {
          NotificationInfo.Attempt(
            attempt: $0.attempt, at: UTCCalendar.format($0.startedAt, alwaysTime: true), latencyMs: $0.latencyMs, status: $0.status,
            outcome: $0.outcome,
            error: $0.error)
        })
    }
  }
}
