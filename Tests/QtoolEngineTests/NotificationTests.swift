import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import QtoolTestSupport
import Synchronization
import Testing

@testable import QtoolEngine

/// HMAC-SHA256 written out from its definition over SHA-256 (RFC 2104), to check qtool's
/// signatures with something that is not qtool's HMAC.
func independentHMAC(key: Data, message: Data) -> Data {
  func sha256(_ data: Data) -> Data {
    let hex = ContentHash.sha256Hex(data)
    var bytes = Data()
    var index = hex.startIndex
    while index < hex.endIndex {
      let next = hex.index(index, offsetBy: 2)
      bytes.append(UInt8(hex[index..<next], radix: 16)!)
      index = next
    }
    return bytes
  }
  var block = key.count > 64 ? sha256(key) : key
  block.append(Data(repeating: 0, count: 64 - block.count))
  let inner = Data(block.map { $0 ^ 0x36 }) + message
  return sha256(Data(block.map { $0 ^ 0x5c }) + sha256(inner))
}

/// A store with one account and one stored signal of strategy `s`, and a channel.
func storeWithSignal(channel: ChannelRecord) throws -> (OperationContext, SignalRecord) {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-notify-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
  let database = try QtoolDatabase.open(path: directory.appendingPathComponent("q.db").path)
  let context = OperationContext(database: database)
  try database.addChannel(channel)
  let now = context.clock.now()
  try database.createAccount(
    PaperAccountRecord(
      id: "pa_test", strategyName: "s", strategyVersion: 1, specHash: "h", specText: "", params: "{}", capital: 100, timeframe: "1d",
      symbols: "[\"X\"]", datasets: "[\"X-1d\"]", source: nil, fromTs: nil, cash: 100, equity: 100, createdAt: now, updatedAt: now),
    closingOpen: false)
  let signal = SignalRecord(
    id: "sig_test1", accountID: "pa_test", runID: nil, strategyName: "s", strategyVersion: 1, symbol: "X", timeframe: "1d", source: nil,
    feed: "replay",
    barTs: 86_400_000, type: "BUY", action: "enter_long", reason: "rule", strengthRaw: 90, strengthLevel: "strong", price: 10.5,
    indicators: "{\"close\":10.5}", late: false, suppressed: false, createdAt: now)
  let committed = try database.commitBar(
    BarCommit(
      accountID: "pa_test", runID: nil, barTs: 86_400_000, cash: 100, equity: 100, halted: false, positions: [], fills: [], signals: [signal],
      notify: true, now: now))
  #expect(committed.notifications == 1)
  return (context, signal)
}

/// Waits until the notification is delivered or dead (false after `timeout` seconds).
func waitForOutcome(_ database: QtoolDatabase, timeout: Double) throws -> (OutboxRecord, [DeliveryAttemptRecord])? {
  let deadline = Date().addingTimeInterval(timeout)
  while Date() < deadline {
    if let row = try database.notificationHistory(channel: nil, status: nil, limit: 1).first, row.0.status != "pending" { return row }
    usleep(20_000)
  }
  return nil
}

@Suite(.serialized, .timeLimit(.minutes(3))) struct NotificationTests {
  /// 500, then 429 with Retry-After, then a timeout, then 410: three retries spaced by the
  /// back-off (and the Retry-After), then given up at once; every attempt recorded; the same
  /// webhook-id each time; the signature checks out with an independent HMAC.
  @Test func webhookRetriesBacksOffAndGivesUp() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on(path: "/hook") { _, hit in
      switch hit {
      case 1: return .text("boom", status: 500)
      case 2: return .text("slow down", status: 429, headers: ["Retry-After": "1"])
      case 3: return LoopbackServer.Reply(status: 200, body: Data("late".utf8), delay: 2)
      default: return .text("gone", status: 410)
      }
    }
    let secretFile = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-secret-\(UUID().uuidString)")
    let secret = "whsec_" + Data("a very secret key of 32 bytes!!!".utf8).base64EncodedString()
    try (secret + "\n").write(to: secretFile, atomically: true, encoding: .utf8)
    let config = ChannelConfig(url: server.baseURL + "/hook", secretFile: secretFile.path, timeoutMilliseconds: 500)
    let (context, signal) = try storeWithSignal(
      channel: ChannelRecord(
        name: "hook", kind: "webhook", config: String(decoding: try JSONEncoder().encode(config), as: UTF8.self), filters: "{}", createdAt: 0))
    var settings = NotifySettings()
    settings.retryBase = 200
    settings.retryCap = 5_000
    let dispatcher = NotificationDispatcher(
      strategy: "s", database: context.database, clock: context.clock, settings: settings, logger: context.logger)
    dispatcher.start()
    let outcome = try #require(try waitForOutcome(context.database, timeout: 20))
    dispatcher.stop(grace: 100)
    let (row, attempts) = outcome
    #expect(row.status == "dead")
    #expect(attempts.map(\.status) == [500, 429, nil, 410])
    #expect(attempts.map(\.outcome) == ["retry", "retry", "retry", "dead"])
    #expect(attempts[2].error?.contains("500 ms") == true, "\(attempts[2].error ?? "")")
    #expect(attempts[2].latencyMs >= 450 && attempts[2].latencyMs < 1_500)
    func gap(_ k: Int) -> Int64 { attempts[k + 1].startedAt - (attempts[k].startedAt + attempts[k].latencyMs) }
    #expect(gap(0) >= 100 && gap(0) <= 200 + 150, "after the first failure: base 200 ms with equal jitter; waited \(gap(0)) ms")
    #expect(gap(1) >= 1_000 && gap(1) <= 1_000 + 150, "Retry-After: 1 obeyed; waited \(gap(1)) ms")
    #expect(gap(2) >= 400 && gap(2) <= 800 + 150, "after the third: 800 ms with jitter; waited \(gap(2)) ms")

    let requests = server.requests.filter { $0.path == "/hook" }
    #expect(requests.count == 4)
    for request in requests {
      #expect(request.method == "POST")
      #expect(request.headers["webhook-id"] == signal.id, "the signal's id on every attempt")
      let timestamp = try #require(request.headers["webhook-timestamp"])
      let key = Data(base64Encoded: String(secret.dropFirst(6)))!
      let mac = independentHMAC(key: key, message: Data("\(signal.id).\(timestamp).".utf8) + request.body)
      #expect(request.headers["webhook-signature"] == "v1," + mac.base64EncodedString())
      let event = try JSONSerialization.jsonObject(with: request.body) as! [String: Any]
      #expect(event["type"] as? String == "signal.created")
      let data = event["data"] as! [String: Any]
      #expect(data["id"] as? String == signal.id && data["type"] as? String == "BUY" && data["price"] as? Double == 10.5)
      #expect((data["indicators"] as? [String: Any])?["close"] as? Double == 10.5)
    }
    #expect(Set(requests.map(\.body)).count == 1, "the same body every time")
  }

  /// Retry-After as seconds or an HTTP date; nonsense is ignored and huge values cannot
  /// overflow (the wait is capped by notify.retry_cap anyway).
  @Test func retryAfterIsReadSafely() {
    let now: Int64 = 1_700_000_000_000
    #expect(Delivery.retryAfter("2", now: now) == 2_000)
    #expect(Delivery.retryAfter("1e300", now: now) == 86_400_000)
    #expect(Delivery.retryAfter("-5", now: now) == nil)
    #expect(Delivery.retryAfter("nan", now: now) == nil)
    #expect(Delivery.retryAfter("soon", now: now) == nil)
    #expect(Delivery.retryAfter("Tue, 14 Nov 2023 22:13:30 GMT", now: now) == 10_000)
    var settings = NotifySettings()
    settings.retryCap = 300_000
    #expect(settings.delay(afterAttempt: 1, retryAfter: Delivery.retryAfter("1e300", now: now)) == 300_000)
  }

  /// A 2xx delivers at the first attempt; a chat preset sends its template.
  @Test func slackPresetSendsItsTemplate() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on(path: "/slack") { _, _ in .text("ok") }
    let urlFile = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-url-\(UUID().uuidString)")
    try (server.baseURL + "/slack\n").write(to: urlFile, atomically: true, encoding: .utf8)
    let config = ChannelConfig(urlFile: urlFile.path, template: "{type} {symbol} @ {price} ({level}){late}")
    let (context, _) = try storeWithSignal(
      channel: ChannelRecord(
        name: "desk", kind: "slack", config: String(decoding: try JSONEncoder().encode(config), as: UTF8.self), filters: "{}", createdAt: 0))
    let dispatcher = NotificationDispatcher(
      strategy: "s", database: context.database, clock: context.clock, settings: NotifySettings(), logger: context.logger)
    dispatcher.start()
    let outcome = try #require(try waitForOutcome(context.database, timeout: 10))
    dispatcher.stop(grace: 100)
    #expect(outcome.0.status == "delivered" && outcome.1.count == 1)
    let body = try JSONSerialization.jsonObject(with: try #require(server.requests.first).body) as! [String: String]
    #expect(body == ["text": "BUY X @ 10.5 (strong)"])
  }

  /// A command gets the event on stdin; a failing one is retried; a slow one is killed.
  @Test func commandChannelRunsWithTheEventOnStdin() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-command-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let out = directory.appendingPathComponent("event.json").path
    let command =
      "n=$(cat \(directory.path)/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > \(directory.path)/count; "
      + "if [ $n -eq 1 ]; then echo nope >&2; exit 3; fi; if [ $n -eq 2 ]; then sleep 5; fi; cat > \(out)"
    let config = ChannelConfig(command: command, timeoutMilliseconds: 700)
    let (context, signal) = try storeWithSignal(
      channel: ChannelRecord(
        name: "cmd", kind: "command", config: String(decoding: try JSONEncoder().encode(config), as: UTF8.self), filters: "{}", createdAt: 0))
    var settings = NotifySettings()
    settings.retryBase = 100
    let dispatcher = NotificationDispatcher(
      strategy: "s", database: context.database, clock: context.clock, settings: settings, logger: context.logger)
    dispatcher.start()
    let outcome = try #require(try waitForOutcome(context.database, timeout: 20))
    dispatcher.stop(grace: 100)
    #expect(outcome.0.status == "delivered")
    #expect(outcome.1.map(\.outcome) == ["retry", "retry", "delivered"])
    #expect(outcome.1[0].status == 3 && outcome.1[0].error?.contains("nope") == true)
    #expect(outcome.1[1].error?.contains("did not finish within 700 ms") == true)
    #expect(outcome.1[1].latencyMs < 3_000, "killed at the timeout, not after the sleep")
    let event = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: out))) as! [String: Any]
    #expect((event["data"] as? [String: Any])?["id"] as? String == signal.id)
  }

  /// Channels are checked when added: http(s) URLs only, secrets never inline.
  @Test func channelsAreCheckedWhenAdded() throws {
    let context = OperationContext(database: try QtoolDatabase.inMemory())
    let operations = LiveOperations(context)
    #expect {
      try operations.addChannel(ChannelRequest(name: "h", kind: .webhook, config: ChannelConfig(url: "file:///etc/passwd")))
    } throws: { ($0 as? OperationError)?.category == .usage }
    #expect {
      try operations.addChannel(ChannelRequest(name: "h", kind: .webhook, config: ChannelConfig(url: "ftp://example.com/x")))
    } throws: { ($0 as? OperationError)?.exitStatus == .usage }
    #expect {
      try operations.addChannel(ChannelRequest(name: "d", kind: .discord, config: ChannelConfig(url: "https://discord.com/api/webhooks/1/secret")))
    } throws: { ($0 as? OperationError)?.details["field"] == "url" }
    #expect {
      try operations.addChannel(ChannelRequest(name: "t", kind: .telegram, config: ChannelConfig(tokenEnv: "TOKEN")))
    } throws: { ($0 as? OperationError)?.details["field"] == "chat_id" }
    #expect {
      try operations.addChannel(ChannelRequest(name: "s", kind: .slack, config: ChannelConfig(urlEnv: "X", template: "{nope}")))
    } throws: { ($0 as? OperationError)?.message.contains("{nope}") == true }
    #expect {
      try operations.addChannel(ChannelRequest(name: "../x", kind: .command, config: ChannelConfig(command: "true")))
    } throws: { ($0 as? OperationError)?.details["field"] == "name" }
    let added = try operations.addChannel(
      ChannelRequest(
        name: "ok", kind: .webhook, config: ChannelConfig(url: "https://example.com/h"), filter: SignalFilter(types: ["BUY"], minStrength: 50)))
    #expect(added.filter.types == ["BUY"])
    #expect { try operations.addChannel(ChannelRequest(name: "ok", kind: .command, config: ChannelConfig(command: "true"))) } throws: {
      ($0 as? LiveStoreError)?.code == "channel_exists"
    }
  }
}
