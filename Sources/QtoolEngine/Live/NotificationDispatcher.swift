import Dispatch
import Foundation
import Logging
import QtoolCore
import QtoolData
import QtoolStore
import Synchronization

/// Sends the outbox's notifications while a runner runs, on a thread of its own, so a slow or
/// failing endpoint never delays a decision: the bar's transaction only writes outbox rows.
/// HTTP channels share one libcurl multi handle (many transfers at once, a slow one holding
/// up no other); command channels run on threads of their own. Every attempt is recorded;
/// failures are tried again with exponential back-off and jitter (a Retry-After obeyed), up
/// to the channel's attempts, then the notification is dead. The `webhook-id` of a signal's
/// notification is the signal's id on every attempt, so a receiver can drop repeats.
final class NotificationDispatcher: @unchecked Sendable {
  private struct Item {
    var outbox: OutboxRecord
    var signal: SignalInfo
    var channel: ChannelRecord
    var config: ChannelConfig
  }

  private struct Shared {
    var stopping = false
    var abortAt: Int64?
    var woken = true
    /// After `stop`: the due notifications were taken one last time.
    var flushed = false
    /// Outbox rows being sent (HTTP or command).
    var inFlight = Set<Int64>()
  }

  private let database: QtoolDatabase
  /// Only this strategy's notifications: each runner sends its own.
  private let strategy: String
  private let clock: any WallClock
  private let settings: NotifySettings
  private let logger: Logger
  private let environment: [String: String]
  private let shared = Mutex(Shared())
  private let wakeSignal = DispatchSemaphore(value: 0)
  private let finished = DispatchSemaphore(value: 0)
  /// Made when the first notification goes over HTTP: curl's TLS set-up costs a runner about
  /// 2 MB of memory it need not pay without a webhook or chat channel.
  private let client = Mutex<SharedClient?>(nil)
  private let clientSettings = HTTPSettings(
    userAgent: "qtool/\(VersionInfo.version)", connectTimeout: 10, stallTimeout: 60, minimumSpeed: 1, totalTimeout: 600, maxBodyBytes: 1 << 20,
    maxRedirects: 0)
  private let commands = DispatchQueue(label: "qtool.notify.commands", attributes: .concurrent)
  /// Called after every attempt (for the runner's log).
  var onAttempt: (@Sendable (String, DeliveryResult) -> Void)?

  init(strategy: String, database: QtoolDatabase, clock: any WallClock, settings: NotifySettings, logger: Logger) {
    self.strategy = strategy
    self.database = database
    self.clock = clock
    self.settings = settings
    self.logger = logger
    environment = ProcessInfo.processInfo.environment
  }

  func start() {
    let thread = Thread { [self] in
      loop()
      finished.signal()
    }
    thread.name = "qtool-notify"
    thread.start()
  }

  /// New outbox rows were committed: look at once.
  func wake() {
    shared.withLock { $0.woken = true }
    wakeSignal.signal()
    client.withLock { $0 }?.http.wakeUp()
  }

  /// Sends what is due one last time, then stops taking notifications; transfers get `grace`
  /// milliseconds to finish (a notification cut off stays pending and is sent by the strategy's
  /// next run, with the same id).
  func stop(grace: Int64) {
    shared.withLock {
      $0.stopping = true
      $0.abortAt = clock.now() + grace
    }
    wake()
    finished.wait()
    // Commands have timeouts of their own; wait for them within the grace too.
    while shared.withLock({ !$0.inFlight.isEmpty && clock.now() < ($0.abortAt ?? 0) }) { usleep(5_000) }
  }

  private func loop() {
    var queue: [Item] = []
    var lastCheck: Int64 = .min
    /// When the next scheduled retry is due (checked again at least every second).
    var nextDue: Int64 = .max
    var nextTag = 0
    var transfers: [Int: (item: Item, started: Int64)] = [:]
    let feed = HTTPClient.Feed(
      next: { [self] in
        let now = clock.now()
        let (stopping, woken, flushed) = shared.withLock { state -> (Bool, Bool, Bool) in
          defer { state.woken = false }
          return (state.stopping, state.woken, state.flushed)
        }
        if stopping, flushed, queue.isEmpty { return nil }
        if queue.isEmpty, woken || stopping || now >= nextDue || now - lastCheck >= 1000 {
          lastCheck = now
          queue = load(now: now)
          nextDue = (try? database.nextNotificationDue(strategy: strategy, after: now)) ?? .max
          // Stopping: what is due is sent, batch after batch, until nothing is (or the grace ends).
          if stopping, queue.isEmpty { shared.withLock { $0.flushed = true } }
        }
        while !queue.isEmpty {
          let item = queue.removeFirst()
          if item.channel.kind == ChannelKind.command.rawValue {
            sendCommand(item)
            continue
          }
          do {
            let request = try Delivery.request(
              channel: item.channel, config: item.config, signal: item.signal, webhookID: item.signal.id, now: now, settings: settings,
              environment: environment)
            nextTag += 1
            transfers[nextTag] = (item, now)
            return (nextTag, request)
          } catch {
            record(item, DeliveryResult(outcome: .dead, status: nil, latencyMilliseconds: 0, error: "\(error)"))
          }
        }
        return nil
      },
      isFinished: { [self] in shared.withLock { $0.stopping && $0.flushed } },
      shouldAbort: { [self] in shared.withLock { state in state.abortAt.map { clock.now() >= $0 } ?? false } },
      waitForWork: { [self] in
        let wait = max(1, min(100, nextDue == .max ? 100 : nextDue - clock.now()))
        _ = wakeSignal.wait(timeout: .now() + .milliseconds(Int(wait)))
      })
    // Until the first HTTP request, the feed is driven here, without curl (as `run` would).
    var first: (tag: Int, request: HTTPRequest)?
    while first == nil, !feed.shouldAbort() {
      if let next = feed.next() {
        first = next
      } else if feed.isFinished() {
        break
      } else {
        feed.waitForWork()
      }
    }
    if let request = first {
      let http = HTTPClient(settings: clientSettings)
      let box = SharedClient(http)
      client.withLock { $0 = box }
      var pending: (tag: Int, request: HTTPRequest)? = request
      let resumed = HTTPClient.Feed(
        next: {
          defer { pending = nil }
          return pending ?? feed.next()
        }, isFinished: feed.isFinished, shouldAbort: feed.shouldAbort, waitForWork: feed.waitForWork)
      http.run(feed: resumed, concurrency: 16) { [self] tag, result in
        guard let (item, started) = transfers.removeValue(forKey: tag) else { return }
        let now = clock.now()
        if let due = record(item, Delivery.classify(result, latency: now - started, now: now)) { nextDue = min(nextDue, due) }
      }
    }
    // Aborted transfers stay pending: forget them here.
    shared.withLock { state in for (_, entry) in transfers { state.inFlight.remove(entry.item.outbox.id) } }
  }

  /// The due notifications not already being sent.
  private func load(now: Int64) -> [Item] {
    let busy = shared.withLock { $0.inFlight }
    do {
      let rows = try database.dueNotifications(strategy: strategy, now: now, excluding: busy, limit: 32)
      let items = rows.map { outbox, signal, channel in
        Item(
          outbox: outbox, signal: SignalInfo(signal), channel: channel,
          config: (try? JSONDecoder().decode(ChannelConfig.self, from: Data(channel.config.utf8))) ?? ChannelConfig())
      }
      shared.withLock { state in for item in items { state.inFlight.insert(item.outbox.id) } }
      return items
    } catch {
      logger.warning("notifications: cannot read the outbox: \(error)")
      return []
    }
  }

  private func sendCommand(_ item: Item) {
    commands.async { [self] in
      guard let command = item.config.command else {
        record(item, DeliveryResult(outcome: .dead, status: nil, latencyMilliseconds: 0, error: "the channel has no command"))
        return
      }
      let body = (try? Delivery.eventBody(item.signal)) ?? Data()
      record(
        item,
        CommandDelivery.run(command: command, input: body, signal: item.signal, timeoutMilliseconds: item.config.timeoutMilliseconds, clock: clock))
      wake()
    }
  }

  /// Records an attempt and schedules the next one (or gives up); returns when it is due.
  @discardableResult
  private func record(_ item: Item, _ result: DeliveryResult) -> Int64? {
    let now = clock.now()
    let attempt = item.outbox.attempts + 1
    let limit = max(1, item.config.maxAttempts ?? settings.maxAttempts)
    var outcome = result.outcome
    var error = result.error
    if outcome == .retry, attempt >= limit {
      outcome = .dead
      error = (error ?? "failed") + " (gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"))"
    }
    let next = outcome == .retry ? now + settings.delay(afterAttempt: attempt, retryAfter: result.retryAfter) : nil
    do {
      try database.recordDelivery(
        DeliveryAttemptRecord(
          outboxID: item.outbox.id, attempt: attempt, startedAt: now - result.latencyMilliseconds, latencyMs: result.latencyMilliseconds,
          status: result.status, outcome: outcome.rawValue, error: error),
        nextAttemptAt: next, at: now)
    } catch {
      logger.warning("notifications: cannot record the attempt for \(item.signal.id) to \(item.channel.name): \(error)")
    }
    if outcome == .dead {
      logger.warning("notification of \(item.signal.id) to \(item.channel.name) given up: \(error ?? "")")
    }
    shared.withLock { _ = $0.inFlight.remove(item.outbox.id) }
    var reported = result
    reported.outcome = outcome
    reported.error = error
    onAttempt?(item.channel.name, reported)
    return next
  }
}

/// The dispatcher's HTTP client, for `wake()` from other threads: `wakeUp()` is safe from any
/// thread, and only the dispatcher's thread runs transfers.
private final class SharedClient: @unchecked Sendable {
  let http: HTTPClient
  init(_ http: HTTPClient) { self.http = http }
}
