import Dispatch
import Foundation
#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif
import HummingbirdWSClient
import Logging
import QtoolCore
import QtoolEngine
import QtoolStore
import Synchronization
import Testing

@testable import QtoolServer

/// Signal events of an SSE text: (id, type, data), ids being signal ids.
func parseSignalEvents(_ text: String) -> [(id: String?, type: String, data: String)] {
  text.components(separatedBy: "\n\n").compactMap { block in
    var id: String?
    var type = "message"
    var data = ""
    var any = false
    for line in block.split(separator: "\n") {
      if line.hasPrefix("id: ") { (id, any) = (String(line.dropFirst(4)), true) }
      if line.hasPrefix("event: ") { (type, any) = (String(line.dropFirst(7)), true) }
      if line.hasPrefix("data: ") { (data, any) = (String(line.dropFirst(6)), true) }
    }
    return any ? (id, type, data) : nil
  }
}

/// A flag set from another thread.
final class Flag: Sendable {
  let value = Atomic<Bool>(false)
  var isSet: Bool { value.load(ordering: .relaxed) }
  func set() { value.store(true, ordering: .relaxed) }
}

extension LiveServer {
  /// Reads the signal stream with curl (off the cooperative pool) until `signals` signal events
  /// arrived, the stream ended or `seconds` passed; `opened` is set once the server answered.
  func signalStream(
    _ query: String = "", token: String, lastEventID: String? = nil, signals: Int, seconds: Double, opened: Flag? = nil
  ) async throws -> [(id: String?, type: String, data: String)] {
    try await withCheckedThrowingContinuation { continuation in
      // A thread of its own, not a Dispatch worker: the blocking read must not take a worker
      // from the server and the other suites running beside it on two cores.
      Thread {
        continuation.resume(
          with: Result {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            var arguments = ["-sN", "--max-time", String(seconds), "-H", "Authorization: Bearer \(token)", self.base + "/api/v1/stream/signals" + query]
            if let lastEventID { arguments += ["-H", "Last-Event-ID: \(lastEventID)"] }
            process.arguments = arguments
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            var text = ""
            func complete() -> String { text.range(of: "\n\n", options: .backwards).map { String(text[..<$0.upperBound]) } ?? "" }
            while parseSignalEvents(complete()).filter({ $0.type == "signal" }).count < signals {
              let chunk = out.fileHandleForReading.availableData
              if chunk.isEmpty { break }
              text += String(decoding: chunk, as: UTF8.self)
              if text.contains("retry:") { opened?.set() }
            }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            // A chunk can hold more events than asked for: the client "disconnects" after the
            // N-th signal, so what comes after it is left for the resume to deliver.
            var events = parseSignalEvents(complete())
            var signalsSeen = 0
            if let cut = events.firstIndex(where: { event in
              if event.type == "signal" { signalsSeen += 1 }
              return signalsSeen == signals
            }) { events = Array(events[...cut]) }
            return events
          })
      }.start()
    }
  }

  func call(_ method: String, _ path: String, token: String, body: String? = nil) async throws -> (status: Int, object: [String: Any]) {
    var request = URLRequest(url: URL(string: base + path)!)
    request.httpMethod = method
    request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
    if let body {
      request.httpBody = Data(body.utf8)
      request.setValue("application/json", forHTTPHeaderField: "Content-Type")
    }
    let (data, response) = try await URLSession.shared.data(for: request)
    return ((response as? HTTPURLResponse)?.statusCode ?? 0, (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:])
  }

  /// Polls the runner until its status is `status` (bounded).
  func waitForRunner(_ name: String, status: String, token: String, seconds: Double = 120) async throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(seconds)
    var last: [String: Any] = [:]
    while Date() < deadline {
      last = try await call("GET", "/api/v1/runners/\(name)", token: token).object["data"] as? [String: Any] ?? [:]
      if last["status"] as? String == status { return last }
      try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("runner \(name) is \(last["status"] ?? "?"), not \(status), after \(seconds) s")
    return last
  }
}

@Suite(.serialized, .timeLimit(.minutes(4))) struct LiveRoutesTests {
  /// A replay runner started through the API; its signals read over SSE by a client that
  /// disconnects and resumes with Last-Event-ID: every stored signal once, in order.
  @Test func signalsOverSSEResumeWithoutGapOrDuplicate() async throws {
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token()
    let opened = Flag()
    let first = Task { try await server.signalStream(token: token, signals: 5, seconds: 90, opened: opened) }
    let deadline = Date().addingTimeInterval(30)
    while !opened.isSet, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
    #expect(opened.isSet)

    let started = try await server.call("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay"}"#)
    #expect(started.status == 201, "\(started.object)")
    #expect((started.object["data"] as? [String: Any])?["hosted"] as? Bool == true)
    let seen = try await first.value.filter { $0.type == "signal" }
    #expect(seen.count == 5)
    _ = try await server.waitForRunner("goog-sma", status: "completed", token: token)

    let stored = try LiveOperations(OperationContext(database: server.fixture.database)).tail(SignalFilter(), count: 100_000)
    #expect(stored.count > 10)
    let resumed = try await server.signalStream(
      token: token, lastEventID: try #require(seen.last?.id), signals: stored.count - seen.count, seconds: 60
    ).filter { $0.type == "signal" }
    let ids = (seen + resumed).compactMap(\.id)
    #expect(ids == stored.map(\.id), "every stored signal once, in order")
    #expect(Set(ids).count == ids.count, "no duplicate")
    // Each event's data is the signal as `signals list` shows it.
    let decoded = try JSONDecoder().decode(SignalInfo.self, from: Data(try #require(resumed.last).data.utf8))
    #expect(decoded == stored.last)

    // tail=N: the last N, then caught-up carrying the newest id; filters apply.
    let tail = try await server.signalStream("?tail=3&type=buy", token: token, signals: 3, seconds: 20)
    let buys = stored.filter { $0.type == "BUY" }.suffix(3)
    #expect(tail.filter { $0.type == "signal" }.compactMap(\.id) == buys.map(\.id))
    await server.shutdown()
  }

  /// WebSocket channels `signals` and `strategy:{name}`: the runner's signals, bars and state.
  @Test func webSocketSignalAndStrategyChannels() async throws {
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token("signals:read,strategies:read,strategies:execute")
    let logger = Logger(label: "test")
    let port = server.port
    try await WebSocketClient.connect(url: "ws://127.0.0.1:\(port)/api/v1/ws?token=\(token)", logger: logger) { inbound, outbound, _ in
      var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
      func next() async throws -> [String: Any] {
        guard case .text(let text)? = try await messages.next() else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
      }
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "signals"}"#))
      #expect(try await next()["type"] as? String == "subscribed")
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "strategy:goog-sma"}"#))
      #expect(try await next()["type"] as? String == "subscribed")
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "jobs"}"#))
      let refused = try await next()
      #expect(refused["type"] as? String == "error", "jobs:read is missing")
      let started = try await server.call("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay", "speed": 200}"#)
      #expect(started.status == 201, "\(started.object)")
      var types: [String: Set<String>] = [:]
      var ended: [String: Any]?
      func note(_ message: [String: Any]) {
        guard let channel = message["channel"] as? String, let type = message["type"] as? String else { return }
        types[channel, default: []].insert(type)
        let data = message["data"] as? [String: Any] ?? [:]
        if type == "signal" { #expect(data["strategy"] as? String == "goog-sma") }
        if type == "runner", ["stopped", "completed", "failed"].contains(data["state"] as? String ?? "") { ended = data }
      }
      var deadline = Date().addingTimeInterval(60)
      let all: Set<String> = ["signal", "bar", "runner"]
      while Date() < deadline, !(types["signals"]?.contains("signal") == true && types["strategy:goog-sma"]?.isSuperset(of: all) == true) {
        note(try await next())
      }
      #expect(types["signals"] == ["signal"], "the signals channel carries signals only")
      #expect(types["strategy:goog-sma"]?.isSuperset(of: ["signal", "bar", "runner"]) == true, "\(types)")
      // Its end is an event too: stopped (or completed, when the replay ran out first).
      let stopped = try await server.call("POST", "/api/v1/strategies/goog-sma:stop", token: token, body: "{}")
      #expect(stopped.status == 200, "\(stopped.object)")
      #expect(["running", "not_running"].contains((stopped.object["data"] as? [String: Any])?["was"] as? String ?? ""))
      deadline = Date().addingTimeInterval(20)
      while ended == nil, Date() < deadline { note(try await next()) }
      let end = try #require(ended, "a runner event for the runner's end")
      #expect(end["run_id"] as? String == (started.object["data"] as? [String: Any])?["run_id"] as? String)
      #expect(end["state"] as? String == ((stopped.object["data"] as? [String: Any])?["was"] as? String == "running" ? "stopped" : "completed"))
      #expect(end["bars_processed"] as? Int ?? 0 > 0)
      #expect(end["equity"] as? Double != nil)
      try await outbound.close(.normalClosure, reason: nil)
    }
    await server.shutdown()
  }

  /// A runner in another process (its run row written by it, as `strategy run` in a shell
  /// writes it): its start and its end on `strategy:{name}` too.
  @Test func anotherProcesssRunnerStartsAndEndsOnTheStrategyChannel() async throws {
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token("strategies:read")
    let database = server.fixture.database
    let logger = Logger(label: "test")
    try await WebSocketClient.connect(url: "ws://127.0.0.1:\(server.port)/api/v1/ws?token=\(token)", logger: logger) { inbound, outbound, _ in
      var messages = inbound.messages(maxSize: 1 << 20).makeAsyncIterator()
      func next() async throws -> [String: Any] {
        guard case .text(let text)? = try await messages.next() else { return [:] }
        return (try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]) ?? [:]
      }
      func runnerEvent() async throws -> [String: Any] {
        while true {
          let message = try await next()
          if message.isEmpty { return [:] }
          if message["type"] as? String == "runner" { return message["data"] as? [String: Any] ?? [:] }
        }
      }
      try await outbound.write(.text(#"{"type": "subscribe", "channel": "strategy:goog-sma"}"#))
      #expect(try await next()["type"] as? String == "subscribed")
      try await Task.sleep(for: .milliseconds(400))  // the watcher has seen the runs of before
      let now = server.fixture.clock.now()
      let account = PaperAccountRecord(
        id: "pa_elsewhere", strategyName: "goog-sma", strategyVersion: 1, specHash: "h", specText: "", params: "{}", capital: 10_000,
        timeframe: "1d", symbols: #"["GOOG"]"#, datasets: #"["GOOG-1d"]"#, source: nil, fromTs: nil, cash: 10_000, equity: 10_000, createdAt: now,
        updatedAt: now)
      try database.createAccount(account, closingOpen: true)
      try database.insertStrategyRun(
        StrategyRunRecord(
          id: "lr_elsewhere", accountID: "pa_elsewhere", strategyName: "goog-sma", feed: "store", request: "{}", status: "running", pid: 1,
          host: "another-host", logPath: nil, startedAt: now, heartbeatAt: now))
      let started = try await runnerEvent()
      #expect(started["state"] as? String == "started" && started["run_id"] as? String == "lr_elsewhere", "\(started)")
      #expect(started["feed"] as? String == "store")
      try database.finishStrategyRun(id: "lr_elsewhere", status: "stopped", error: nil, at: now + 1)
      let ended = try await runnerEvent()
      #expect(ended["state"] as? String == "stopped" && ended["run_id"] as? String == "lr_elsewhere", "\(ended)")
      #expect(ended["equity"] as? Double == 10_000)

      // A runner of this host killed without a word (kill -9) leaves its run "running"; once its
      // lease is free the server marks the run failed and publishes the end at its next poll.
      let leases = LeaseManager(for: database)
      let lease = try leases.acquire(
        "runner:goog-sma", holder: LeaseHolder(pid: 999_999, host: ProcessIdentity.host, jobID: nil, purpose: "runner", since: now), wait: false)
      try database.insertStrategyRun(
        StrategyRunRecord(
          id: "lr_killed", accountID: "pa_elsewhere", strategyName: "goog-sma", feed: "store", request: "{}", status: "running", pid: 999_999,
          host: ProcessIdentity.host, logPath: nil, startedAt: now + 2, heartbeatAt: now + 2))
      let killedStart = try await runnerEvent()
      #expect(killedStart["state"] as? String == "started" && killedStart["run_id"] as? String == "lr_killed", "\(killedStart)")
      let killedAt = Date()
      lease.release()
      let killedEnd = try await runnerEvent()
      #expect(killedEnd["state"] as? String == "failed" && killedEnd["run_id"] as? String == "lr_killed", "\(killedEnd)")
      #expect(Date().timeIntervalSince(killedAt) < 2, "published at a poll (200 ms), not when someone asks for the status")
      #expect(try database.strategyRun(id: "lr_killed")?.status == "failed")
      try await outbound.close(.normalClosure, reason: nil)
    }
    await server.shutdown()
  }

  /// Routes without a socket: scopes, the list envelope, 404s, a second start (409), pause and
  /// resume, stop, and notification channels (no command or file over the API).
  @Test func runnerSignalAndChannelRoutes() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let all = try fixture.token()
    let jobsOnly = try fixture.token("jobs:read")
    let reader = try fixture.token("signals:read,strategies:read")
    try await fixture.withRouter { client in
      #expect(try await client.get("/api/v1/signals").status == 401)
      #expect(try await client.get("/api/v1/signals", token: jobsOnly).errorCode == "missing_scope")
      #expect(try await client.get("/api/v1/runners", token: jobsOnly).status == 403)
      let empty = try await client.get("/api/v1/signals?size=10", token: reader)
      #expect(empty.status == 200)
      #expect(empty.dataObject["total"] as? Int == 0)
      #expect(empty.dataObject["size"] as? Int == 10)
      #expect(try await client.get("/api/v1/signals/sig_nope", token: reader).errorCode == "signal_not_found")
      #expect(try await client.get("/api/v1/signals?type=maybe", token: reader).status == 400)
      // An unknown Last-Event-ID is refused, not silently restarted from now.
      let unknown = try await client.get("/api/v1/stream/signals", token: reader, headers: ["Last-Event-ID": "sig_nope"])
      #expect(unknown.status == 400)
      #expect(try await client.get("/api/v1/signals/stats?all=true&since=1d", token: reader).status == 400)
      let idle = try await client.get("/api/v1/runners/goog-sma", token: reader)
      #expect(idle.dataObject["status"] as? String == "idle")
      #expect(try await client.get("/api/v1/runners/nope", token: reader).status == 404)
      #expect(try await client.post("/api/v1/strategies/goog-sma:start", token: reader).status == 403)
      #expect(try await client.post("/api/v1/strategies/nope:start", token: all, json: #"{"feed": "replay"}"#).status == 404)
      let download = try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: "{}")
      #expect(download.errorCode == "source_not_live", "\(download.text)")
      #expect(try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: #"{"feed": "carrier-pigeon"}"#).status == 400)
      #expect(try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: #"{"feed": "replay", "speed": "fast"}"#).status == 400)
      #expect(try await client.post("/api/v1/strategies/goog-sma:pause", token: all).errorCode == "paper_account_not_found")

      let started = try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: #"{"feed": "replay", "speed": 2}"#)
      #expect(started.status == 201, "\(started.text)")
      #expect(started.header("Location") == "/api/v1/runners/goog-sma")
      let again = try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: #"{"feed": "replay"}"#)
      #expect(again.status == 409)
      #expect(again.errorCode == "lease_held")
      #expect(fixture.service.runners.hosted == ["goog-sma"])
      let paused = try await client.post("/api/v1/strategies/goog-sma:pause", token: all)
      #expect(paused.dataObject["status"] as? String == "paused", "\(paused.text)")
      let resumed = try await client.post("/api/v1/strategies/goog-sma:resume", token: all)
      #expect(resumed.dataObject["status"] as? String == "running", "\(resumed.text)")
      let list = try await client.get("/api/v1/runners", token: reader)
      #expect((list.dataObject["items"] as? [[String: Any]])?.first?["strategy"] as? String == "goog-sma")
      let stopped = try await client.post("/api/v1/strategies/goog-sma:stop", token: all, json: #"{"timeout_ms": 20000}"#)
      #expect(stopped.dataObject["was"] as? String == "running", "\(stopped.text)")
      #expect(stopped.dataObject["status"] as? String == "stopped")
      let deadline = Date().addingTimeInterval(10)
      while !fixture.service.runners.hosted.isEmpty, Date() < deadline { try await Task.sleep(for: .milliseconds(10)) }
      #expect(fixture.service.runners.hosted.isEmpty)

      // Notification channels.
      let added = try await client.post(
        "/api/v1/signals/channels", token: all, json: #"{"name": "hook", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/x"}, "filter": {}, "include_late": false}"#)
      #expect(added.status == 201, "\(added.text)")
      let command = try await client.post(
        "/api/v1/signals/channels", token: all, json: #"{"name": "sh", "kind": "command", "config": {"command": "touch /tmp/x"}, "filter": {}, "include_late": false}"#)
      #expect(command.errorCode == "channel_not_allowed")
      let file = try await client.post(
        "/api/v1/signals/channels", token: all,
        json: #"{"name": "h2", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/x", "secret_file": "/etc/passwd"}, "filter": {}, "include_late": false}"#)
      #expect(file.errorCode == "channel_not_allowed")
      let channels = try await client.get("/api/v1/signals/channels", token: reader)
      #expect((channels.dataObject["items"] as? [[String: Any]])?.map { $0["name"] as? String } == ["hook"])
      #expect(try await client.get("/api/v1/signals/notifications?channel=hook", token: reader).status == 200)
      #expect(try await client.request(.delete, "/api/v1/signals/channels/hook", token: reader).status == 403)
      #expect(try await client.request(.delete, "/api/v1/signals/channels/hook", token: all).status == 200)
      #expect(try await client.request(.delete, "/api/v1/signals/channels/hook", token: all).status == 404)
    }
  }

  /// A strategy's runs, positions, equity and log: 404 for an unknown strategy, the scope,
  /// empty lists before it ran, then what a completed replay left; a log is read only from
  /// $QTOOL_HOME/logs.
  @Test func runsPositionsEquityAndLogs() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let all = try fixture.token()
    let jobsOnly = try fixture.token("jobs:read")
    let reader = try fixture.token("strategies:read")
    try await fixture.withRouter { client in
      for part in ["runs", "positions", "equity", "logs"] {
        #expect(try await client.get("/api/v1/strategies/goog-sma/\(part)").status == 401, "\(part)")
        #expect(try await client.get("/api/v1/strategies/goog-sma/\(part)", token: jobsOnly).errorCode == "missing_scope", "\(part)")
        let unknown = try await client.get("/api/v1/strategies/nope/\(part)", token: reader)
        #expect(unknown.status == 404, "\(part): \(unknown.text)")
        #expect(unknown.errorCode == "strategy_not_found", "\(part)")
      }
      for part in ["runs", "positions", "equity"] {
        let empty = try await client.get("/api/v1/strategies/goog-sma/\(part)", token: reader)
        #expect(empty.status == 200, "\(part): \(empty.text)")
        #expect(empty.dataObject["total"] as? Int == 0, "\(part)")
        #expect((empty.dataObject["items"] as? [Any])?.isEmpty == true, "\(part)")
      }
      let noLog = try await client.get("/api/v1/strategies/goog-sma/logs", token: reader).dataObject
      #expect(noLog["run_id"] == nil && noLog["log"] == nil && (noLog["lines"] as? [String]) == [])

      // "max", as `strategy start --speed max` takes it.
      let started = try await client.post("/api/v1/strategies/goog-sma:start", token: all, json: #"{"feed": "replay", "speed": "max"}"#)
      #expect(started.status == 201, "\(started.text)")
      let runID = try #require(started.dataObject["run_id"] as? String)
      let deadline = Date().addingTimeInterval(120)
      var runner: [String: Any] = [:]
      while Date() < deadline {
        runner = try await client.get("/api/v1/runners/goog-sma", token: reader).dataObject
        if runner["status"] as? String == "completed" { break }
        try await Task.sleep(for: .milliseconds(50))
      }
      #expect(runner["status"] as? String == "completed")

      let runs = try await client.get("/api/v1/strategies/goog-sma/runs", token: reader).dataObject
      let run = try #require((runs["items"] as? [[String: Any]])?.first)
      #expect(runs["total"] as? Int == 1)
      #expect(run["id"] as? String == runID)
      #expect(run["status"] as? String == "completed")
      #expect(run["feed"] as? String == "replay")
      #expect(run["bars_processed"] as? Int == runner["bars_processed"] as? Int)
      #expect(run["last_bar"] as? String == runner["last_bar"] as? String)

      // Positions are the account's in `status`; the equity is one point a processed bar, paged, oldest first.
      let positions = try await client.get("/api/v1/strategies/goog-sma/positions", token: reader)
      let account = try #require(runner["account"] as? [String: Any])
      #expect(
        sameJSONValue((positions.dataObject["items"] as? [Any]) ?? [], account["positions"] ?? []),
        "\(positions.text) vs \(account["positions"] ?? "")")
      let bars = try #require(run["bars_processed"] as? Int)
      let first = try await client.get("/api/v1/strategies/goog-sma/equity?size=7", token: reader).dataObject
      #expect(first["total"] as? Int == bars)
      #expect(first["pages"] as? Int == (bars + 6) / 7)
      let points = try #require(first["items"] as? [[String: Any]])
      #expect(points.count == 7)
      #expect(points.map { $0["time"] as? String ?? "" } == points.map { $0["time"] as? String ?? "" }.sorted())
      let lastPage = try await client.get("/api/v1/strategies/goog-sma/equity?size=7&page=\((bars + 6) / 7)", token: reader).dataObject
      let last = try #require((lastPage["items"] as? [[String: Any]])?.last)
      #expect(last["equity"] as? Double == account["equity"] as? Double)
      #expect(last["time"] as? String == runner["last_bar"] as? String)

      // A runner in the server logs to $QTOOL_HOME/logs/NAME.log, as a detached one does; its
      // last line (written once the run has ended) says how it ended.
      var hostedLog: [String: Any] = [:]
      let logDeadline = Date().addingTimeInterval(10)
      repeat {
        hostedLog = try await client.get("/api/v1/strategies/goog-sma/logs", token: reader).dataObject
        if (hostedLog["lines"] as? [String])?.last?.contains("runner goog-sma completed") == true { break }
        try await Task.sleep(for: .milliseconds(50))
      } while Date() < logDeadline
      #expect(hostedLog["run_id"] as? String == runID)
      #expect(hostedLog["log"] as? String == fixture.settings.home + "/logs/goog-sma.log")
      #expect((hostedLog["lines"] as? [String])?.last?.contains("runner goog-sma completed") == true, "\(hostedLog)")
      #expect((hostedLog["lines"] as? [String])?.contains { $0.contains("runner goog-sma v1 started in the server: run \(runID)") } == true, "\(hostedLog)")
      #expect(try await client.get("/api/v1/strategies/goog-sma/logs?lines=0", token: reader).status == 400)

      // A detached runner's log (as `strategy start` writes it), and a run naming a file elsewhere.
      let logs = fixture.settings.home + "/logs"
      try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
      let text = (1...5).map { "line \($0)" }.joined(separator: "\n") + "\n"
      try text.write(toFile: logs + "/goog-sma.log", atomically: true, encoding: .utf8)
      let now = fixture.clock.now()
      let accountID = try #require(run["account_id"] as? String)
      try fixture.database.insertStrategyRun(
        StrategyRunRecord(
          id: "lr_logged", accountID: accountID, strategyName: "goog-sma", feed: "store", request: "{}", status: "stopped", pid: 1, host: "h",
          logPath: logs + "/goog-sma.log", startedAt: now + 1, heartbeatAt: now + 1))
      let logged = try await client.get("/api/v1/strategies/goog-sma/logs?lines=2", token: reader).dataObject
      #expect(logged["run_id"] as? String == "lr_logged")
      #expect(logged["lines"] as? [String] == ["line 4", "line 5"])
      #expect(logged["truncated"] as? Bool == true)
      try fixture.database.insertStrategyRun(
        StrategyRunRecord(
          id: "lr_elsewhere", accountID: accountID, strategyName: "goog-sma", feed: "store", request: "{}", status: "stopped", pid: 1, host: "h",
          logPath: "/etc/passwd", startedAt: now + 2, heartbeatAt: now + 2))
      let elsewhere = try await client.get("/api/v1/strategies/goog-sma/logs", token: reader).dataObject
      #expect(elsewhere["run_id"] as? String == "lr_elsewhere")
      #expect(elsewhere["log"] == nil, "only logs under $QTOOL_HOME/logs are read")
      #expect((elsewhere["lines"] as? [String]) == [])
      let listed = try await client.get("/api/v1/strategies/goog-sma/runs?size=2", token: reader).dataObject
      #expect((listed["items"] as? [[String: Any]])?.map { $0["id"] as? String } == ["lr_elsewhere", "lr_logged"], "newest first")
      #expect(listed["total"] as? Int == 3)

      // A page of signals is answered again from the cache until a signal is stored, then anew.
      let before = try await client.get("/api/v1/signals?size=5", token: all)
      #expect(try await client.get("/api/v1/signals?size=5", token: all).dataValue == before.dataValue)
      let total = try #require(before.dataObject["total"] as? Int)
      let cursor = try #require(try fixture.database.account(id: accountID).cursorTs)
      _ = try fixture.database.commitBar(
        BarCommit(
          accountID: accountID, runID: nil, barTs: cursor + 86_400_000, cash: 1, equity: 1, halted: false, positions: [], fills: [],
          signals: [
            SignalRecord(
              id: "sig_cached_page", accountID: accountID, runID: nil, strategyName: "goog-sma", strategyVersion: 1, symbol: "GOOG", timeframe: "1d",
              source: nil, feed: "store", barTs: cursor + 86_400_000, type: "SELL", action: "exit_long", reason: "manual", strengthRaw: 100,
              strengthLevel: "strong", price: 1, indicators: "{}", late: false, suppressed: false, createdAt: now + 3)
          ], notify: false, now: now + 3))
      let after = try await client.get("/api/v1/signals?size=5", token: all)
      #expect(after.dataObject["total"] as? Int == total + 1)
      #expect((after.dataObject["items"] as? [[String: Any]])?.first?["id"] as? String == "sig_cached_page")
      #expect(after.object["request_id"] as? String != before.object["request_id"] as? String)
      #expect(after.object["success"] as? Bool == true && after.object["code"] as? Int == 200 && after.object["timestamp"] is String)
    }
  }
}

/// JSON values compared as values (key order aside).
func sameJSONValue(_ a: Any, _ b: Any) -> Bool {
  let options: JSONSerialization.WritingOptions = [.sortedKeys, .fragmentsAllowed]
  return (try? JSONSerialization.data(withJSONObject: a, options: options)) == (try? JSONSerialization.data(withJSONObject: b, options: options))
}
