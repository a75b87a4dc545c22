import Foundation
import QtoolCore
import QtoolStore

/// A signal as the CLI prints it and the API returns it.
public struct SignalInfo: Codable, Sendable, Equatable {
  public var id: String
  /// Insertion order: a client following signals asks for those after the last it saw.
  public var seq: Int64
  public var strategy: String
  public var strategyVersion: Int
  public var accountID: String
  public var runID: String?
  public var symbol: String
  public var timeframe: String
  /// The market data source of the bars (binance, yahoo, …), when known.
  public var source: String?
  /// How the runner got its bars: download, store or replay.
  public var feed: String
  /// The decision bar's open time.
  public var barTime: String
  /// BUY, SELL or HOLD.
  public var type: String
  /// enter_long, exit_long, enter_short, exit_short, hold.
  public var action: String
  /// rule, stop_loss, take_profit, trailing_stop, drawdown_halt, manual.
  public var reason: String
  public var strengthRaw: Double
  /// strong, medium, weak, or none (below the weak threshold).
  public var strengthLevel: String
  public var price: Double?
  /// The rules' indicators at the bar (null where not yet defined).
  public var indicators: [String: JSONValue]
  /// Processed more than the late limit after its bar closed: stored, not notified.
  public var late: Bool
  /// An entry not made because the account was paused.
  public var suppressed: Bool
  public var createdAt: String
  /// The trained model versions the decision read (`model("name")`); empty without models.
  public var models: [ModelUse]

  enum CodingKeys: String, CodingKey {
    case id, seq, strategy, strategyVersion = "strategy_version", accountID = "account_id", runID = "run_id", symbol, timeframe, source, feed
    case barTime = "bar_time", type, action, reason, strengthRaw = "strength_raw", strengthLevel = "strength_level", price, indicators, late
    case suppressed, createdAt = "created_at", models
  }

  public init(_ record: SignalRecord) {
    id = record.id
    seq = record.seq
    strategy = record.strategyName
    strategyVersion = record.strategyVersion
    accountID = record.accountID
    runID = record.runID
    symbol = record.symbol
    timeframe = record.timeframe
    source = record.source
    feed = record.feed
    barTime = UTCCalendar.format(record.barTs, alwaysTime: true)
    type = record.type
    action = record.action
    reason = record.reason
    strengthRaw = record.strengthRaw
    strengthLevel = record.strengthLevel
    price = record.price
    indicators = (try? JSONDecoder().decode([String: JSONValue].self, from: Data(record.indicators.utf8))) ?? [:]
    late = record.late
    suppressed = record.suppressed
    createdAt = UTCCalendar.format(record.createdAt, alwaysTime: true)
    models = (try? JSONDecoder().decode([ModelUse].self, from: Data(record.models.utf8))) ?? []
  }
}

/// A model version a live decision read.
public struct ModelUse: Codable, Sendable, Equatable {
  public var name: String
  public var version: Int
  public init(name: String, version: Int) {
    self.name = name
    self.version = version
  }
}

/// A fill of a paper account.
public struct FillInfo: Codable, Sendable, Equatable {
  public var seq: Int
  public var time: String
  public var symbol: String
  public var side: String
  public var action: String
  public var size: Double
  public var price: Double
  public var commission: Double
  public var reason: String
  public var pnl: Double?
  public var signalID: String?

  enum CodingKeys: String, CodingKey { case seq, time, symbol, side, action, size, price, commission, reason, pnl, signalID = "signal_id" }

  public init(_ record: PaperFillRecord) {
    seq = record.seq
    time = UTCCalendar.format(record.ts, alwaysTime: true)
    symbol = record.symbol
    side = record.side
    action = record.action
    size = record.size
    price = record.price
    commission = record.commission
    reason = record.reason
    pnl = record.pnl
    signalID = record.signalID
  }
}

/// A position of a paper account, valued at the last processed bar's close.
public struct PositionInfo: Codable, Sendable, Equatable {
  public var symbol: String
  public var side: String
  public var size: Double
  public var entryTime: String
  public var entryPrice: Double
  /// Where a stop and a target close it in the next bar (nil without one).
  public var stop: Double?
  public var target: Double?
  public var lastPrice: Double?
  public var unrealizedPnl: Double?

  enum CodingKeys: String, CodingKey {
    case symbol, side, size, entryTime = "entry_time", entryPrice = "entry_price", stop, target, lastPrice = "last_price"
    case unrealizedPnl = "unrealized_pnl"
  }
}

/// A closed round trip of a paper account: its entry fill and its exit fill.
public struct PaperTrade: Codable, Sendable, Equatable {
  public var symbol: String
  public var side: String
  public var size: Double
  public var entryTime: Int64
  public var entryPrice: Double
  public var exitTime: Int64
  public var exitPrice: Double
  public var pnl: Double
  public var reason: String

  enum CodingKeys: String, CodingKey {
    case symbol, side, size, entryTime = "entry_time", entryPrice = "entry_price", exitTime = "exit_time", exitPrice = "exit_price", pnl, reason
  }

  /// Times as ISO-8601 strings, as a backtest's trades are (`qtool help json`).
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(symbol, forKey: .symbol)
    try container.encode(side, forKey: .side)
    try container.encode(size, forKey: .size)
    try container.encode(UTCCalendar.format(entryTime, alwaysTime: true), forKey: .entryTime)
    try container.encode(entryPrice, forKey: .entryPrice)
    try container.encode(UTCCalendar.format(exitTime, alwaysTime: true), forKey: .exitTime)
    try container.encode(exitPrice, forKey: .exitPrice)
    try container.encode(pnl, forKey: .pnl)
    try container.encode(reason, forKey: .reason)
  }
}

extension PaperTrade {
  /// Reads the times as ISO-8601 strings or epoch milliseconds.
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    func time(_ key: CodingKeys) throws -> Int64 {
      if let text = try? container.decode(String.self, forKey: key), let parsed = TimestampParser.parse(text) { return parsed }
      return try container.decode(Int64.self, forKey: key)
    }
    symbol = try container.decode(String.self, forKey: .symbol)
    side = try container.decode(String.self, forKey: .side)
    size = try container.decode(Double.self, forKey: .size)
    entryTime = try time(.entryTime)
    entryPrice = try container.decode(Double.self, forKey: .entryPrice)
    exitTime = try time(.exitTime)
    exitPrice = try container.decode(Double.self, forKey: .exitPrice)
    pnl = try container.decode(Double.self, forKey: .pnl)
    reason = try container.decode(String.self, forKey: .reason)
  }
}

/// A paper account: where it stands after its last processed bar.
public struct AccountInfo: Codable, Sendable, Equatable {
  public var id: String
  public var strategyVersion: Int
  /// open, or closed (settled by `stop --close-positions`, or replaced by a new account).
  public var status: String
  public var capital: Double
  public var cash: Double
  public var equity: Double
  /// equity / capital - 1.
  public var returnPct: Double
  public var positions: [PositionInfo]
  /// The first bar it trades (nil: the first stored bar).
  public var from: String?
  public var lastBar: String?
  public var fills: Int
  public var trades: Int
  public var realizedPnl: Double
  public var paused: Bool
  /// The drawdown halt (or ruin) stopped its trading.
  public var halted: Bool
  public var symbols: [String]
  public var timeframe: String
  public var datasets: [String]
  public var createdAt: String

  enum CodingKeys: String, CodingKey {
    case id, strategyVersion = "strategy_version", status, capital, cash, equity, returnPct = "return", positions, from, lastBar = "last_bar"
    case fills, trades, realizedPnl = "realized_pnl", paused, halted, symbols, timeframe, datasets, createdAt = "created_at"
  }
}

/// One strategy's runner and account, as `strategy status` shows them.
public struct RunnerStatus: Codable, Sendable, Equatable {
  public var strategy: String
  /// running, paused, stopping, stopped, completed, failed, dead (the process is gone or has
  /// not beaten for too long), or idle (an account, never run).
  public var status: String
  public var runID: String?
  /// The run's own status: running, stopping, stopped, completed, or failed (a dead runner's run).
  public var runStatus: String?
  public var feed: String?
  public var pid: Int?
  public var host: String?
  public var startedAt: String?
  public var finishedAt: String?
  public var heartbeatAt: String?
  public var heartbeatAgeSeconds: Double?
  /// The last bar processed, and how long ago it closed (while running).
  public var lastBar: String?
  public var lagSeconds: Double?
  public var barsProcessed: Int?
  public var staleRounds: Int?
  public var divergences: Int?
  public var note: String?
  public var signals24h: Int
  public var account: AccountInfo?
  public var logPath: String?
  public var error: ErrorReport?
  /// With `trades`: the account's closed trades and every fill.
  public var trades: [PaperTrade]?
  public var fills: [FillInfo]?
  /// With `equity`: the account's equity and cash at every processed bar.
  public var equityCurve: [AccountDetail.EquityPoint]?

  enum CodingKeys: String, CodingKey {
    case equityCurve = "equity_curve"
    case strategy, status, runID = "run_id", runStatus = "run_status", feed, trades, fills, pid, host, startedAt = "started_at", finishedAt =
      "finished_at", heartbeatAt = "heartbeat_at"
    case heartbeatAgeSeconds = "heartbeat_age_seconds", lastBar = "last_bar", lagSeconds = "lag_seconds", barsProcessed = "bars_processed"
    case staleRounds = "stale_rounds", divergences, note, signals24h = "signals_24h", account, logPath = "log", error
  }
}

/// What a runner did, when it returns.
public struct LiveRunSummary: Codable, Sendable, Equatable {
  public var runID: String
  public var accountID: String
  public var strategy: String
  /// stopped, or completed (a replay ran out of bars, or `once` processed what was final).
  public var status: String
  public var barsProcessed: Int
  public var signals: Int
  public var fills: Int
  public var equity: Double
  public var lastBar: String?
  /// The account is paused (entries and notifications suspended) as the run ends.
  public var paused: Bool

  enum CodingKeys: String, CodingKey {
    case runID = "run_id", accountID = "account_id", strategy, status, barsProcessed = "bars_processed", signals, fills, equity, lastBar = "last_bar"
    case paused
  }
}

/// Counts of signals over a window (seed 001's signal stats).
public struct SignalStats: Codable, Sendable, Equatable {
  public var total: Int
  public var since: String?
  public var until: String?
  public var byType: [String: Int]
  public var byStrength: [String: Int]
  public var byStrategy: [String: Int]
  public var bySymbol: [String: Int]
  public var byReason: [String: Int]
  public var late: Int
  public var suppressed: Int

  enum CodingKeys: String, CodingKey {
    case total, since, until, byType = "by_type", byStrength = "by_strength", byStrategy = "by_strategy", bySymbol = "by_symbol"
    case byReason = "by_reason", late, suppressed
  }
}

/// A page of signals.
public struct SignalPage: Codable, Sendable, Equatable {
  public var items: [SignalInfo]
  public var total: Int
  public var page: Int
  public var size: Int
  public var pages: Int
}

/// One run of a strategy (`strategy runs`): a process that advanced its paper account.
public struct RunInfo: Codable, Sendable, Equatable {
  public var id: String
  public var strategy: String
  public var accountID: String
  public var feed: String
  /// running, stopping, stopped, completed, or failed (its process ended without stopping it).
  public var status: String
  public var pid: Int?
  public var host: String?
  public var startedAt: String
  public var finishedAt: String?
  public var heartbeatAt: String?
  public var stopRequestedAt: String?
  public var barsProcessed: Int
  public var lastBar: String?
  public var staleRounds: Int
  public var divergences: Int
  public var note: String?
  /// Where its log is (`strategy start`'s runners; nil for one in a terminal or in a server).
  public var logPath: String?
  public var error: ErrorReport?

  enum CodingKeys: String, CodingKey {
    case id, strategy, accountID = "account_id", feed, status, pid, host, startedAt = "started_at", finishedAt = "finished_at"
    case heartbeatAt = "heartbeat_at", stopRequestedAt = "stop_requested_at", barsProcessed = "bars_processed", lastBar = "last_bar"
    case staleRounds = "stale_rounds", divergences, note, logPath = "log", error
  }

  init(_ run: StrategyRunRecord) {
    func time(_ value: Int64?) -> String? { value.map { UTCCalendar.format($0, alwaysTime: true) } }
    id = run.id
    strategy = run.strategyName
    accountID = run.accountID
    feed = run.feed
    status = run.status
    pid = run.pid
    host = run.host
    startedAt = UTCCalendar.format(run.startedAt, alwaysTime: true)
    finishedAt = time(run.finishedAt)
    heartbeatAt = time(run.heartbeatAt)
    stopRequestedAt = time(run.stopRequestedAt)
    barsProcessed = run.barsProcessed
    lastBar = time(run.lastBarTs)
    staleRounds = run.staleRounds
    divergences = run.divergences
    note = run.note
    logPath = run.logPath
    error = run.error.flatMap { try? JSONDecoder().decode(ErrorReport.self, from: Data($0.utf8)) }
  }
}

/// The end of a run's log (`strategy logs`).
public struct RunLog: Codable, Sendable, Equatable {
  public var strategy: String
  public var runID: String?
  public var log: String?
  /// The last lines, oldest first.
  public var lines: [String]
  /// The log has more lines before these.
  public var truncated: Bool

  enum CodingKeys: String, CodingKey { case strategy, runID = "run_id", log, lines, truncated }
}
