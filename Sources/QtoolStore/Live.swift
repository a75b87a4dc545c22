import Foundation
import GRDB
import QtoolCore

/// A strategy's paper account as stored: what it trades, from when, and where it stands after
/// the last bar it processed (`cursor`). JSON columns stay text here; the engine decodes them.
public struct PaperAccountRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var strategyName: String
  public var strategyVersion: Int
  public var specHash: String
  public var specText: String
  /// JSON object of param overrides.
  public var params: String
  public var capital: Double
  public var timeframe: String
  /// JSON array.
  public var symbols: String
  /// JSON array of dataset names.
  public var datasets: String
  public var source: String?
  /// The first bar traded; nil: from the first stored bar.
  public var fromTs: Int64?
  /// The last bar processed.
  public var cursorTs: Int64?
  public var cash: Double
  public var equity: Double
  public var halted: Bool
  /// Asked to pause (entries and notifications suspended from the next bar processed).
  public var paused: Bool
  /// `open` or `closed`.
  public var status: String
  public var createdAt: Int64
  public var updatedAt: Int64
  public var closedAt: Int64?

  enum CodingKeys: String, CodingKey {
    case id, strategyName = "strategy_name", strategyVersion = "strategy_version", specHash = "spec_hash", specText = "spec_text", params, capital
    case timeframe, symbols, datasets, source, fromTs = "from_ts", cursorTs = "cursor_ts", cash, equity, halted, paused, status
    case createdAt = "created_at", updatedAt = "updated_at", closedAt = "closed_at"
  }

  public init(
    id: String, strategyName: String, strategyVersion: Int, specHash: String, specText: String, params: String, capital: Double, timeframe: String,
    symbols: String, datasets: String, source: String?, fromTs: Int64?, cursorTs: Int64? = nil, cash: Double, equity: Double, halted: Bool = false,
    paused: Bool = false, status: String = "open", createdAt: Int64, updatedAt: Int64, closedAt: Int64? = nil
  ) {
    self.id = id
    self.strategyName = strategyName
    self.strategyVersion = strategyVersion
    self.specHash = specHash
    self.specText = specText
    self.params = params
    self.capital = capital
    self.timeframe = timeframe
    self.symbols = symbols
    self.datasets = datasets
    self.source = source
    self.fromTs = fromTs
    self.cursorTs = cursorTs
    self.cash = cash
    self.equity = equity
    self.halted = halted
    self.paused = paused
    self.status = status
    self.createdAt = createdAt
    self.updatedAt = updatedAt
    self.closedAt = closedAt
  }
}

/// A position the paper account holds.
public struct PaperPositionRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var symbol: String
  public var side: String
  public var size: Double
  public var entryTs: Int64
  public var entryPrice: Double
  public var peak: Double
  public var stop: Double?
  public var target: Double?

  enum CodingKeys: String, CodingKey {
    case symbol, side, size, entryTs = "entry_ts", entryPrice = "entry_price", peak, stop, target
  }

  public init(symbol: String, side: String, size: Double, entryTs: Int64, entryPrice: Double, peak: Double, stop: Double?, target: Double?) {
    self.symbol = symbol
    self.side = side
    self.size = size
    self.entryTs = entryTs
    self.entryPrice = entryPrice
    self.peak = peak
    self.stop = stop
    self.target = target
  }
}

/// A fill of the paper account.
public struct PaperFillRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var seq: Int
  public var ts: Int64
  public var symbol: String
  /// `buy` or `sell`.
  public var side: String
  /// enter_long, exit_long, enter_short, exit_short.
  public var action: String
  public var size: Double
  public var price: Double
  public var commission: Double
  public var reason: String
  /// Exits: the trade's net result.
  public var pnl: Double?
  /// The signal the fill carries out.
  public var signalID: String?
  public var createdAt: Int64

  enum CodingKeys: String, CodingKey {
    case seq, ts, symbol, side, action, size, price, commission, reason, pnl, signalID = "signal_id", createdAt = "created_at"
  }

  public init(
    seq: Int = 0, ts: Int64, symbol: String, side: String, action: String, size: Double, price: Double, commission: Double, reason: String,
    pnl: Double?, signalID: String?, createdAt: Int64
  ) {
    self.seq = seq
    self.ts = ts
    self.symbol = symbol
    self.side = side
    self.action = action
    self.size = size
    self.price = price
    self.commission = commission
    self.reason = reason
    self.pnl = pnl
    self.signalID = signalID
    self.createdAt = createdAt
  }
}

/// One signal as stored.
public struct SignalRecord: Codable, Sendable, Equatable, FetchableRecord {
  /// Insertion order (what `signals tail -f` follows).
  public var seq: Int64
  public var id: String
  public var accountID: String
  public var runID: String?
  public var strategyName: String
  public var strategyVersion: Int
  public var symbol: String
  public var timeframe: String
  public var source: String?
  public var feed: String
  public var barTs: Int64
  public var type: String
  public var action: String
  public var reason: String
  public var strengthRaw: Double
  public var strengthLevel: String
  public var price: Double?
  /// JSON object.
  public var indicators: String
  public var late: Bool
  public var suppressed: Bool
  public var createdAt: Int64
  /// JSON array of `{"name", "version"}`: the model versions the decision read.
  public var models: String

  enum CodingKeys: String, CodingKey {
    case seq, id, accountID = "account_id", runID = "run_id", strategyName = "strategy_name", strategyVersion = "strategy_version", symbol
    case timeframe, source, feed, barTs = "bar_ts", type, action, reason, strengthRaw = "strength_raw", strengthLevel = "strength_level", price
    case indicators, late, suppressed, createdAt = "created_at", models
  }

  public init(
    seq: Int64 = 0, id: String, accountID: String, runID: String?, strategyName: String, strategyVersion: Int, symbol: String, timeframe: String,
    source: String?, feed: String, barTs: Int64, type: String, action: String, reason: String, strengthRaw: Double, strengthLevel: String,
    price: Double?, indicators: String, late: Bool, suppressed: Bool, createdAt: Int64, models: String = "[]"
  ) {
    self.models = models
    self.seq = seq
    self.id = id
    self.accountID = accountID
    self.runID = runID
    self.strategyName = strategyName
    self.strategyVersion = strategyVersion
    self.symbol = symbol
    self.timeframe = timeframe
    self.source = source
    self.feed = feed
    self.barTs = barTs
    self.type = type
    self.action = action
    self.reason = reason
    self.strengthRaw = strengthRaw
    self.strengthLevel = strengthLevel
    self.price = price
    self.indicators = indicators
    self.late = late
    self.suppressed = suppressed
    self.createdAt = createdAt
  }
}

/// A process that advanced (or advances) a paper account.
public struct StrategyRunRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var accountID: String
  public var strategyName: String
  public var feed: String
  /// JSON of the request it was started with.
  public var request: String
  /// running, stopping, stopped, completed, failed.
  public var status: String
  public var pid: Int?
  public var host: String?
  public var logPath: String?
  public var startedAt: Int64
  public var heartbeatAt: Int64?
  public var finishedAt: Int64?
  public var stopRequestedAt: Int64?
  public var closePositions: Bool
  public var barsProcessed: Int
  public var lastBarTs: Int64?
  public var staleRounds: Int
  public var divergences: Int
  /// The latest thing worth knowing (stale data, a divergence), in words.
  public var note: String?
  /// JSON error report.
  public var error: String?

  enum CodingKeys: String, CodingKey {
    case id, accountID = "account_id", strategyName = "strategy_name", feed, request, status, pid, host, logPath = "log_path"
    case startedAt = "started_at", heartbeatAt = "heartbeat_at", finishedAt = "finished_at", stopRequestedAt = "stop_requested_at"
    case closePositions = "close_positions", barsProcessed = "bars_processed", lastBarTs = "last_bar_ts", staleRounds = "stale_rounds"
    case divergences, note, error
  }

  public var isActive: Bool { status == "running" || status == "stopping" }

  public init(
    id: String, accountID: String, strategyName: String, feed: String, request: String, status: String, pid: Int?, host: String?, logPath: String?,
    startedAt: Int64, heartbeatAt: Int64?, finishedAt: Int64? = nil, stopRequestedAt: Int64? = nil, closePositions: Bool = false,
    barsProcessed: Int = 0, lastBarTs: Int64? = nil, staleRounds: Int = 0, divergences: Int = 0, note: String? = nil, error: String? = nil
  ) {
    self.id = id
    self.accountID = accountID
    self.strategyName = strategyName
    self.feed = feed
    self.request = request
    self.status = status
    self.pid = pid
    self.host = host
    self.logPath = logPath
    self.startedAt = startedAt
    self.heartbeatAt = heartbeatAt
    self.finishedAt = finishedAt
    self.stopRequestedAt = stopRequestedAt
    self.closePositions = closePositions
    self.barsProcessed = barsProcessed
    self.lastBarTs = lastBarTs
    self.staleRounds = staleRounds
    self.divergences = divergences
    self.note = note
    self.error = error
  }
}

/// Which signals a channel is sent, and which a listing shows.
public struct SignalFilter: Codable, Sendable, Equatable {
  public var strategies: [String]
  public var symbols: [String]
  /// BUY, SELL, HOLD.
  public var types: [String]
  /// strong, medium, weak, none.
  public var levels: [String]
  public var minStrength: Double?
  /// Signals created at or after this time.
  public var since: Int64?
  /// Signals created before this time.
  public var until: Int64?

  public init(
    strategies: [String] = [], symbols: [String] = [], types: [String] = [], levels: [String] = [], minStrength: Double? = nil, since: Int64? = nil,
    until: Int64? = nil
  ) {
    self.strategies = strategies
    self.symbols = symbols
    self.types = types
    self.levels = levels
    self.minStrength = minStrength
    self.since = since
    self.until = until
  }

  enum CodingKeys: String, CodingKey { case strategies, symbols, types, levels, minStrength = "min_strength", since, until }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    strategies = try container.decodeIfPresent([String].self, forKey: .strategies) ?? []
    symbols = try container.decodeIfPresent([String].self, forKey: .symbols) ?? []
    types = try container.decodeIfPresent([String].self, forKey: .types) ?? []
    levels = try container.decodeIfPresent([String].self, forKey: .levels) ?? []
    minStrength = try container.decodeIfPresent(Double.self, forKey: .minStrength)
    since = try container.decodeIfPresent(Int64.self, forKey: .since)
    until = try container.decodeIfPresent(Int64.self, forKey: .until)
  }

  public func matches(_ signal: SignalRecord) -> Bool {
    (strategies.isEmpty || strategies.contains(signal.strategyName)) && (symbols.isEmpty || symbols.contains(signal.symbol))
      && (types.isEmpty || types.contains(signal.type)) && (levels.isEmpty || levels.contains(signal.strengthLevel))
      && (minStrength.map { signal.strengthRaw >= $0 } ?? true) && (since.map { signal.createdAt >= $0 } ?? true)
      && (until.map { signal.createdAt < $0 } ?? true)
  }

  /// The SQL condition and its arguments.
  func sql() -> (String, [any DatabaseValueConvertible]) {
    var conditions: [String] = []
    var arguments: [any DatabaseValueConvertible] = []
    func list(_ column: String, _ values: [String]) {
      guard !values.isEmpty else { return }
      conditions.append("\(column) IN (\(values.map { _ in "?" }.joined(separator: ",")))")
      arguments += values as [any DatabaseValueConvertible]
    }
    list("strategy_name", strategies)
    list("symbol", symbols)
    list("type", types)
    list("strength_level", levels)
    if let minStrength {
      conditions.append("strength_raw >= ?")
      arguments.append(minStrength)
    }
    if let since {
      conditions.append("created_at >= ?")
      arguments.append(since)
    }
    if let until {
      conditions.append("created_at < ?")
      arguments.append(until)
    }
    return (conditions.isEmpty ? "1" : conditions.joined(separator: " AND "), arguments)
  }
}

/// A notification channel: its kind, its settings (JSON; names of the environment variables
/// and files that hold secrets, never the secrets), and which signals it is sent.
public struct ChannelRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var name: String
  public var kind: String
  public var config: String
  public var filters: String
  public var enabled: Bool
  public var createdAt: Int64

  enum CodingKeys: String, CodingKey { case name, kind, config, filters, enabled, createdAt = "created_at" }

  public init(name: String, kind: String, config: String, filters: String, enabled: Bool = true, createdAt: Int64) {
    self.name = name
    self.kind = kind
    self.config = config
    self.filters = filters
    self.enabled = enabled
    self.createdAt = createdAt
  }

  /// Its filters; late signals are sent only when `include_late` is set.
  public var filter: ChannelFilter { (try? JSONDecoder().decode(ChannelFilter.self, from: Data(filters.utf8))) ?? ChannelFilter() }
}

/// What a channel is sent: signals matching `signals`, late ones only with `includeLate`,
/// suppressed ones never.
public struct ChannelFilter: Codable, Sendable, Equatable {
  public var signals: SignalFilter
  public var includeLate: Bool

  public init(signals: SignalFilter = SignalFilter(), includeLate: Bool = false) {
    self.signals = signals
    self.includeLate = includeLate
  }

  enum CodingKeys: String, CodingKey { case signals, includeLate = "include_late" }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    signals = try container.decodeIfPresent(SignalFilter.self, forKey: .signals) ?? SignalFilter()
    includeLate = try container.decodeIfPresent(Bool.self, forKey: .includeLate) ?? false
  }

  /// - parameter notifyLate: the runner was asked to notify late signals too.
  public func accepts(_ signal: SignalRecord, notifyLate: Bool = false) -> Bool {
    !signal.suppressed && (includeLate || notifyLate || !signal.late) && signals.matches(signal)
  }
}

/// A notification waiting for delivery, delivered, or given up on.
public struct OutboxRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: Int64
  public var signalID: String
  public var channel: String
  /// pending, delivered, dead.
  public var status: String
  public var attempts: Int
  public var nextAttemptAt: Int64
  public var createdAt: Int64
  public var deliveredAt: Int64?
  public var lastError: String?

  enum CodingKeys: String, CodingKey {
    case id, signalID = "signal_id", channel, status, attempts, nextAttemptAt = "next_attempt_at", createdAt = "created_at"
    case deliveredAt = "delivered_at", lastError = "last_error"
  }
}

/// One delivery attempt.
public struct DeliveryAttemptRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var outboxID: Int64
  public var attempt: Int
  public var startedAt: Int64
  public var latencyMs: Int64
  /// The HTTP status, or a command's exit status; nil when none came (timeout, no connection).
  public var status: Int?
  /// delivered, retry, dead.
  public var outcome: String
  public var error: String?

  enum CodingKeys: String, CodingKey {
    case outboxID = "outbox_id", attempt, startedAt = "started_at", latencyMs = "latency_ms", status, outcome, error
  }

  public init(outboxID: Int64, attempt: Int, startedAt: Int64, latencyMs: Int64, status: Int?, outcome: String, error: String?) {
    self.outboxID = outboxID
    self.attempt = attempt
    self.startedAt = startedAt
    self.latencyMs = latencyMs
    self.status = status
    self.outcome = outcome
    self.error = error
  }
}

/// Everything one processed bar changes, committed in one transaction.
public struct BarCommit: Sendable {
  public var accountID: String
  public var runID: String?
  public var barTs: Int64
  public var cash: Double
  public var equity: Double
  public var halted: Bool
  public var positions: [PaperPositionRecord]
  /// `seq` is assigned on insert.
  public var fills: [PaperFillRecord]
  public var signals: [SignalRecord]
  /// Entries were suspended from this bar on (a pause that took effect), or resumed.
  public var pauseBegins: Bool
  public var pauseEnds: Bool
  /// Write outbox rows for the signals (false while paused).
  public var notify: Bool
  /// Late signals are notified too.
  public var notifyLate: Bool
  /// A note for the run (stale data, a divergence), and whether it counts as a divergence.
  public var note: String?
  public var diverged: Bool
  public var now: Int64

  public init(
    accountID: String, runID: String?, barTs: Int64, cash: Double, equity: Double, halted: Bool, positions: [PaperPositionRecord],
    fills: [PaperFillRecord], signals: [SignalRecord], pauseBegins: Bool = false, pauseEnds: Bool = false, notify: Bool, notifyLate: Bool = false,
    note: String? = nil, diverged: Bool = false, now: Int64
  ) {
    self.notifyLate = notifyLate
    self.accountID = accountID
    self.runID = runID
    self.barTs = barTs
    self.cash = cash
    self.equity = equity
    self.halted = halted
    self.positions = positions
    self.fills = fills
    self.signals = signals
    self.pauseBegins = pauseBegins
    self.pauseEnds = pauseEnds
    self.notify = notify
    self.note = note
    self.diverged = diverged
    self.now = now
  }
}

/// What a bar's commit wrote.
public struct BarCommitted: Sendable, Equatable {
  /// False when the bar had been processed already (nothing written).
  public var written: Bool
  public var signals: Int
  public var notifications: Int
}

public enum LiveStoreError: QtoolError, Equatable {
  case accountNotFound(String)
  case channelNotFound(String, known: [String])
  case channelExists(String)

  public var category: ErrorCategory {
    switch self {
    case .accountNotFound, .channelNotFound: return .notFound
    case .channelExists: return .alreadyExists
    }
  }
  public var code: String {
    switch self {
    case .accountNotFound: return "paper_account_not_found"
    case .channelNotFound: return "channel_not_found"
    case .channelExists: return "channel_exists"
    }
  }
  public var message: String {
    switch self {
    case .accountNotFound(let name): return "strategy \(name) has no paper account"
    case .channelNotFound(let name, let known):
      return "no notification channel '\(name)'" + (Similarity.closest(to: name, among: known).map { " (did you mean '\($0)'?)" } ?? "")
    case .channelExists(let name): return "a notification channel named '\(name)' exists already"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .accountNotFound(let name): return ["strategy": .string(name)]
    case .channelNotFound(let name, _), .channelExists(let name): return ["channel": .string(name)]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .accountNotFound(let name): return "start it with `qtool strategy start \(name)` (or run it with `qtool strategy run \(name)`)"
    case .channelNotFound: return "`qtool signals notify list` shows the channels"
    case .channelExists: return "remove it first with `qtool signals notify remove`, or choose another name"
    }
  }
}

// MARK: Accounts

extension QtoolDatabase {
  /// The open paper account of `strategy`, if any.
  public func openAccount(strategy: String) throws -> PaperAccountRecord? {
    try read { db in
      try PaperAccountRecord.fetchOne(db, sql: "SELECT * FROM paper_accounts WHERE strategy_name = ? AND status = 'open'", arguments: [strategy])
    }
  }

  /// The latest paper account of `strategy` (open or closed).
  public func latestAccount(strategy: String) throws -> PaperAccountRecord? {
    try read { db in
      try PaperAccountRecord.fetchOne(
        db, sql: "SELECT * FROM paper_accounts WHERE strategy_name = ? ORDER BY status = 'open' DESC, created_at DESC, rowid DESC LIMIT 1",
        arguments: [strategy])
    }
  }

  public func account(id: String) throws -> PaperAccountRecord {
    guard let found = try read({ try PaperAccountRecord.fetchOne($0, sql: "SELECT * FROM paper_accounts WHERE id = ?", arguments: [id]) }) else {
      throw LiveStoreError.accountNotFound(id)
    }
    return found
  }

  /// Names of strategies with a paper account, sorted.
  public func accountStrategyNames() throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT DISTINCT strategy_name FROM paper_accounts ORDER BY strategy_name") }
  }

  /// Opens a new account; an open account of the same strategy is closed first (`replacing`),
  /// in the same transaction.
  public func createAccount(_ account: PaperAccountRecord, closingOpen: Bool) throws {
    try write { db in
      if closingOpen {
        try db.execute(
          sql: "UPDATE paper_accounts SET status = 'closed', closed_at = ?, updated_at = ? WHERE strategy_name = ? AND status = 'open'",
          arguments: [account.createdAt, account.createdAt, account.strategyName])
      }
      try db.execute(
        sql: """
          INSERT INTO paper_accounts (id, strategy_name, strategy_version, spec_hash, spec_text, params, capital, timeframe, symbols, datasets,
            source, from_ts, cursor_ts, cash, equity, halted, paused, status, created_at, updated_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, 0, 0, 'open', ?, ?)
          """,
        arguments: [
          account.id, account.strategyName, account.strategyVersion, account.specHash, account.specText, account.params, account.capital,
          account.timeframe, account.symbols, account.datasets, account.source, account.fromTs, account.cash, account.equity, account.createdAt,
          account.updatedAt,
        ])
    }
  }

  /// Closes an account (its rows stay); with `fills`, records the fills that settled it at the
  /// same time, with the cash and equity after them and no positions left.
  public func closeAccount(
    id: String, fills: [PaperFillRecord] = [], signals: [SignalRecord] = [], cash: Double? = nil, equity: Double? = nil, at time: Int64
  )
    throws
  {
    try write { db in
      var seq = try Int.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM paper_fills WHERE account_id = ?", arguments: [id]) ?? 0
      for signal in signals { try Self.insertSignal(db, signal) }
      for fill in fills {
        seq += 1
        try Self.insertFill(db, accountID: id, seq: seq, fill)
      }
      if !fills.isEmpty { try db.execute(sql: "DELETE FROM paper_positions WHERE account_id = ?", arguments: [id]) }
      try db.execute(
        sql: """
          UPDATE paper_accounts SET status = 'closed', closed_at = ?, updated_at = ?, cash = coalesce(?, cash), equity = coalesce(?, equity)
          WHERE id = ?
          """, arguments: [time, time, cash, equity, id])
      try Self.enqueue(db, signals: signals.filter { !$0.suppressed }, at: time)
    }
  }

  /// Sets the account's asked-for pause state; returns the account after.
  @discardableResult
  public func setPaused(accountID: String, _ paused: Bool, at time: Int64) throws -> PaperAccountRecord {
    try write { db in
      try db.execute(sql: "UPDATE paper_accounts SET paused = ?, updated_at = ? WHERE id = ?", arguments: [paused, time, accountID])
    }
    return try account(id: accountID)
  }

  /// The bar ranges on which entries were suspended (`to` nil: still suspended).
  public func pauses(accountID: String) throws -> [(from: Int64, to: Int64?)] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT from_ts, to_ts FROM paper_pauses WHERE account_id = ? ORDER BY from_ts", arguments: [accountID]).map {
        ($0["from_ts"], $0["to_ts"])
      }
    }
  }

  public func positions(accountID: String) throws -> [PaperPositionRecord] {
    try read { db in
      try PaperPositionRecord.fetchAll(db, sql: "SELECT * FROM paper_positions WHERE account_id = ? ORDER BY symbol", arguments: [accountID])
    }
  }

  public func fills(accountID: String) throws -> [PaperFillRecord] {
    try read { db in try PaperFillRecord.fetchAll(db, sql: "SELECT * FROM paper_fills WHERE account_id = ? ORDER BY seq", arguments: [accountID]) }
  }

  /// The account's equity at each processed bar.
  public func equityCurve(accountID: String) throws -> (timestamps: [Int64], equity: [Double], cash: [Double]) {
    try equityCurve(accountID: accountID, offset: 0, limit: -1)
  }

  /// `limit` points of an account's equity curve from the `offset`-th, oldest first (-1: all).
  public func equityCurve(accountID: String, offset: Int, limit: Int) throws -> (timestamps: [Int64], equity: [Double], cash: [Double]) {
    try read { db in
      var result: (timestamps: [Int64], equity: [Double], cash: [Double]) = ([], [], [])
      let rows = try Row.fetchCursor(
        db, sql: "SELECT ts, equity, cash FROM paper_equity WHERE account_id = ? ORDER BY ts LIMIT ? OFFSET ?", arguments: [accountID, limit, offset])
      while let row = try rows.next() {
        result.timestamps.append(row[0])
        result.equity.append(row[1])
        result.cash.append(row[2])
      }
      return result
    }
  }

  /// How many points an account's equity curve has.
  public func equityPointCount(accountID: String) throws -> Int {
    try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM paper_equity WHERE account_id = ?", arguments: [accountID]) ?? 0 }
  }

  /// Writes everything a processed bar changed in one transaction: signals, fills, positions,
  /// the account's cash, equity and cursor, its equity point, the pause change, the outbox rows
  /// of every channel each signal matches, and the run's progress. A bar at or before the
  /// account's cursor writes nothing (`written` false): it was processed already.
  public func commitBar(_ commit: BarCommit) throws -> BarCommitted {
    try write { db in
      try db.execute(
        sql: """
          UPDATE paper_accounts SET cursor_ts = ?, cash = ?, equity = ?, halted = ?, updated_at = ?
          WHERE id = ? AND status = 'open' AND (cursor_ts IS NULL OR cursor_ts < ?)
          """, arguments: [commit.barTs, commit.cash, commit.equity, commit.halted, commit.now, commit.accountID, commit.barTs])
      guard db.changesCount == 1 else { return BarCommitted(written: false, signals: 0, notifications: 0) }
      if commit.pauseBegins {
        try db.execute(
          sql: "INSERT OR IGNORE INTO paper_pauses (account_id, from_ts, to_ts) VALUES (?, ?, NULL)", arguments: [commit.accountID, commit.barTs])
      }
      if commit.pauseEnds {
        try db.execute(
          sql: "UPDATE paper_pauses SET to_ts = ? WHERE account_id = ? AND to_ts IS NULL", arguments: [commit.barTs, commit.accountID])
      }
      var inserted: [SignalRecord] = []
      for signal in commit.signals {
        if try Self.insertSignal(db, signal) { inserted.append(signal) }
      }
      var seq = try Int.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM paper_fills WHERE account_id = ?", arguments: [commit.accountID]) ?? 0
      for fill in commit.fills {
        seq += 1
        try Self.insertFill(db, accountID: commit.accountID, seq: seq, fill)
      }
      try db.execute(sql: "DELETE FROM paper_positions WHERE account_id = ?", arguments: [commit.accountID])
      for position in commit.positions {
        try db.execute(
          sql: """
            INSERT INTO paper_positions (account_id, symbol, side, size, entry_ts, entry_price, peak, stop, target)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
          arguments: [
            commit.accountID, position.symbol, position.side, position.size, position.entryTs, position.entryPrice, position.peak, position.stop,
            position.target,
          ])
      }
      try db.execute(
        sql: "INSERT OR REPLACE INTO paper_equity (account_id, ts, equity, cash) VALUES (?, ?, ?, ?)",
        arguments: [commit.accountID, commit.barTs, commit.equity, commit.cash])
      let notifications = commit.notify ? try Self.enqueue(db, signals: inserted, notifyLate: commit.notifyLate, at: commit.now) : 0
      if let runID = commit.runID {
        try db.execute(
          sql: """
            UPDATE strategy_runs SET bars_processed = bars_processed + 1, last_bar_ts = ?, heartbeat_at = ?,
              divergences = divergences + ?, note = coalesce(?, note)
            WHERE id = ?
            """, arguments: [commit.barTs, commit.now, commit.diverged ? 1 : 0, commit.note, runID])
      }
      return BarCommitted(written: true, signals: inserted.count, notifications: notifications)
    }
  }

  /// Inserts a signal unless one with its id exists; true when inserted.
  @discardableResult
  static func insertSignal(_ db: Database, _ signal: SignalRecord) throws -> Bool {
    try db.execute(
      sql: """
        INSERT OR IGNORE INTO signals (id, account_id, run_id, strategy_name, strategy_version, symbol, timeframe, source, feed, bar_ts, type,
          action, reason, strength_raw, strength_level, price, indicators, late, suppressed, created_at, models)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        signal.id, signal.accountID, signal.runID, signal.strategyName, signal.strategyVersion, signal.symbol, signal.timeframe, signal.source,
        signal.feed, signal.barTs, signal.type, signal.action, signal.reason, signal.strengthRaw, signal.strengthLevel, signal.price,
        signal.indicators, signal.late, signal.suppressed, signal.createdAt, signal.models,
      ])
    return db.changesCount == 1
  }

  static func insertFill(_ db: Database, accountID: String, seq: Int, _ fill: PaperFillRecord) throws {
    try db.execute(
      sql: """
        INSERT INTO paper_fills (account_id, seq, ts, symbol, side, action, size, price, commission, reason, pnl, signal_id, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """,
      arguments: [
        accountID, seq, fill.ts, fill.symbol, fill.side, fill.action, fill.size, fill.price, fill.commission, fill.reason, fill.pnl, fill.signalID,
        fill.createdAt,
      ])
  }

  /// An outbox row per enabled channel each signal matches; returns how many were written.
  @discardableResult
  static func enqueue(_ db: Database, signals: [SignalRecord], notifyLate: Bool = false, at time: Int64) throws -> Int {
    guard !signals.isEmpty else { return 0 }
    let channels = try ChannelRecord.fetchAll(db, sql: "SELECT * FROM notification_channels WHERE enabled = 1")
    var count = 0
    for channel in channels {
      let filter = channel.filter
      for signal in signals where filter.accepts(signal, notifyLate: notifyLate) {
        try db.execute(
          sql: """
            INSERT OR IGNORE INTO notification_outbox (signal_id, channel, status, attempts, next_attempt_at, created_at)
            VALUES (?, ?, 'pending', 0, ?, ?)
            """, arguments: [signal.id, channel.name, time, time])
        count += db.changesCount
      }
    }
    return count
  }
}

// MARK: Runs

extension QtoolDatabase {
  public func insertStrategyRun(_ run: StrategyRunRecord) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO strategy_runs (id, account_id, strategy_name, feed, request, status, pid, host, log_path, started_at, heartbeat_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          run.id, run.accountID, run.strategyName, run.feed, run.request, run.status, run.pid, run.host, run.logPath, run.startedAt, run.heartbeatAt,
        ])
      try Self.setStrategyStatus(db, run.strategyName, "active", at: run.startedAt)
    }
  }

  /// The strategy's status as the catalog shows it (draft, active, paused, stopped, error).
  static func setStrategyStatus(_ db: Database, _ name: String, _ status: String, at time: Int64) throws {
    try db.execute(sql: "UPDATE strategies SET status = ?, updated_at = ? WHERE name = ?", arguments: [status, time, name])
  }

  public func setStrategyStatus(_ name: String, _ status: String, at time: Int64) throws {
    try write { try Self.setStrategyStatus($0, name, status, at: time) }
  }

  public func heartbeat(runID: String, at time: Int64, note: String? = nil, staleRound: Bool = false) throws {
    try write { db in
      try db.execute(
        sql: """
          UPDATE strategy_runs SET heartbeat_at = ?, note = coalesce(?, note), stale_rounds = stale_rounds + ?
          WHERE id = ? AND status IN ('running', 'stopping')
          """, arguments: [time, note, staleRound ? 1 : 0, runID])
    }
  }

  /// Asks the run to stop at its next bar boundary (and to close the positions with `closePositions`).
  public func requestStop(runID: String, closePositions: Bool, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          UPDATE strategy_runs SET stop_requested_at = coalesce(stop_requested_at, ?), close_positions = max(close_positions, ?),
            status = CASE WHEN status = 'running' THEN 'stopping' ELSE status END
          WHERE id = ?
          """, arguments: [time, closePositions, runID])
    }
  }

  public func strategyRun(id: String) throws -> StrategyRunRecord? {
    try read { try StrategyRunRecord.fetchOne($0, sql: "SELECT * FROM strategy_runs WHERE id = ?", arguments: [id]) }
  }

  /// The latest run of `strategy`.
  public func latestRun(strategy: String) throws -> StrategyRunRecord? {
    try read { db in
      try StrategyRunRecord.fetchOne(
        db, sql: "SELECT * FROM strategy_runs WHERE strategy_name = ? ORDER BY started_at DESC, rowid DESC LIMIT 1", arguments: [strategy])
    }
  }

  /// Every run of `strategy`, newest first.
  public func strategyRuns(strategy: String) throws -> [StrategyRunRecord] {
    try read { db in
      try StrategyRunRecord.fetchAll(
        db, sql: "SELECT * FROM strategy_runs WHERE strategy_name = ? ORDER BY started_at DESC, rowid DESC", arguments: [strategy])
    }
  }

  /// Runs whose row says they are running (or stopping).
  public func activeStrategyRuns() throws -> [StrategyRunRecord] {
    try read { try StrategyRunRecord.fetchAll($0, sql: "SELECT * FROM strategy_runs WHERE status IN ('running', 'stopping') ORDER BY strategy_name") }
  }

  /// Ends a run: its final status and error (JSON), and the strategy's catalog status.
  public func finishStrategyRun(id: String, status: String, error: String?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          UPDATE strategy_runs SET status = ?, error = coalesce(?, error), finished_at = ?, heartbeat_at = coalesce(heartbeat_at, ?)
          WHERE id = ? AND status IN ('running', 'stopping')
          """, arguments: [status, error, time, time, id])
      guard db.changesCount == 1, let name = try String.fetchOne(db, sql: "SELECT strategy_name FROM strategy_runs WHERE id = ?", arguments: [id])
      else { return }
      try Self.setStrategyStatus(db, name, status == "failed" ? "error" : "stopped", at: time)
    }
  }

  /// Signals of `strategy` created at or after `since`.
  public func signalCount(strategy: String, since: Int64) throws -> Int {
    try read { db in
      try Int.fetchOne(db, sql: "SELECT count(*) FROM signals WHERE strategy_name = ? AND created_at >= ?", arguments: [strategy, since]) ?? 0
    }
  }
}

// MARK: Signals

extension QtoolDatabase {
  /// Signals matching `filter`, in insertion order: after `afterSeq` (following), or the last
  /// `limit` (tail), or a page (`offset`, newest first when `newestFirst`).
  /// - parameter throughSeq: only signals stored up to this insertion number (a follower reads
  ///   the newest number first, then the rows up to it: a row committed in between is in the
  ///   next batch, never skipped, never shown twice).
  public func signals(
    _ filter: SignalFilter, afterSeq: Int64? = nil, throughSeq: Int64? = nil, limit: Int, offset: Int = 0, newestFirst: Bool = false
  ) throws -> [SignalRecord] {
    let (condition, arguments) = filter.sql()
    var sql = "SELECT * FROM signals WHERE \(condition)"
    var all = arguments
    if let afterSeq {
      sql += " AND seq > ?"
      all.append(afterSeq)
    }
    if let throughSeq {
      sql += " AND seq <= ?"
      all.append(throughSeq)
    }
    sql += " ORDER BY seq \(newestFirst ? "DESC" : "ASC") LIMIT ? OFFSET ?"
    all += [limit, offset] as [any DatabaseValueConvertible]
    return try read { try SignalRecord.fetchAll($0, sql: sql, arguments: StatementArguments(all)) }
  }

  /// The last `count` signals matching `filter`, oldest first.
  public func lastSignals(_ filter: SignalFilter, count: Int, throughSeq: Int64? = nil) throws -> [SignalRecord] {
    Array(try signals(filter, throughSeq: throughSeq, limit: count, newestFirst: true).reversed())
  }

  /// How many signals match `filter` (and are, or are not, late or suppressed when asked).
  ///
  /// Signals are only ever added (never changed or deleted) and a reader sees them up to some
  /// insertion number with none missing below it, so the count of a filter up to a newer number
  /// is the one counted before plus the rows added since: a page of a large table does not
  /// count the whole table again (100,000 signals take a millisecond a count).
  public func countSignals(_ filter: SignalFilter, late: Bool? = nil, suppressed: Bool? = nil) throws -> Int {
    var (condition, arguments) = filter.sql()
    if let late { condition += " AND late = \(late ? 1 : 0)" }
    if let suppressed { condition += " AND suppressed = \(suppressed ? 1 : 0)" }
    let key = condition + "|" + arguments.map { "\($0.databaseValue)" }.joined(separator: "|")
    return try read { db in
      let newest = try Int64.fetchOne(db, sql: "SELECT coalesce(max(seq), 0) FROM signals") ?? 0
      let cached = self.signalCountCache.withLock { $0[key] }
      var count: Int
      if let cached, cached.seq <= newest {
        count = cached.count
        if cached.seq < newest {
          let added = try Int.fetchOne(
            db, sql: "SELECT count(*) FROM signals WHERE seq > ? AND seq <= ? AND \(condition)",
            arguments: StatementArguments(([cached.seq, newest] as [any DatabaseValueConvertible]) + arguments))
          count += added ?? 0
        }
      } else {
        let all = try Int.fetchOne(
          db, sql: "SELECT count(*) FROM signals WHERE seq <= ? AND \(condition)",
          arguments: StatementArguments(([newest] as [any DatabaseValueConvertible]) + arguments))
        count = all ?? 0
      }
      self.signalCountCache.withLock { counts in
        if counts.count >= 256, counts[key] == nil { counts.removeAll() }
        counts[key] = (newest, count)
      }
      return count
    }
  }

  /// The newest signal's insertion number (0 when none).
  public func lastSignalSeq() throws -> Int64 {
    try read { try Int64.fetchOne($0, sql: "SELECT coalesce(max(seq), 0) FROM signals") ?? 0 }
  }

  public func signal(id: String) throws -> SignalRecord? {
    try read { try SignalRecord.fetchOne($0, sql: "SELECT * FROM signals WHERE id = ?", arguments: [id]) }
  }

  /// Counts of matching signals by `column` (type, strength_level, strategy_name, symbol).
  public func signalCounts(_ filter: SignalFilter, by column: String) throws -> [String: Int] {
    precondition(["type", "strength_level", "strategy_name", "symbol", "action", "reason"].contains(column))
    let (condition, arguments) = filter.sql()
    return try read { db in
      var counts: [String: Int] = [:]
      for row in try Row.fetchAll(
        db, sql: "SELECT \(column) AS key, count(*) AS n FROM signals WHERE \(condition) GROUP BY \(column)", arguments: StatementArguments(arguments)
      ) {
        counts[row["key"]] = row["n"]
      }
      return counts
    }
  }
}

// MARK: Notifications

extension QtoolDatabase {
  public func addChannel(_ channel: ChannelRecord) throws {
    try write { db in
      guard try Int.fetchOne(db, sql: "SELECT count(*) FROM notification_channels WHERE name = ?", arguments: [channel.name]) == 0 else {
        throw LiveStoreError.channelExists(channel.name)
      }
      try db.execute(
        sql: "INSERT INTO notification_channels (name, kind, config, filters, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        arguments: [channel.name, channel.kind, channel.config, channel.filters, channel.enabled, channel.createdAt])
    }
  }

  public func channels() throws -> [ChannelRecord] {
    try read { try ChannelRecord.fetchAll($0, sql: "SELECT * FROM notification_channels ORDER BY name") }
  }

  public func channel(named name: String) throws -> ChannelRecord {
    if let found = try read({ try ChannelRecord.fetchOne($0, sql: "SELECT * FROM notification_channels WHERE name = ?", arguments: [name]) }) {
      return found
    }
    throw LiveStoreError.channelNotFound(name, known: try channels().map(\.name))
  }

  /// Removes a channel with its outbox and delivery history.
  public func removeChannel(named name: String) throws {
    _ = try channel(named: name)
    try write { try $0.execute(sql: "DELETE FROM notification_channels WHERE name = ?", arguments: [name]) }
  }

  /// Delivery counts per channel: pending, delivered, dead.
  public func outboxCounts() throws -> [String: [String: Int]] {
    try read { db in
      var result: [String: [String: Int]] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT channel, status, count(*) AS n FROM notification_outbox GROUP BY channel, status") {
        result[row["channel"], default: [:]][row["status"]] = row["n"]
      }
      return result
    }
  }

  /// Pending notifications of `strategy`'s signals due at `now`, oldest first, with their
  /// signal and channel.
  public func dueNotifications(strategy: String, now: Int64, excluding: Set<Int64>, limit: Int) throws -> [(
    OutboxRecord, SignalRecord, ChannelRecord
  )] {
    try read { db in
      let rows = try OutboxRecord.fetchAll(
        db,
        sql: """
          SELECT o.* FROM notification_outbox o JOIN signals s ON s.id = o.signal_id
          WHERE o.status = 'pending' AND o.next_attempt_at <= ? AND s.strategy_name = ?
          ORDER BY o.next_attempt_at, o.id LIMIT ?
          """,
        arguments: [now, strategy, limit + excluding.count])
      var result: [(OutboxRecord, SignalRecord, ChannelRecord)] = []
      for row in rows where !excluding.contains(row.id) {
        guard let signal = try SignalRecord.fetchOne(db, sql: "SELECT * FROM signals WHERE id = ?", arguments: [row.signalID]),
          let channel = try ChannelRecord.fetchOne(db, sql: "SELECT * FROM notification_channels WHERE name = ?", arguments: [row.channel])
        else { continue }
        result.append((row, signal, channel))
        if result.count == limit { break }
      }
      return result
    }
  }

  /// The earliest time after `time` a pending notification of `strategy`'s signals is due
  /// (nil when none is).
  public func nextNotificationDue(strategy: String, after time: Int64) throws -> Int64? {
    try read { db in
      try Int64.fetchOne(
        db,
        sql: """
          SELECT min(o.next_attempt_at) FROM notification_outbox o JOIN signals s ON s.id = o.signal_id
          WHERE o.status = 'pending' AND o.next_attempt_at > ? AND s.strategy_name = ?
          """, arguments: [time, strategy])
    }
  }

  /// Records an attempt and what it means for the notification: delivered, due again at
  /// `nextAttemptAt`, or dead.
  public func recordDelivery(_ attempt: DeliveryAttemptRecord, nextAttemptAt: Int64?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT OR REPLACE INTO delivery_attempts (outbox_id, attempt, started_at, latency_ms, status, outcome, error)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [attempt.outboxID, attempt.attempt, attempt.startedAt, attempt.latencyMs, attempt.status, attempt.outcome, attempt.error])
      let status = attempt.outcome == "retry" ? "pending" : attempt.outcome
      try db.execute(
        sql: """
          UPDATE notification_outbox SET status = ?, attempts = ?, next_attempt_at = coalesce(?, next_attempt_at),
            delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END, last_error = ?
          WHERE id = ?
          """, arguments: [status, attempt.attempt, nextAttemptAt, status, time, attempt.error, attempt.outboxID])
    }
  }

  /// Notifications newest first with their attempts.
  public func notificationHistory(channel: String?, status: String?, limit: Int, offset: Int = 0) throws -> [(OutboxRecord, [DeliveryAttemptRecord])] {
    let (whereClause, filters) = Self.outboxFilter(channel: channel, status: status)
    return try read { db in
      try OutboxRecord.fetchAll(
        db, sql: "SELECT * FROM notification_outbox \(whereClause) ORDER BY id DESC LIMIT ? OFFSET ?", arguments: StatementArguments(filters + [limit, offset])
      )
      .map { row in
        (
          row,
          try DeliveryAttemptRecord.fetchAll(db, sql: "SELECT * FROM delivery_attempts WHERE outbox_id = ? ORDER BY attempt", arguments: [row.id])
        )
      }
    }
  }

  /// How many notifications `notificationHistory` has to page through.
  public func notificationCount(channel: String?, status: String?) throws -> Int {
    let (whereClause, filters) = Self.outboxFilter(channel: channel, status: status)
    return try read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM notification_outbox \(whereClause)", arguments: StatementArguments(filters)) ?? 0 }
  }

  private static func outboxFilter(channel: String?, status: String?) -> (String, [any DatabaseValueConvertible]) {
    var conditions: [String] = []
    var arguments: [any DatabaseValueConvertible] = []
    if let channel {
      conditions.append("channel = ?")
      arguments.append(channel)
    }
    if let status {
      conditions.append("status = ?")
      arguments.append(status)
    }
    return (conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "), arguments)
  }
}
