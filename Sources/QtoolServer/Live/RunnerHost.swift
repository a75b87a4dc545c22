import Foundation
import Logging
import QtoolCore
import QtoolEngine
import QtoolStore
import Synchronization

/// The live runners a server hosts in its own process: the same `LiveRunner` the CLI's
/// `strategy run` (and `strategy start`, detached) runs, each on a thread of its own (a runner
/// blocks between bars; the cooperative pool answers requests). The runner takes the same lease
/// (`runner:NAME`) as a CLI runner, so a strategy runs once — here or in a CLI process — and a
/// second start is refused with 409 naming the holder. `strategy stop` from a shell stops a
/// hosted runner as it stops a detached one (the stop file), and the server's SIGTERM stops
/// every hosted runner at its next bar boundary.
final class RunnerHost: Sendable {
  final class Entry: Sendable {
    let runner: LiveRunner
    let started: LiveRunner.Started
    let finished = Atomic<Bool>(false)
    init(runner: LiveRunner, started: LiveRunner.Started) {
      self.runner = runner
      self.started = started
    }
  }

  private let entries = Mutex<[String: Entry]>([:])
  /// Strategies whose runner is starting now (between its request and its run recorded).
  private let starting = Mutex<[String: Int]>([:])
  private let logger: Logger
  /// Called with each runner event (the server publishes them on `strategy:{name}` streams).
  private let events: @Sendable (String, LiveEvent) -> Void
  /// Called once a runner has ended (stopped, completed or failed), its end recorded.
  private let ended: @Sendable (LiveStreamEvents.Ended) -> Void

  init(
    logger: Logger, events: @escaping @Sendable (String, LiveEvent) -> Void, ended: @escaping @Sendable (LiveStreamEvents.Ended) -> Void = { _ in }
  ) {
    self.logger = logger
    self.events = events
    self.ended = ended
  }

  /// The strategies whose runners run in this process now.
  var hosted: [String] { entries.withLock { $0.filter { !$0.value.finished.load(ordering: .relaxed) }.keys.sorted() } }

  func isHosted(_ name: String) -> Bool { entries.withLock { $0[name].map { !$0.finished.load(ordering: .relaxed) } ?? false } }

  /// Starts `request` on a thread of its own and answers once it holds its lease and its
  /// account (the run is recorded): what `strategy start` prints. Errors of the start (an
  /// unknown strategy, a runner of it already running, nothing to replay) are thrown.
  func start(_ request: LiveRunRequest, name: String, settings: Settings, context: OperationContext) async throws -> LiveRunner.Started {
    let events = self.events
    // Its log lines go to the server's log and to the strategy's log file, as a detached
    // runner's do: `strategy logs NAME` reads the same file whoever hosts the runner.
    var request = request
    var context = context
    let logPath = try RunnerLog.path(strategy: name, settings: settings)
    request.logPath = logPath
    context.logger = try RunnerLog.logger(appendingTo: logPath, alongside: context.logger)
    let logger = context.logger
    let feed = request.feed.rawValue
    let runner = LiveRunner(request, settings: settings, context: context) { event in events(name, event) }
    starting.withLock { $0[name, default: 0] += 1 }
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<LiveRunner.Started, any Error>) in
      let thread = Thread { [self] in
        let started: LiveRunner.Started
        do {
          started = try runner.start()
        } catch {
          startEnded(name)
          continuation.resume(throwing: error)
          return
        }
        logger.info(
          "runner \(started.strategy) v\(started.version) started in the server: run \(started.runID), \(started.continued ? "continuing" : "new") paper account \(started.accountID), feed \(feed)"
        )
        let entry = Entry(runner: runner, started: started)
        entries.withLock { $0[started.strategy] = entry }
        startEnded(name)
        continuation.resume(returning: started)
        let end: LiveStreamEvents.Ended
        do {
          let summary = try runner.run()
          logger.info(
            "runner \(summary.strategy) \(summary.status): \(summary.barsProcessed) bars, \(summary.signals) signals, equity \(summary.equity)")
          end = LiveStreamEvents.Ended(
            strategy: started.strategy, state: summary.status, runID: started.runID, barsProcessed: summary.barsProcessed, signals: summary.signals,
            fills: summary.fills, equity: summary.equity, lastBar: summary.lastBar, error: nil)
        } catch {
          logger.warning("runner \(started.strategy) failed: \(error)")
          end = LiveStreamEvents.Ended(
            strategy: started.strategy, state: "failed", runID: started.runID, barsProcessed: nil, signals: nil, fills: nil, equity: nil,
            lastBar: nil,
            error: (error as? any QtoolError)?.report ?? ErrorReport(code: "internal", category: .internal, message: "\(error)"))
        }
        entry.finished.store(true, ordering: .releasing)
        entries.withLock { if $0[started.strategy] === entry { $0[started.strategy] = nil } }
        self.ended(end)
      }
      // The engine re-runs a backtest over the stored history at each bar: a thread's default
      // stack is too small for deep rule trees.
      thread.stackSize = 8 << 20
      thread.name = "qtool-runner-\(name)"
      thread.start()
    }
  }

  private func startEnded(_ name: String) {
    starting.withLock { counts in
      counts[name, default: 1] -= 1
      if counts[name] == 0 { counts[name] = nil }
    }
  }

  /// Waits (up to `seconds`) while a runner of `name` is starting here: a stop asked for in the
  /// meantime would be lost (the starting runner clears its stop file and its run row is not
  /// written yet), so a stop waits for the start to be recorded first.
  func waitForStart(_ name: String, seconds: Double = 30) async {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while starting.withLock({ $0[name] != nil }), ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
  }

  /// Asks every hosted runner to stop at its next bar boundary and waits up to `seconds` for
  /// them to record their end; returns how many had not.
  func stopAll(seconds: Double) async -> Int {
    let running = entries.withLock { Array($0.values) }
    for entry in running { entry.runner.stop() }
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
      if running.allSatisfy({ $0.finished.load(ordering: .acquiring) }) { return 0 }
      try? await Task.sleep(for: .milliseconds(10))
    }
    return running.filter { !$0.finished.load(ordering: .acquiring) }.count
  }
}

/// A hosted runner's events on the hub, channel `runner:{strategy}` (WebSocket `strategy:{name}`):
/// `runner` (started, running, and at its end stopped, completed or failed; `{strategy, state,
/// run_id, …}`, the end with what the run did or its error), `bar` (`{strategy, time, equity,
/// signals}`), `fill` (the fill as `strategy status --trades --json` lists it), `note` and
/// `warning` (`{strategy, message}`). Signals come from the store, published by `SignalWatcher`.
enum LiveStreamEvents {
  struct State: Encodable {
    var strategy: String
    var state: String
    var runID: String
    var accountID: String?
    var version: Int?
    var feed: String?
    var continued: Bool?
    enum CodingKeys: String, CodingKey { case strategy, state, runID = "run_id", accountID = "account_id", version, feed, continued }
  }
  struct Bar: Encodable {
    var strategy: String
    var time: String
    var equity: Double
    var signals: Int
  }
  /// A runner's end: `state` stopped, completed or failed.
  struct Ended: Encodable, Sendable {
    var strategy: String
    var state: String
    var runID: String
    var barsProcessed: Int?
    var signals: Int?
    var fills: Int?
    var equity: Double?
    var lastBar: String?
    var error: ErrorReport?
    enum CodingKeys: String, CodingKey {
      case strategy, state, runID = "run_id", barsProcessed = "bars_processed", signals, fills, equity, lastBar = "last_bar", error
    }
  }

  static func publish(_ end: Ended, hub: EventHub) {
    if let data = try? APIJSON.encoder.encode(end) { hub.publish(channel: "runner:" + end.strategy, type: "runner", data: data) }
  }

  struct Message: Encodable {
    var strategy: String
    var message: String
  }

  static func publish(_ event: LiveEvent, strategy: String, hub: EventHub) {
    let channel = "runner:" + strategy
    func send<T: Encodable>(_ type: String, _ value: T) {
      if let data = try? APIJSON.encoder.encode(value) { hub.publish(channel: channel, type: type, data: data) }
    }
    switch event {
    case .started(let runID, let accountID, let name, let version, let feed, let continued, _):
      send(
        "runner",
        State(strategy: name, state: "started", runID: runID, accountID: accountID, version: version, feed: feed.rawValue, continued: continued))
    case .running(let runID):
      send("runner", State(strategy: strategy, state: "running", runID: runID))
    case .bar(let time, let equity, let signals):
      send("bar", Bar(strategy: strategy, time: UTCCalendar.format(time, alwaysTime: true), equity: equity, signals: signals))
    case .fill(let fill):
      send("fill", fill)
    case .note(let text):
      send("note", Message(strategy: strategy, message: text))
    case .warning(let text):
      send("warning", Message(strategy: strategy, message: text))
    case .signal:
      break
    }
  }
}


/// Publishes the start and the end of runners in other processes — `strategy run` in a shell,
/// a detached `strategy start`, another server — on `runner:{strategy}` (WebSocket
/// `strategy:{name}`), as `RunnerHost` publishes its own runners': a `runner` event with state
/// `started`, then one with state `stopped`, `completed` or `failed` once the run's row says it
/// ended. Runs of this process are left to the host. One read of the active runs every 200 ms.
final class RunWatcher: Sendable {
  private let database: QtoolDatabase
  private let hub: EventHub
  /// Marks failed the runs of this host whose process is gone (`LiveOperations.reconcileQuietly`)
  /// and says how many it marked.
  private let reconcile: @Sendable () -> Int
  /// The active runs of other processes at the last poll (nil before the first).
  private let active = Mutex<[String: StrategyRunRecord]?>(nil)

  init(database: QtoolDatabase, hub: EventHub, reconcile: @escaping @Sendable () -> Int = { 0 }) {
    self.database = database
    self.hub = hub
    self.reconcile = reconcile
  }

  func run(interval: Duration) async {
    while !Task.isCancelled {
      await OperationAwait.runQuietly { self.poll() }
      try? await Task.sleep(for: interval)
    }
  }

  func poll() {
    guard database.exists else { return }
    let pid = Int(getpid())
    active.withLock { state in
      guard var runs = try? database.activeStrategyRuns() else { return }
      // A runner killed without a word (kill -9, the OOM killer) leaves its run active; its
      // free lease says its process is gone, and its end is published at this poll, not when
      // someone next asks for its status.
      if runs.contains(where: { $0.host == ProcessIdentity.host && $0.pid != pid }), reconcile() > 0 {
        runs = (try? database.activeStrategyRuns()) ?? runs
      }
      let current = Dictionary(
        runs.filter { !($0.pid == pid && $0.host == ProcessIdentity.host) }.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
      defer { state = current }
      guard let before = state else { return }
      for (id, run) in current where before[id] == nil {
        publish(
          LiveStreamEvents.State(
            strategy: run.strategyName, state: "started", runID: id, accountID: run.accountID, version: nil, feed: run.feed, continued: nil),
          strategy: run.strategyName)
      }
      for (id, run) in before where current[id] == nil {
        let ended = try? database.strategyRun(id: id)
        let account = try? database.account(id: run.accountID)
        publish(
          LiveStreamEvents.Ended(
            strategy: run.strategyName, state: ended?.status ?? "stopped", runID: id, barsProcessed: ended?.barsProcessed, signals: nil, fills: nil,
            equity: account?.equity, lastBar: (ended?.lastBarTs).map { UTCCalendar.format($0, alwaysTime: true) },
            error: ended?.error.flatMap { try? JSONDecoder().decode(ErrorReport.self, from: Data($0.utf8)) }),
          strategy: run.strategyName)
      }
    }
  }

  private func publish<T: Encodable>(_ value: T, strategy: String) {
    if let data = try? APIJSON.encoder.encode(value) { hub.publish(channel: "runner:" + strategy, type: "runner", data: data) }
  }
}
