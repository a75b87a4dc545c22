import Dispatch
import Foundation
import Logging
import QtoolCore
import QtoolEngine
import Synchronization
import Testing

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// A headless Chromium driven over its DevTools protocol through a pipe (the page keeps an
/// event stream open, so it is read while it runs rather than dumped once loaded).
final class Browser: @unchecked Sendable {
  let process = Process()
  let directory: String
  private var input: FileHandle!
  private var output: FileHandle!
  private var buffer = Data()
  private var next = 0

  init() throws {
    directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-chromium-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for fifo in ["in", "out"] { guard mkfifo(directory + "/" + fifo, 0o600) == 0 else { throw CancellationError() } }
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = [
      "-c",
      "exec /usr/bin/chromium --headless --no-sandbox --disable-gpu --no-first-run --user-data-dir=\"$0/profile\" --remote-debugging-pipe about:blank 3<\"$0/in\" 4>\"$0/out\"",
      directory,
    ]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    input = FileHandle(forWritingAtPath: directory + "/in")
    output = FileHandle(forReadingAtPath: directory + "/out")
  }

  /// Sends a DevTools command and returns its answer (events in between are skipped).
  func call(_ method: String, _ params: [String: Any] = [:], session: String? = nil) throws -> [String: Any] {
    next += 1
    var message: [String: Any] = ["id": next, "method": method, "params": params]
    if let session { message["sessionId"] = session }
    input.write(try JSONSerialization.data(withJSONObject: message) + Data([0]))
    while true {
      if let end = buffer.firstIndex(of: 0) {
        let frame = buffer[buffer.startIndex..<end]
        buffer = Data(buffer[(end + 1)...])
        if let object = try? JSONSerialization.jsonObject(with: frame) as? [String: Any], object["id"] as? Int == next { return object }
        continue
      }
      let chunk = output.availableData
      if chunk.isEmpty { throw CancellationError() }
      buffer.append(chunk)
    }
  }

  func close() {
    if process.isRunning { process.terminate() }
    process.waitUntilExit()
    try? FileManager.default.removeItem(atPath: directory)
  }
}

@Suite(.serialized, .timeLimit(.minutes(2))) struct DashboardTests {
  /// The dashboard logs in with a token from its address, lists the recorded run with its
  /// equity chart (the report's SVG) and the strategy, and shows a job started afterwards as it
  /// runs and ends — over its event stream, without a reload.
  @Test func dashboardInHeadlessChromium() async throws {
    try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium"), "chromium is a test package: make test-deps installs it")
    let server = try await LiveServer(try await ServerFixture.make())
    let token = try server.fixture.token("backtest:read,backtest:create,strategies:read,strategies:execute,jobs:read,signals:read", name: "dash")
    let context = OperationContext(database: server.fixture.database)
    let report = try BacktestOperations(context).run(BacktestRequest(strategy: .registered(name: "goog-sma", version: nil)))
    let address = "http://127.0.0.1:\(server.port)/#token=\(token)"
    let base = server.base
    let outcome = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[String: Bool], any Error>) in
      DispatchQueue.global().async {
        continuation.resume(with: Result { try Self.drive(address: address, base: base, token: token, runID: report.id) })
      }
    }
    let found = Mutex(outcome)
    #expect(found.withLock { $0["loaded"] } == true, "the run and its chart are shown")
    #expect(found.withLock { $0["live"] } == true, "the event stream is open")
    #expect(found.withLock { $0["job"] } == true, "a job started afterwards appears and completes without a reload")
    #expect(found.withLock { $0["strategy"] } == true, "the strategy is listed")
    #expect(found.withLock { $0["tokenHidden"] } == true, "the token left the address")
    #expect(found.withLock { $0["signal"] } == true, "a signal a runner stores appears in the live feed without a reload")
    #expect(found.withLock { $0["runner"] } == true, "the runner is listed")
    await server.shutdown()
  }

  /// Off the cooperative pool (the server under test answers on it): opens the page, waits for
  /// the run and its chart, starts a job through the API and waits for the page to show it done.
  static func drive(address: String, base: String, token: String, runID: String) throws -> [String: Bool] {
    let browser = try Browser()
    defer { browser.close() }
    // A browser that stops answering is ended, which ends the blocking reads below with an error.
    let watchdog = DispatchWorkItem { if browser.process.isRunning { browser.process.terminate() } }
    DispatchQueue.global().asyncAfter(deadline: .now() + 90, execute: watchdog)
    defer { watchdog.cancel() }
    var found: [String: Bool] = [:]
    let target = try browser.call("Target.createTarget", ["url": address])
    let targetID = (target["result"] as? [String: Any])?["targetId"] as? String ?? ""
    let attached = try browser.call("Target.attachToTarget", ["targetId": targetID, "flatten": true])
    let session = (attached["result"] as? [String: Any])?["sessionId"] as? String
    func dom() throws -> String {
      let answer = try browser.call("Runtime.evaluate", ["expression": "document.documentElement.outerHTML", "returnByValue": true], session: session)
      return ((answer["result"] as? [String: Any])?["result"] as? [String: Any])?["value"] as? String ?? ""
    }
    func wait(seconds: Double = 20, _ condition: (String) -> Bool) throws -> String? {
      let deadline = Date().addingTimeInterval(seconds)
      while Date() < deadline {
        let html = try dom()
        if condition(html) { return html }
        usleep(100_000)
      }
      return nil
    }
    if let page = try wait({ $0.contains("data-run=\"\(runID)\"") && $0.contains("<svg id=\"equity-\(runID)\"") }) {
      found["loaded"] = true
      found["strategy"] = page.contains("<td>goog-sma</td>")
      found["tokenHidden"] = !page.contains(token)
    }
    found["live"] = try wait { $0.contains("● live") } != nil
    let started = ServerFixtureHTTP.post(base + "/api/v1/backtests", token: token, body: #"{"strategy": "goog-sma", "params": {"fast": 15}}"#)
    let id = ((try? JSONSerialization.jsonObject(with: started) as? [String: Any])?["data"] as? [String: Any])?["id"] as? String ?? "?"
    found["job"] =
      try wait { html in
        guard let row = html.range(of: "data-job=\"\(id)\"") else { return false }
        return html[row.lowerBound...].prefix(400).contains("completed")
      } != nil
    // A runner started now: its signals reach the page over the signal stream.
    _ = ServerFixtureHTTP.post(base + "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay", "speed": 100}"#)
    found["signal"] = try wait(seconds: 40) { $0.contains("data-signal=\"sig_") } != nil
    found["runner"] = try wait(seconds: 20) { $0.contains("<td class=\"status-running\">running</td>") || $0.contains(">completed</td>") } != nil
    return found
  }
}

/// A blocking POST through curl (for code off the cooperative pool).
enum ServerFixtureHTTP {
  static func post(_ url: String, token: String, body: String) -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-s", "--max-time", "20", "-X", "POST", "-H", "Authorization: Bearer \(token)", "--data-binary", body, url]
    let out = Pipe()
    process.standardOutput = out
    try? process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return data
  }
}
