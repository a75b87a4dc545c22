import Dispatch
import Foundation
#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif
import HummingbirdWSClient
import Logging
import QtoolCore
import QtoolEngine
import Synchronization
import Testing

@testable import QtoolServer

/// A server listening on a loopback port, stopped at the end.
final class LiveServer: @unchecked Sendable {
  let fixture: ServerFixture
  let stop = CancellationToken()
  final class Port: Sendable { let value = Atomic<Int>(0) }
  private let boundPort = Port()
  private var task: Task<Void, any Error>?

  init(_ fixture: ServerFixture) async throws {
    self.fixture = fixture
    let server = APIServer(service: fixture.service)
    let stop = self.stop
    let bound = boundPort
    task = Task { try await server.run(host: "127.0.0.1", port: 0, stop: stop) { port in bound.value.store(port, ordering: .relaxed) } }
    // Generous: the whole suite runs beside it on two cores.
    let deadline = Date().addingTimeInterval(60)
    while boundPort.value.load(ordering: .relaxed) == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
    try #require(port != 0, "the server did not start within 60 s")
  }

  var port: Int { boundPort.value.load(ordering: .relaxed) }
  var base: String { "http://127.0.0.1:\(port)" }

  func shutdown() async {
    stop.cancel(.terminate)
    _ = try? await task?.value
    fixture.cleanUp()
  }

  /// Reads Server-Sent Events with curl until `events` have arrived (or the stream ended, or
  /// `seconds` passed): the raw text.
  /// Off the cooperative pool: the server in this process answers on it.
  func sse(_ path: String, token: String, lastEventID: Int64? = nil, events: Int = .max, seconds: Double) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
      DispatchQueue.global().async {
        continuation.resume(with: Result { try self.readSSE(path, token: token, lastEventID: lastEventID, events: events, seconds: seconds) })
      }
    }
  }

  private func readSSE(_ path: String, token: String, lastEventID: Int64?, events: Int, seconds: Double) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    var arguments = ["-sN", "--max-time", String(seconds), "-H", "Authorization: Bearer \(token)", base + path]
    if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    // Blocking reads on this thread (off the pool): each returns what arrived, empty at the end;
    // curl's --max-time bounds the whole.
    var text = ""
    // Only whole events (ended by a blank line) count, and only those are returned.
    func complete() -> String { text.range(of: "\n\n", options: .backwards).map { String(text[..<$0.upperBound]) } ?? "" }
    while parseEvents(complete()).count < events {
      let chunk = out.fileHandleForReading.availableData
      if chunk.isEmpty { break }
      text += String(decoding: chunk, as: UTF8.self)
    }
    // SIGKILL: curl is done with; Process.terminate() left it running until its --max-time.
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    return complete()
  }
}

/// The events of an SSE text: (id, type, data).
func parseEvents(_ text: String) -> [(id: Int64, type: String, data: String)] {
  text.components(separatedBy: "\n\n").compactMap { block in
    var id: Int64?
    var type = "message"
    var data = ""
    for line in block.split(separator: "\n") {
      if line.hasPrefix("id: ") { id = Int64(line.dropFirst(4)) }
      if line.hasPrefix("event: ") { type = String(line.dropFirst(7)) }
      if line.hasPrefix("data: ") { data = String(line.dropFirst(6)) }
    }
    return id.map { ($0, type, data) }
  }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct LiveServerTests {
  /// A client that reconnects with Last-Event-ID gets what it missed: no gap, no duplicate.
  @Test func serverSentEventsResumeWithoutGapOrDuplicate() async throws {
    let server = try await LiveServer(try await ServerFixture.make(data: false))
    let token = try server.fixture.token("jobs:read")
    let hub = server.fixture.service.hub
    func publish(_ n: Int) -> Int64 { hub.publish(channel: "job:jtest", type: "job", data: Data(#"{"n": \#(n), "status": "running"}"#.utf8)).id }

    // First connection: sees 1…3 as they are published.
    let first = Task { try await server.sse("/api/v1/stream/jobs", token: token, events: 3, seconds: 20) }
    let deadline = Date().addingTimeInterval(20)
    while hub.subscriberCount == 0, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
    let ids = (1...3).map(publish)
    let seen = parseEvents(try await first.value)
    #expect(seen.map { $0.id } == ids)
    // Disconnected: 4…6 happen meanwhile.
    let missed = (4...6).map(publish)
    let second = Task { try await server.sse("/api/v1/stream/jobs", token: token, lastEventID: try #require(seen.last).id, events: 4, seconds: 20) }
    try await Task.sleep(for: .milliseconds(100))
    let after = publish(7)
    let resumed = parseEvents(try await second.value)
    #expect(resumed.map { $0.id } == missed + [after], "no gap, no duplicate")
    #expect(resumed.map { $0.data }.first == #"{"n": 4, "status": "running"}"#)
    // Resuming from before what the ring keeps says so.
    let reset = parseEvents(try await server.sse("/api/v1/stream/jobs", token: token, lastEventID: 1, events: 1, seconds: 20))
    #expect(reset.first?.type == "reset")
    await server.shutdown()
  }

  /// A job's own stream: its state now, then each change, ending with its end.
  @Test func aJobsStreamEndsWithTheJob() async throws {
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token()
    var request = URLRequest(url: URL(string: server.base + "/api/v1/backtests")!)
    request.httpMethod = "POST"
    request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
    request.httpBody = Data(#"{"strategy": "goog-sma"}"#.utf8)
    let (data, _) = try await URLSession.shared.data(for: request)
    let job = try #require((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["data"] as? [String: Any])
    let id = try #require(job["id"] as? String)
    let text = try await server.sse("/api/v1/jobs/\(id)/events", token: token, seconds: 20)
    let events = parseEvents(text)
    #expect(!events.isEmpty)
    #expect(events.last?.data.contains(#""status":"completed""#) == true, "\(text)")
    #expect(events.map { $0.id } == events.map { $0.id }.sorted())
    await server.shutdown()
  }

  @Test func webSocketSubscribePingUnsubscribe() async throws {
    let server = try await LiveServer(try await ServerFixture.make(data: false))
    let token = try server.fixture.token("jobs:read")
    let hub = server.fixture.service.hub
    let received = Mutex<[String]>([])
    let logger = Logger(label: "test")
    try await WebSocketClient.connect(url: "ws://127.0.0.1:\(server.port)/api/v1/ws?token=\(token)", logger: logger) { inbound, outbound, _ in
      var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
      func next() async throws -> [String: Any] {
        guard case .text(let text)? = try await messages.next() else { return [:] }
        received.withLock { $0.append(text) }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
      }
      try await outbound.write(.text(#"{"type": "ping"}"#))
      #expect(try await next()["type"] as? String == "pong")
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "job:j42"}"#))
      #expect(try await next()["type"] as? String == "subscribed")
      let event = hub.publish(channel: "job:j42", type: "job", data: Data(#"{"id": "j42", "status": "running"}"#.utf8))
      hub.publish(channel: "job:other", type: "job", data: Data(#"{"id": "other"}"#.utf8))
      let message = try await next()
      #expect(message["type"] as? String == "job")
      #expect(message["channel"] as? String == "job:j42")
      #expect((message["id"] as? NSNumber)?.int64Value == event.id)
      #expect((message["data"] as? [String: Any])?["status"] as? String == "running")
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "signals:everything"}"#))
      #expect(try await next()["type"] as? String == "error")
      try await outbound.write(.text("not json"))
      #expect(try await next()["type"] as? String == "error")
      try await outbound.write(.text(#"{"type": "unsubscribe", "channel": "job:j42"}"#))
      #expect(try await next()["type"] as? String == "unsubscribed")
      hub.publish(channel: "job:j42", type: "job", data: Data(#"{"id": "j42"}"#.utf8))
      try await outbound.write(.text(#"{"type": "ping"}"#))
      #expect(try await next()["type"] as? String == "pong", "nothing more from an unsubscribed channel")
      try await outbound.close(.normalClosure, reason: nil)
    }
    #expect(received.withLock { $0.count } == 7)
    // Without credentials there is no upgrade: the route answers 401 in the envelope.
    let (data, response) = try await URLSession.shared.data(from: URL(string: server.base + "/api/v1/ws")!)
    #expect((response as? HTTPURLResponse)?.statusCode == 401)
    #expect(String(decoding: data, as: UTF8.self).contains("unauthenticated"))
    await server.shutdown()
  }

  /// Stopping cancels the jobs the server runs and records them as terminated.
  @Test func stoppingCancelsRunningJobs() async throws {
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token()
    let values = (2...80).map(String.init).joined(separator: ",")
    var request = URLRequest(url: URL(string: server.base + "/api/v1/backtests/grid")!)
    request.httpMethod = "POST"
    request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
    request.httpBody = Data(#"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [\#(values)]}, {"name": "slow", "values": [\#(values)]}], "jobs": 1}"#.utf8)
    let (data, _) = try await URLSession.shared.data(for: request)
    let id = try #require(((try JSONSerialization.jsonObject(with: data) as? [String: Any])?["data"] as? [String: Any])?["id"] as? String)
    let started = ContinuousClock.now
    await server.shutdown()
    #expect(ContinuousClock.now - started < .seconds(2))
    let job = try JobOperations(OperationContext(database: server.fixture.database)).show(id: id)
    #expect(job.status == .cancelled)
    #expect(job.error?.category == .terminated)
  }
}
