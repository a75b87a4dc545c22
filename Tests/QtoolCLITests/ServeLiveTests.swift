import Foundation
import QtoolCore
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The live half of `qtool serve` through the built binary: runners hosted by the server, the
/// CLI's JSON equal to the API's data, `signals tail -f --server`, SIGTERM with a runner.
@Suite(.serialized, .timeLimit(.minutes(6))) struct ServeLiveTests {
  func prepared() throws -> (QtoolProcess, String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d"]).status == 0)
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--template", "sma_crossover", "--symbol", "GOOG", "-o", "goog-sma.yaml"]).status == 0)
    let result = try qtool.run(["auth", "token", "create", "live", "--scopes", "*", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    return (qtool, try jsonObject(result.stdout)["token"] as? String ?? "")
  }

  func cli(_ qtool: QtoolProcess, _ arguments: [String]) throws -> Any {
    let result = try qtool.run(arguments + ["--json"])
    #expect(result.status == 0, "\(arguments): \(result.stderr)")
    return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: .fragmentsAllowed)
  }

  func waitForRunner(_ server: ServeProcess, token: String, status: String, seconds: Double = 180) throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(seconds)
    var last: [String: Any] = [:]
    while Date() < deadline {
      last = try server.request("GET", "/api/v1/runners/goog-sma", token: token).data as? [String: Any] ?? [:]
      if last["status"] as? String == status { return last }
      usleep(100_000)
    }
    Issue.record("the runner is \(last["status"] ?? "?"), not \(status)")
    return last
  }

  /// Start, a refused second start (API 409, CLI 75), stop, a restart that continues the
  /// account to the end; then `strategy status`, `signals list` and `signals stats` as JSON are
  /// the API's data.
  @Test func theLiveAPIAnswersWhatTheCLIPrints() throws {
    let (qtool, token) = try prepared()
    defer { qtool.cleanUp() }
    let server = try ServeProcess(qtool)
    defer { _ = server.stop() }

    let started = try server.request("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay", "speed": 20}"#)
    #expect(started.status == 201, "\(started.body)")
    let conflict = try server.request("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay"}"#)
    #expect(conflict.status == 409)
    #expect(conflict.errorCode == "lease_held")
    let cliRun = try qtool.run(["strategy", "run", "goog-sma", "--feed", "replay"])
    #expect(cliRun.status == 75, "a CLI runner of a strategy the server runs is refused: \(cliRun.stderr)")
    let running = try server.request("GET", "/api/v1/runners/goog-sma", token: token).data as? [String: Any]
    #expect(running?["status"] as? String == "running")
    #expect(running?["pid"] as? Int == Int(server.server.pid))
    // Metrics: the runner hosted, its lag (a replay of old bars lags by years).
    let live = try server.request("GET", "/metrics").body
    #expect(live.contains("qtool_runners_hosted 1"), "\(live)")
    #expect(live.contains("qtool_runner_lag_seconds{strategy=\"goog-sma\"}"))
    let stopped = try server.request("POST", "/api/v1/strategies/goog-sma:stop", token: token, body: "{}")
    #expect((stopped.data as? [String: Any])?["was"] as? String == "running", "\(stopped.body)")

    let again = try server.request("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay"}"#)
    #expect((again.data as? [String: Any])?["continued"] as? Bool == true, "\(again.body)")
    _ = try waitForRunner(server, token: token, status: "completed")
    let metrics = try server.request("GET", "/metrics").body
    let emitted = metrics.split(separator: "\n").first { $0.hasPrefix("qtool_signals_emitted_total ") }
      .flatMap { Double($0.split(separator: " ").last ?? "") }
    #expect((emitted ?? 0) > 10, "signals seen committed: \(String(describing: emitted))")
    #expect(metrics.contains("qtool_runners_hosted 0"))

    #expect(sameJSON(try cli(qtool, ["strategy", "status", "goog-sma"]), try server.request("GET", "/api/v1/runners/goog-sma", token: token).data))
    #expect(sameJSON(try cli(qtool, ["strategy", "status"]), (try server.request("GET", "/api/v1/runners", token: token).data as? [String: Any])?["items"]))
    let list = try server.request("GET", "/api/v1/signals", token: token)
    #expect(sameJSON(try cli(qtool, ["signals", "list"]), list.data))
    #expect(((list.data as? [String: Any])?["total"] as? Int ?? 0) > 10)
    #expect(
      sameJSON(
        try cli(qtool, ["signals", "list", "--type", "buy", "--size", "5", "--page", "2"]),
        try server.request("GET", "/api/v1/signals?type=buy&size=5&page=2", token: token).data))
    #expect(sameJSON(try cli(qtool, ["signals", "stats", "--all"]), try server.request("GET", "/api/v1/signals/stats?all=true", token: token).data))
    #expect(
      sameJSON(
        try cli(qtool, ["signals", "stats", "--all", "--strategy", "goog-sma", "--type", "sell"]),
        try server.request("GET", "/api/v1/signals/stats?all=true&strategy=goog-sma&type=sell", token: token).data))
    let first = try #require(((list.data as? [String: Any])?["items"] as? [[String: Any]])?.first)
    let one = try server.request("GET", "/api/v1/signals/\(first["id"] as? String ?? "")", token: token)
    #expect(sameJSON(one.data, first))
  }

  /// `signals tail -f --server` prints what local `signals tail` prints, as signals are stored;
  /// without -f, the last N; a bad token fails with the server's error. SIGTERM then stops the
  /// server with a hosted runner at a bar boundary: exit 0 within 2 s, the run stopped.
  @Test func signalsTailFollowsAServer() throws {
    let (qtool, token) = try prepared()
    defer { qtool.cleanUp() }
    let server = try ServeProcess(qtool)
    let url = "http://127.0.0.1:\(server.port)"
    let follower = try BackgroundQtool(qtool, ["signals", "tail", "-f", "--json", "--server", url, "--token", token])
    // Following once the server counts its stream.
    let deadline = Date().addingTimeInterval(30)
    while Date() < deadline, !(try server.request("GET", "/metrics").body.contains("qtool_stream_subscribers 1")) { usleep(50_000) }

    let started = try server.request("POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay"}"#)
    #expect(started.status == 201, "\(started.body)")
    _ = try waitForRunner(server, token: token, status: "completed")
    let local = try qtool.run(["signals", "tail", "-n", "100000", "--json"])
    let expected = local.stdout.split(separator: "\n").count
    #expect(expected > 10)
    let followed = Date().addingTimeInterval(30)
    while Date() < followed, follower.stdout.split(separator: "\n").count < expected { usleep(50_000) }
    #expect(follower.stdout == local.stdout, "the same NDJSON as the local tail")
    follower.signal(SIGTERM)
    #expect(follower.wait() == 0)

    let remote = try qtool.run(["signals", "tail", "-n", "7", "--type", "sell", "--server", url, "--token", token])
    #expect(remote.status == 0, "\(remote.stderr)")
    #expect(remote.stdout == (try qtool.run(["signals", "tail", "-n", "7", "--type", "sell"])).stdout)
    #expect(remote.stdout.split(separator: "\n").count == 7)
    let refused = try qtool.run(["signals", "tail", "--server", url, "--token", "nope", "--json"])
    #expect(refused.status != 0)
    #expect(refused.stderr.contains("invalid_token") || refused.stderr.contains("unauthenticated"), "\(refused.stderr)")
    let unreachable = try qtool.run(["signals", "tail", "--server", "http://127.0.0.1:9", "--token", token])
    #expect(unreachable.status == 69, "\(unreachable.stderr)")

    // SIGTERM with a hosted runner: it stops at a bar boundary, the server exits 0 in time.
    let slow = try server.request(
      "POST", "/api/v1/strategies/goog-sma:start", token: token, body: #"{"feed": "replay", "speed": 10, "new_account": true}"#)
    #expect(slow.status == 201, "\(slow.body)")
    _ = try waitForRunner(server, token: token, status: "running")
    let (status, seconds) = server.stop()
    #expect(status == 0)
    #expect(seconds < 2.5)
    let after = try cli(qtool, ["strategy", "status", "goog-sma"]) as? [String: Any]
    #expect(after?["status"] as? String == "stopped", "\(after ?? [:])")
    #expect(server.server.stderr.contains("token=") == false || server.server.stderr.contains("token=REDACTED"))
  }
}
