import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QtoolCore
import QtoolEngine
import QtoolStore
import Synchronization

/// Watches the store for signals committed by any process — a runner this server hosts, a
/// `strategy run` in a shell, a detached `strategy start` — and publishes each on the hub as an
/// event of type `signal` on `signal:{strategy}` (WebSocket channels `signals` and
/// `strategy:{name}` carry them; SSE streams use them as a wake-up and read the store).
/// One query every 20 ms for the whole server (`max(seq)`, a look at the table's last row),
/// and the new rows when it grew: a signal committed by another process reaches the streams
/// within that; a hosted runner's are published as soon as its bar is committed.
final class SignalWatcher: Sendable {
  private let database: QtoolDatabase
  private let hub: EventHub
  private let metrics: ServerMetrics
  private let last: Mutex<Int64?>
  /// The signals of the latest poll that found new ones, as SSE events: every stream woken by
  /// them writes them from here instead of each reading (and encoding) them from the store.
  private let latest = Mutex<(after: Int64, through: Int64, events: [(seq: Int64, signal: SignalInfo, text: String)])>((0, 0, []))
  /// Answers of `GET /signals` by query, with the newest insertion number they hold: signals are
  /// only ever added, so an answer stands until a newer one is stored.
  private let pages = Mutex<[String: (newest: Int64, data: Data)]>([:])

  init(database: QtoolDatabase, hub: EventHub, metrics: ServerMetrics) {
    self.database = database
    self.hub = hub
    self.metrics = metrics
    last = Mutex((try? database.lastSignalSeq()) ?? nil)
  }

  func run(interval: Duration) async {
    while !Task.isCancelled {
      await OperationAwait.runQuietly { self.poll() }
      try? await Task.sleep(for: interval)
    }
  }

  /// Publishes the signals stored since the last poll; returns how many. Polls run one at a
  /// time (the timer's and a hosted runner's after its bar), so none is published twice.
  @discardableResult
  func poll() -> Int {
    guard database.exists else { return 0 }
    return last.withLock { state -> Int in
      guard let newest = try? database.lastSignalSeq() else { return 0 }
      guard let seen = state else {
        state = newest
        return 0
      }
      var after = seen
      var count = 0
      while after < newest {
        guard let batch = try? database.signals(SignalFilter(), afterSeq: after, throughSeq: newest, limit: 1000), !batch.isEmpty else {
          latest.withLock { $0.events = [] }
          break
        }
        var published: [(channel: String, data: Data)] = []
        var events: [(seq: Int64, signal: SignalInfo, text: String)] = []
        for record in batch {
          let info = SignalInfo(record)
          if let data = try? APIJSON.encoder.encode(info) {
            published.append(("signal:" + info.strategy, data))
            events.append((record.seq, info, "id: \(info.id)\nevent: signal\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
          }
          metrics.signalsEmitted.increment()
        }
        // Set before the streams are woken: a stream that drains finds every signal published so far.
        let through = batch[batch.count - 1].seq
        let cached = events.count == batch.count
        latest.withLock { latest in
          latest.after = cached ? after : 0
          latest.through = cached ? through : 0
          latest.events = cached ? events : []
        }
        for (channel, data) in published { hub.publish(channel: channel, type: "signal", data: data) }
        count += batch.count
        after = through
      }
      state = max(seen, newest)
      return count
    }
  }
}

extension SignalWatcher {
  /// The signals stored after `position` as SSE events, when the latest poll's batch holds all
  /// of them up to its end (nil: read them from the store). A signal stored after the batch
  /// wakes the streams again.
  func events(after position: Int64) -> [(seq: Int64, signal: SignalInfo, text: String)]? {
    latest.withLock { batch -> [(seq: Int64, signal: SignalInfo, text: String)]? in
      guard !batch.events.isEmpty, position >= batch.after, position <= batch.through else { return nil }
      return batch.events.filter { $0.seq > position }
    }
  }

  /// The answer stored for `key` if no signal was stored since, else `compute`'s (stored).
  func page(_ key: String, newest: Int64, compute: () throws -> Data) rethrows -> Data {
    if let cached = pages.withLock({ $0[key] }), cached.newest == newest { return cached.data }
    let data = try compute()
    pages.withLock { pages in
      if pages.count >= 256, pages[key] == nil { pages.removeAll() }
      pages[key] = (newest, data)
    }
    return data
  }
}

extension OperationAwait {
  /// Runs `body` on the operation threads and waits, ignoring errors.
  static func runQuietly(_ body: @escaping @Sendable () -> Void) async {
    _ = try? await run(cancellation: CancellationToken()) { body() }
  }
}

/// `GET /api/v1/stream/signals`: Server-Sent Events of signals, each `event: signal` with
/// `id:` = the signal's id and the signal (as `signals list` shows it) as data. The store is
/// the log: a client resuming with `Last-Event-ID` gets every matching signal stored after that
/// one, in insertion order, then new ones — no gap and no duplicate, across reconnects and
/// server restarts. `tail=N` starts with the last N matching signals (what `signals tail -n N`
/// prints), then `event: caught-up` (with the newest stored signal's id); without either, only signals stored from now on.
enum SignalStream {
  static func stream(_ service: APIService, _ request: APIRequest) async throws -> APIResult {
    let filter = try LiveRoutes.filter(request, allowSince: false)
    let tail = try request.query["tail"].map { _ in try request.int("tail", default: 0, in: 0...10_000) }
    let lastText = request.headers[.init("Last-Event-ID")!] ?? request.query["last_event_id"]
    let resuming = lastText.map { !$0.trimmingCharacters(in: .whitespaces).isEmpty } ?? false
    // The hub wakes the stream when signals are stored; subscribed before the first read, so
    // none stored in between is missed.
    let subscription = service.hub.subscribe(after: nil) { $0.hasPrefix("signal:") }
    var position: Int64
    var backlog: [SignalInfo] = []
    // The id of the newest stored signal when the tail was read: `caught-up` carries it, so a
    // client resuming from there misses nothing stored after.
    var positionID: String?
    do {
      if resuming, let lastText {
        let id = lastText.trimmingCharacters(in: .whitespaces)
        guard id.count <= 128, let record = try await service.run({ try $0.database.signal(id: id) }) else {
          throw ServerError.badParameter("Last-Event-ID", "the id of a stored signal, not '\(String(id.prefix(80)))'")
        }
        position = record.seq
      } else {
        position = try await service.run { try LiveOperations($0).lastSignalSeq() }
        let through = position
        if let tail, tail > 0 {
          backlog = try await service.run { try LiveOperations($0).tail(filter, count: tail, through: through) }
        }
        if tail != nil, through > 0 {
          positionID = try await service.run { try $0.database.signals(SignalFilter(), afterSeq: through - 1, throughSeq: through, limit: 1).first?.id }
        }
      }
    } catch {
      subscription.close()
      throw error
    }
    let gauge = service.metrics.streamSubscribers
    var headers = HTTPFields()
    headers[.contentType] = "text/event-stream"
    headers[.cacheControl] = "no-cache"
    headers[.init("X-Accel-Buffering")!] = "no"
    let start = position
    let initial = backlog
    let caughtUp = tail != nil && !resuming
    let caughtUpID = positionID
    let body = ResponseBody { writer in
      gauge.increment()
      defer {
        gauge.decrement()
        subscription.close()
      }
      var position = start
      try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
      for signal in initial { try await writer.write(ByteBuffer(string: try SignalStream.signalEvent(signal))) }
      if caughtUp { try await writer.write(ByteBuffer(string: (caughtUpID.map { "id: \($0)\n" } ?? "") + "event: caught-up\ndata: {}\n\n")) }
      /// Writes what was stored after `position`, in batches.
      func drain(_ writer: inout any ResponseBodyWriter) async throws {
        if let ready = service.signals.events(after: position) {
          var text = ""
          for event in ready where filter.matches(event.signal) { text += event.text }
          if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
          if let last = ready.last { position = last.seq }
          return
        }
        while true {
          let after = position
          let batch = try await service.run { context -> [SignalInfo] in
            let newest = try context.database.lastSignalSeq()
            guard newest > after else { return [] }
            return try LiveOperations(context).signals(after: after, through: newest, SignalFilter(), limit: 500)
          }
          guard let last = batch.last else { return }
          var text = ""
          for signal in batch where filter.matches(signal) { text += try SignalStream.signalEvent(signal) }
          if !text.isEmpty { try await writer.write(ByteBuffer(string: text)) }
          position = last.seq
          if batch.count < 500 { return }
        }
      }
      try await drain(&writer)
      for await event in subscription.events {
        if event.type == "ping" {
          try await writer.write(ByteBuffer(string: ": ping\n\n"))
          continue
        }
        try await drain(&writer)
      }
      try await writer.finish(nil)
    }
    return .response(Response(status: .ok, headers: headers, body: body))
  }

  static func signalEvent(_ signal: SignalInfo) throws -> String {
    "id: \(signal.id)\nevent: signal\ndata: \(String(decoding: try APIJSON.encoder.encode(signal), as: UTF8.self))\n\n"
  }
}

extension SignalFilter {
  /// The filter applied to a signal already read (the stream reads every new row once, for all
  /// of its filters at once).
  func matches(_ signal: SignalInfo) -> Bool {
    (strategies.isEmpty || strategies.contains(signal.strategy)) && (symbols.isEmpty || symbols.contains(signal.symbol))
      && (types.isEmpty || types.contains(signal.type)) && (levels.isEmpty || levels.contains(signal.strengthLevel))
      && (minStrength.map { signal.strengthRaw >= $0 } ?? true)
  }
}
