import Foundation
import QtoolCore
import Synchronization

/// One event of a stream: its id (increasing across the server's life, and across restarts,
/// since it starts from the start time), its channel (`jobs`, `job:{id}`; runners and signals
/// add theirs), its type and its JSON payload.
public struct StreamEvent: Sendable, Equatable {
  public var id: Int64
  public var channel: String
  public var type: String
  public var data: Data

  /// The event as Server-Sent Events text.
  var sse: String { "id: \(id)\nevent: \(type)\ndata: \(String(decoding: data, as: UTF8.self))\n\n" }
}

/// The server's publish/subscribe hub for streams: SSE and WebSocket subscribers get every
/// event of their channels published after they subscribed, and a subscriber resuming with
/// `Last-Event-ID` first gets the events it missed from a ring of recent ones, with no gap and
/// no duplicate (replay and subscription happen under one lock).
public final class EventHub: Sendable {
  private struct Subscriber {
    var matches: @Sendable (String) -> Bool
    var continuation: AsyncStream<StreamEvent>.Continuation
  }

  private struct State {
    var nextID: Int64
    var ring: [StreamEvent] = []
    var subscribers: [Int: Subscriber] = [:]
    var nextSubscriber = 0
    var closed = false
  }

  private let state: Mutex<State>
  private let capacity: Int

  public init(firstID: Int64, capacity: Int = 8192) {
    state = Mutex(State(nextID: firstID))
    self.capacity = capacity
  }

  /// The id the last published event had (or just before the first).
  public var lastID: Int64 { state.withLock { $0.nextID - 1 } }

  public var subscriberCount: Int { state.withLock { $0.subscribers.count } }

  /// Publishes an event to every subscriber of `channel`; returns it.
  @discardableResult
  public func publish(channel: String, type: String, data: Data) -> StreamEvent {
    state.withLock { state in
      let event = StreamEvent(id: state.nextID, channel: channel, type: type, data: data)
      state.nextID += 1
      state.ring.append(event)
      if state.ring.count > capacity { state.ring.removeFirst(state.ring.count - capacity) }
      for subscriber in state.subscribers.values where subscriber.matches(channel) { subscriber.continuation.yield(event) }
      return event
    }
  }

  /// A subscription: what was missed since `lastEventID` (when given), then what comes.
  public struct Subscription: Sendable {
    public var replay: [StreamEvent]
    /// False when events after `lastEventID` were dropped from the ring already: the client
    /// must reload the state instead of relying on the replay.
    public var complete: Bool
    public var events: AsyncStream<StreamEvent>
    /// The id of the last event published before this subscription began.
    public var position: Int64
    let cancel: @Sendable () -> Void
    public func close() { cancel() }
  }

  public func subscribe(after lastEventID: Int64?, matches: @escaping @Sendable (String) -> Bool) -> Subscription {
    let (stream, continuation) = AsyncStream<StreamEvent>.makeStream(bufferingPolicy: .bufferingNewest(4096))
    let (replay, complete, key, position) = state.withLock { state -> ([StreamEvent], Bool, Int, Int64) in
      let key = state.nextSubscriber
      state.nextSubscriber += 1
      if state.closed { return ([], true, key, state.nextID - 1) }
      state.subscribers[key] = Subscriber(matches: matches, continuation: continuation)
      guard let lastEventID else { return ([], true, key, state.nextID - 1) }
      let replay = state.ring.filter { $0.id > lastEventID && matches($0.channel) }
      let complete = (state.ring.first.map { $0.id <= lastEventID + 1 } ?? true) || lastEventID >= state.nextID - 1
      return (replay, complete, key, state.nextID - 1)
    }
    let cancel: @Sendable () -> Void = { [weak self] in
      // Finished outside the lock: finishing runs onTermination, which comes back here.
      let removed = self?.state.withLock { state in state.subscribers.removeValue(forKey: key) }
      removed?.continuation.finish()
    }
    continuation.onTermination = { _ in cancel() }
    if state.withLock({ $0.closed }) { continuation.finish() }
    return Subscription(replay: replay, complete: complete, events: stream, position: position, cancel: cancel)
  }

  /// Sends every subscriber a keep-alive (type `ping`, id 0, kept in no ring): SSE writes a
  /// comment, so proxies keep the connection open.
  public func heartbeat() {
    state.withLock { state in
      for subscriber in state.subscribers.values {
        subscriber.continuation.yield(StreamEvent(id: 0, channel: "", type: "ping", data: Data()))
      }
    }
  }

  /// Ends every subscription (the server is stopping) and refuses new ones.
  public func close() {
    let subscribers = state.withLock { state in
      state.closed = true
      defer { state.subscribers = [:] }
      return Array(state.subscribers.values)
    }
    for subscriber in subscribers { subscriber.continuation.finish() }
  }
}

/// A channel name a client may subscribe to: `jobs`, `job:{id}`, `signals` (every signal any
/// runner commits), `strategy:{name}` (that strategy's signals, and the events of its runner
/// when this server hosts it: runner, bar, fill, note, warning).
enum StreamChannel {
  static func validate(_ name: String) -> Bool {
    if name == "jobs" || name == "signals" { return true }
    if name.hasPrefix("job:") { return name.count > 4 && name.count < 64 }
    if name.hasPrefix("strategy:") {
      let strategy = name.dropFirst(9)
      return !strategy.isEmpty && strategy.count <= 64 && strategy.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._^=-".contains($0)) }
    }
    return false
  }

  /// The scope a subscriber of `name` needs.
  static func scope(_ name: String) -> Scope {
    if name == "signals" { return .signalsRead }
    if name.hasPrefix("strategy:") { return .strategiesRead }
    return .jobsRead
  }

  /// Whether an event published on `published` reaches a subscriber of `subscribed`. Signals
  /// are published on `signal:{strategy}`, a hosted runner's events on `runner:{strategy}`.
  static func matches(subscribed: String, published: String) -> Bool {
    if subscribed == published { return true }
    if subscribed == "jobs" { return published.hasPrefix("job:") }
    if subscribed == "signals" { return published.hasPrefix("signal:") }
    if subscribed.hasPrefix("strategy:") {
      let name = subscribed.dropFirst(9)
      return published == "signal:" + name || published == "runner:" + name
    }
    return false
  }

  /// The channel a WebSocket message names: the job's for `jobs`, else the subscribed one.
  static func label(subscribed: String, published: String) -> String {
    subscribed == "jobs" ? published : subscribed
  }
}
