import Foundation
import QtoolCore
import QtoolStore

/// Where a live runner's bars come from.
public enum LiveFeed: String, Codable, Sendable, CaseIterable {
  /// At each bar's close (plus a settle delay) the runner downloads the new bars itself.
  case download
  /// Another process writes the bars (a cron `data download`, `data import`); the runner
  /// notices each commit within half a second.
  case store
  /// The stored bars, one by one as if live, until they run out.
  case replay
}

/// `qtool strategy run` (and what `strategy start` runs detached): which strategy, fed how,
/// on which paper account.
public struct LiveRunRequest: Codable, Sendable, Equatable {
  public var strategy: StrategyReference
  public var feed: LiveFeed
  /// The first bar the account trades (a new account only); the indicators warm up on the
  /// stored bars before it. Default: a replay from the first stored bar, a live feed from the
  /// first bar that closes after the start.
  @ISOTimestamp public var from: Int64?
  /// Replay: bars per second (nil: as fast as they are evaluated).
  public var speed: Double?
  /// Process what is final and return.
  public var once: Bool
  /// Download feed: how long after a bar's close to ask for it.
  public var settleMilliseconds: Int64
  /// Download feed: how many times to ask again for a bar that is not there yet, with doubling
  /// waits, before logging stale data and waiting for the next bar.
  public var retries: Int
  /// A signal whose bar closed more than this many bars before it was processed is late:
  /// stored, not notified (unless `notifyLate`).
  public var lateAfterBars: Int
  public var notifyLate: Bool
  /// Close the open account (if any) and open a new one.
  public var newAccount: Bool
  /// A new account's capital (default: the spec's).
  public var capital: Double?
  /// Overrides of the spec's params (a new account only; a continued one keeps its own).
  public var params: [String: Double]
  /// Where a detached runner's log goes (for `strategy status`).
  public var logPath: String?

  public init(
    strategy: StrategyReference, feed: LiveFeed = .download, from: Int64? = nil, speed: Double? = nil, once: Bool = false,
    settleMilliseconds: Int64 = 5_000, retries: Int = 5, lateAfterBars: Int = 1, notifyLate: Bool = false, newAccount: Bool = false,
    capital: Double? = nil, params: [String: Double] = [:], logPath: String? = nil
  ) {
    self.strategy = strategy
    self.feed = feed
    self.from = from
    self.speed = speed
    self.once = once
    self.settleMilliseconds = settleMilliseconds
    self.retries = retries
    self.lateAfterBars = lateAfterBars
    self.notifyLate = notifyLate
    self.newAccount = newAccount
    self.capital = capital
    self.params = params
    self.logPath = logPath
  }

  enum CodingKeys: String, CodingKey {
    case strategy, feed, from, speed, once, settleMilliseconds = "settle_ms", retries, lateAfterBars = "late_after_bars", notifyLate = "notify_late"
    case newAccount = "new_account", capital, params, logPath = "log_path"
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    strategy = try container.decode(StrategyReference.self, forKey: .strategy)
    feed = try container.decodeIfPresent(LiveFeed.self, forKey: .feed) ?? .download
    _from = try container.decode(ISOTimestamp.self, forKey: .from)
    speed = try container.decodeIfPresent(Double.self, forKey: .speed)
    once = try container.decodeIfPresent(Bool.self, forKey: .once) ?? false
    settleMilliseconds = try container.decodeIfPresent(Int64.self, forKey: .settleMilliseconds) ?? 5_000
    retries = try container.decodeIfPresent(Int.self, forKey: .retries) ?? 5
    lateAfterBars = try container.decodeIfPresent(Int.self, forKey: .lateAfterBars) ?? 1
    notifyLate = try container.decodeIfPresent(Bool.self, forKey: .notifyLate) ?? false
    newAccount = try container.decodeIfPresent(Bool.self, forKey: .newAccount) ?? false
    capital = try container.decodeIfPresent(Double.self, forKey: .capital)
    params = try container.decodeIfPresent([String: Double].self, forKey: .params) ?? [:]
    logPath = try container.decodeIfPresent(String.self, forKey: .logPath)
  }

  /// Refuses values that cannot work, naming the field.
  func validate() throws {
    // Below a bar in 11 days the wait between bars would not fit in milliseconds anyway.
    if let speed, !(speed >= 1e-6 && speed.isFinite) {
      throw OperationError.invalidArgument("a replay's speed must be a number of bars per second from 0.000001 up, or max", field: "speed")
    }
    if speed != nil, feed != .replay {
      throw OperationError.invalidArgument("a speed applies only to the replay feed", field: "speed", hint: "leave out {speed}, or use {feed} replay")
    }
    guard settleMilliseconds >= 0, settleMilliseconds <= 3_600_000 else {
      throw OperationError.invalidArgument("the settle delay must be from 0 to 1 hour", field: "settle")
    }
    guard retries >= 0, retries <= 100 else { throw OperationError.invalidArgument("retries must be from 0 to 100", field: "retries") }
    guard lateAfterBars >= 0, lateAfterBars <= 1_000_000 else {
      throw OperationError.invalidArgument("late_after_bars must be from 0 to 1000000", field: "late_after_bars")
    }
    if let capital, !(capital > 0 && capital <= CompiledStrategy.maxCapital) {
      throw OperationError.invalidArgument("capital must be above 0 and at most 1e15", field: "capital")
    }
  }
}

/// What a runner reports as it works: the CLI prints these on stderr, a server streams them.
public enum LiveEvent: Sendable {
  /// The runner holds its lease and its account: `continued` when the account existed.
  case started(runID: String, accountID: String, strategy: String, version: Int, feed: LiveFeed, continued: Bool, cursor: Int64?)
  /// The feed is up (a download feed's first download went through): the runner runs.
  case running(runID: String)
  case signal(SignalInfo)
  case fill(FillInfo)
  /// A bar processed: its time and the equity after it.
  case bar(time: Int64, equity: Double, signals: Int)
  /// Something worth a line: stale data, a divergence, a new version registered, a replay's end.
  case note(String)
  case warning(String)
}

/// Errors particular to live runs.
public enum LiveError: QtoolError, Equatable {
  /// The download feed needs a source that serves bars as they close.
  case sourceCannotServeLive(dataset: String, source: String?, origin: String, liveSources: [String])
  /// The open account follows another version, other params or capital, or started elsewhere.
  case accountMismatch(strategy: String, what: String, account: String, requested: String)
  /// The source could not be reached when the runner started.
  case sourceUnreachable(source: String, reason: String)
  /// The runner did not stop in time.
  case stopTimeout(strategy: String, pid: Int?, seconds: Double)
  /// Pausing or resuming a strategy with no account.
  case noAccount(strategy: String)
  /// No stored bars to replay.
  case nothingToReplay(dataset: String)

  public var category: ErrorCategory {
    switch self {
    case .sourceCannotServeLive, .accountMismatch: return .usage
    case .sourceUnreachable: return .unavailable
    case .stopTimeout: return .temporary
    case .noAccount, .nothingToReplay: return .notFound
    }
  }

  public var code: String {
    switch self {
    case .sourceCannotServeLive: return "source_not_live"
    case .accountMismatch: return "paper_account_mismatch"
    case .sourceUnreachable: return "source_unreachable"
    case .stopTimeout: return "stop_timeout"
    case .noAccount: return "paper_account_not_found"
    case .nothingToReplay: return "nothing_to_replay"
    }
  }

  public var message: String {
    switch self {
    case .sourceCannotServeLive(let dataset, let source, let origin, let live):
      let from = source.map { "comes from \($0)" } ?? "has no source"
      return "\(dataset) \(from) (\(origin)), which cannot serve bars as they close; the sources that can are \(live.joined(separator: ", "))"
    case .accountMismatch(let strategy, let what, let account, let requested):
      return
        "the paper account of \(strategy) runs with \(what) \(account), not \(requested): continuing it with another would make it disagree with a backtest"
    case .sourceUnreachable(let source, let reason): return "the \(source) source cannot be reached: \(reason)"
    case .stopTimeout(let strategy, let pid, let seconds):
      return
        "strategy \(strategy)\(pid.map { " (pid \($0))" } ?? "") has not stopped within \(Self.seconds(seconds)); it stops at its next bar boundary"
    case .noAccount(let strategy): return "strategy \(strategy) has no paper account yet"
    case .nothingToReplay(let dataset): return "\(dataset) has no stored bars to replay"
    }
  }

  static func seconds(_ value: Double) -> String { value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value) }

  public var details: [String: JSONValue] {
    switch self {
    case .sourceCannotServeLive(let dataset, let source, _, let live):
      return ["dataset": .string(dataset), "source": JSONValue(source), "live_sources": .array(live.map { .string($0) })]
    case .accountMismatch(let strategy, let what, let account, let requested):
      return ["strategy": .string(strategy), "field": .string(what), "account": .string(account), "requested": .string(requested)]
    case .sourceUnreachable(let source, _): return ["source": .string(source)]
    case .stopTimeout(let strategy, let pid, let seconds):
      return ["strategy": .string(strategy), "pid": pid.map { JSONValue($0) } ?? .null, "seconds": JSONValue(seconds)]
    case .noAccount(let strategy): return ["strategy": .string(strategy)]
    case .nothingToReplay(let dataset): return ["dataset": .string(dataset)]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .sourceCannotServeLive:
      return "run it on bars another process stores with {feed} store, replay the stored bars with {feed} replay, or download from a live source"
    case .accountMismatch: return "open a new paper account with {new_account} (the old one is kept, closed)"
    case .sourceUnreachable: return "check the network, the proxy and sources.<name>.base_url (`qtool config show`), then start again"
    case .stopTimeout: return "wait longer with {timeout}; `qtool strategy status` shows whether it is still running"
    case .noAccount(let strategy): return "start it first: `qtool strategy start \(strategy)`"
    case .nothingToReplay: return "download or import its bars first"
    }
  }
}

/// The sources that serve bars as they close (REST endpoints that answer up to now).
enum LiveSources {
  static let names = ["binance", "yahoo", "stooq"]
}
