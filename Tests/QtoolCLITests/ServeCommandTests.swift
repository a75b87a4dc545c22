import Foundation
import QtoolCore
import QtoolTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A running `qtool serve` on a free loopback port, and requests to it (through curl).
struct ServeProcess {
  let qtool: QtoolProcess
  let server: BackgroundQtool
  let port: Int
  /// https when started with a certificate (self-signed in tests: curl is told not to verify it).
  let scheme: String

  init(_ qtool: QtoolProcess, _ extra: [String] = [], environment: [String: String] = [:]) throws {
    self.qtool = qtool
    scheme = extra.contains("--tls-cert") ? "https" : "http"
    let portFile = qtool.home.appendingPathComponent("port-\(UUID().uuidString)").path
    server = try BackgroundQtool(
      qtool, ["serve", "--port", "0", "--port-file", portFile] + extra,
      environment: ["QTOOL_SERVE_RATE_DEFAULT": "100000/min", "QTOOL_SERVE_BCRYPT_COST": "4"].merging(environment) { $1 })
    #expect(server.waitForStderr("listening on", timeout: 30), "\(server.stderr)")
    port = Int((try? String(contentsOfFile: portFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
    #expect(port > 0)
  }

  struct Answer {
    var status: Int
    var body: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:] }
    /// The envelope's data, re-encoded with sorted keys, for comparing with the CLI's JSON.
    var data: Any? { json["data"] }
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
    var errorCode: String? { error["code"] as? String }
    var field: String? { (error["details"] as? [String: Any])?["field"] as? String }
  }

  func request(_ method: String, _ path: String, token: String? = nil, body: String? = nil, file: String? = nil, curl extra: [String] = []) throws
    -> Answer
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    var arguments = ["-s", "--max-time", "60", "-X", method, "-w", "\n%{http_code}"] + extra + (scheme == "https" ? ["-k"] : []) + ["\(scheme)://127.0.0.1:\(port)\(path)"]
    if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
    if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
    if let file { arguments += ["--data-binary", "@" + file] }
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    let newline = text.lastIndex(of: "\n") ?? text.startIndex
    return Answer(status: Int(text[text.index(after: newline)...]) ?? 0, body: String(text[..<newline]))
  }

  /// SIGTERM; the exit status and how long it took.
  func stop() -> (status: Int32, seconds: Double) {
    let start = Date()
    server.signal(SIGTERM)
    let status = server.wait()
    return (status, Date().timeIntervalSince(start))
  }
}

/// JSON values compared as values (key order and number spelling aside), with `dropping` keys
/// removed at the top level (ids and times that differ between two runs of one operation).
func sameJSON(_ a: Any?, _ b: Any?, dropping: Set<String> = []) -> Bool {
  func normal(_ value: Any?) -> Any? {
    guard var object = value as? [String: Any] else { return value }
    for key in dropping { object.removeValue(forKey: key) }
    return object
  }
  guard let a = normal(a), let b = normal(b) else { return a == nil && b == nil }
  let options: JSONSerialization.WritingOptions = [.sortedKeys, .fragmentsAllowed]
  return (try? JSONSerialization.data(withJSONObject: a, options: options)) == (try? JSONSerialization.data(withJSONObject: b, options: options))
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct ServeCommandTests {
  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d"]).status == 0)
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--template", "sma_crossover", "--symbol", "GOOG", "-o", "goog-sma.yaml"]).status == 0)
    return qtool
  }

  func token(_ qtool: QtoolProcess, scopes: String = "*", name: String = "e2e") throws -> String {
    let result = try qtool.run(["auth", "token", "create", name, "--scopes", scopes, "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    return try jsonObject(result.stdout)["token"] as? String ?? ""
  }

  func cli(_ qtool: QtoolProcess, _ arguments: [String]) throws -> Any {
    let result = try qtool.run(arguments + ["--json"])
    #expect(result.status == 0, "\(arguments): \(result.stderr)")
    return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: .fragmentsAllowed)
  }

  /// For every operation, the CLI's --json result is the API's data.
  @Test func theAPIAnswersWhatTheCLIPrints() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let server = try ServeProcess(qtool)
    defer { _ = server.stop() }
    func items(_ answer: ServeProcess.Answer) -> Any? { (answer.data as? [String: Any])?["items"] }

    #expect(sameJSON(try cli(qtool, ["data", "list"]), items(try server.request("GET", "/api/v1/data/datasets", token: token))))
    #expect(sameJSON(try cli(qtool, ["data", "info", "GOOG-1d"]), try server.request("GET", "/api/v1/data/datasets/GOOG-1d", token: token).data))
    #expect(sameJSON(try cli(qtool, ["data", "verify"]), try server.request("GET", "/api/v1/data/verify", token: token).data))
    #expect(sameJSON(try cli(qtool, ["strategy", "list"]), items(try server.request("GET", "/api/v1/strategies", token: token))))
    #expect(
      sameJSON(try cli(qtool, ["strategy", "versions", "goog-sma"]), try server.request("GET", "/api/v1/strategies/goog-sma/versions", token: token).data))
    #expect(
      sameJSON(
        try cli(qtool, ["strategy", "validate", "goog-sma"]),
        try server.request("POST", "/api/v1/strategies/validate", token: token, body: #"{"name": "goog-sma"}"#).data))
    #expect(
      sameJSON(
        try cli(qtool, ["strategy", "show", "goog-sma"]),
        (try server.request("GET", "/api/v1/strategies/goog-sma", token: token).data as? [String: Any])?["spec"]))

    let cliRun = try #require(try cli(qtool, ["backtest", "run", "goog-sma"]) as? [String: Any])
    let apiRun = try server.request("POST", "/api/v1/backtests?wait=true", token: token, body: #"{"strategy": "goog-sma"}"#)
    #expect(apiRun.status == 200)
    #expect(sameJSON(cliRun, apiRun.data, dropping: ["id", "job_id"]))
    let first = try #require(cliRun["id"] as? String)
    let second = try #require((apiRun.data as? [String: Any])?["id"] as? String)
    #expect(sameJSON(try cli(qtool, ["backtest", "list"]), items(try server.request("GET", "/api/v1/backtests", token: token))))
    #expect(sameJSON(try cli(qtool, ["backtest", "show", first]), try server.request("GET", "/api/v1/backtests/\(first)", token: token).data))
    #expect(
      sameJSON(
        try cli(qtool, ["backtest", "compare", first, second]),
        try server.request("GET", "/api/v1/backtests/compare?ids=\(first),\(second)", token: token).data))
    #expect(sameJSON(try cli(qtool, ["backtest", "replay", first]), try server.request("POST", "/api/v1/backtests/\(first):replay", token: token).data))
    #expect(
      sameJSON(
        try cli(qtool, ["backtest", "check", "goog-sma"]),
        try server.request("POST", "/api/v1/backtests/check", token: token, body: #"{"strategy": "goog-sma"}"#).data))
    let grid = #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [5, 10]}]}"#
    #expect(
      sameJSON(
        try cli(qtool, ["backtest", "grid", "goog-sma", "--grid", "fast=5,10"]),
        try server.request("POST", "/api/v1/backtests/grid?wait=true", token: token, body: grid).data, dropping: ["id", "job_id", "seconds"]))
    let job = try #require(cliRun["job_id"] as? String)
    #expect(sameJSON(try cli(qtool, ["jobs", "show", job]), try server.request("GET", "/api/v1/jobs/\(job)", token: token).data))

    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    let imported = try cli(qtool, ["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d", "--name", "GOOG-cli"])
    let uploaded = try server.request("POST", "/api/v1/data/import?symbol=GOOG&timeframe=1d&name=GOOG-api&wait=true", token: token, file: goog)
    #expect(sameJSON(imported, uploaded.data, dropping: ["dataset", "job_id", "seconds", "files"]))
    let cliDerived = try cli(qtool, ["data", "preprocess", "GOOG-1d", "--op", "resample timeframe=1w", "--out", "GOOG-1w-cli"])
    let apiDerived = try server.request(
      "POST", "/api/v1/data/preprocess?wait=true", token: token,
      body: #"{"dataset": "GOOG-1d", "operations": [{"type": "resample", "timeframe": "1w"}], "out": "GOOG-1w-api"}"#)
    #expect(sameJSON(cliDerived, apiDerived.data, dropping: ["dataset"]))
    let export = try qtool.run(["data", "export", "GOOG-1d", "--from", "2012-01-01", "--to", "2012-03-01", "-o", "-"])
    #expect(export.stdout == (try server.request("GET", "/api/v1/data/datasets/GOOG-1d/export?from=2012-01-01&to=2012-03-01", token: token).body))
    _ = try server.request("GET", "/api/v1/auth/me", token: token)
    #expect(sameJSON(try cli(qtool, ["auth", "token", "list"]), items(try server.request("GET", "/api/v1/admin/tokens", token: token))))
  }

  /// A strategy's runs, positions, equity and log over REST are what `strategy runs|status|logs
  /// --json` print for a runner `strategy start` detached; an unknown strategy is 66 and 404.
  @Test func liveRoutesAnswerWhatTheCLIPrints() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let start = try qtool.run(["strategy", "start", "goog-sma", "--feed", "replay", "--speed", "max", "--json"])
    #expect(start.status == 0, "\(start.stderr)")
    var status: [String: Any] = [:]
    for _ in 0..<1200 {
      status = try #require(try cli(qtool, ["strategy", "status", "goog-sma"]) as? [String: Any])
      if status["status"] as? String == "completed" { break }
      usleep(50_000)
    }
    #expect(status["status"] as? String == "completed", "\(status)")
    // Its last lines (the summary) are written once it has recorded its end: wait for the process.
    let pid = try #require(try jsonObject(start.stdout)["pid"] as? Int)
    for _ in 0..<200 where kill(Int32(pid), 0) == 0 { usleep(50_000) }
    let server = try ServeProcess(qtool)
    defer { _ = server.stop() }
    func items(_ answer: ServeProcess.Answer) -> Any? { (answer.data as? [String: Any])?["items"] }

    let runs = try cli(qtool, ["strategy", "runs", "goog-sma"])
    #expect((runs as? [[String: Any]])?.first?["log"] as? String == qtool.home.path + "/logs/goog-sma.log")
    #expect(sameJSON(runs, items(try server.request("GET", "/api/v1/strategies/goog-sma/runs", token: token))))
    let account = try #require(status["account"] as? [String: Any])
    #expect((account["positions"] as? [Any]) != nil)
    #expect(sameJSON(account["positions"], items(try server.request("GET", "/api/v1/strategies/goog-sma/positions", token: token))))
    let curve = try #require(try cli(qtool, ["strategy", "status", "goog-sma", "--equity"]) as? [String: Any])["equity_curve"] as? [Any]
    let equity = try server.request("GET", "/api/v1/strategies/goog-sma/equity?size=500&page=2", token: token)
    #expect((equity.data as? [String: Any])?["total"] as? Int == curve?.count)
    #expect(sameJSON(Array((curve ?? []).dropFirst(500).prefix(500)), items(equity)))
    let log = try #require(try cli(qtool, ["strategy", "logs", "goog-sma", "-n", "5"]) as? [String: Any])
    #expect((log["lines"] as? [String])?.isEmpty == false, "\(log)")
    #expect(sameJSON(log, try server.request("GET", "/api/v1/strategies/goog-sma/logs?lines=5", token: token).data))

    let unknown = try qtool.run(["strategy", "runs", "nope", "--json"])
    #expect(unknown.status == 66)
    #expect(try server.request("GET", "/api/v1/strategies/nope/runs", token: token).status == 404)
  }

  /// `POST /signals/channels/{name}:test` sends a signed test event to a real loopback
  /// webhook receiver, as `signals notify test --json` does (the latency aside); a receiver that
  /// refuses is a report (not delivered, dead, its status), an unknown channel 404, and a
  /// token without signals:write 403.
  @Test func aChannelTestReachesAWebhook() throws {
    let receiver = try LoopbackServer()
    defer { receiver.stop() }
    receiver.on(path: "/hook") { _, _ in .text("ok") }
    receiver.on(path: "/refuses") { _, _ in .text("no", status: 400) }
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let reader = try self.token(qtool, scopes: "signals:read", name: "reader")
    let environment = ["HOOK_SECRET": "s3cret-of-the-test"]
    let server = try ServeProcess(qtool, environment: environment)
    defer { _ = server.stop() }
    let hook =
      #"{"name": "hook", "kind": "webhook", "config": {"url": "\#(receiver.baseURL)/hook", "secret_env": "HOOK_SECRET"}, "filter": {}, "include_late": false}"#
    #expect(try server.request("POST", "/api/v1/signals/channels", token: token, body: hook).status == 201)
    let refuses = #"{"name": "refuses", "kind": "webhook", "config": {"url": "\#(receiver.baseURL)/refuses"}, "filter": {}, "include_late": false}"#
    #expect(try server.request("POST", "/api/v1/signals/channels", token: token, body: refuses).status == 201)

    let tested = try server.request("POST", "/api/v1/signals/channels/hook:test", token: token)
    #expect(tested.status == 200, "\(tested.body)")
    let report = try #require(tested.data as? [String: Any])
    #expect(report["delivered"] as? Bool == true && report["outcome"] as? String == "delivered" && report["status"] as? Int == 200, "\(report)")
    let received = try #require(receiver.requests.first { $0.path == "/hook" })
    #expect(received.method == "POST")
    #expect(try jsonObject(String(decoding: received.body, as: UTF8.self))["type"] as? String == "test")
    #expect(received.headers["webhook-id"]?.isEmpty == false && received.headers["webhook-timestamp"] != nil)
    #expect(received.headers["webhook-signature"]?.hasPrefix("v1,") == true, "signed with the secret of the server's environment")
    let cli = try qtool.run(["signals", "notify", "test", "hook", "--json"], environment: environment)
    #expect(cli.status == 0, "\(cli.stderr)")
    #expect(sameJSON(try jsonObject(cli.stdout), report, dropping: ["latency_ms"]))
    #expect(receiver.requests.filter { $0.path == "/hook" }.count == 2)

    let refused = try server.request("POST", "/api/v1/signals/channels/refuses:test", token: token)
    #expect(refused.status == 200, "\(refused.body)")
    let failed = try #require(refused.data as? [String: Any])
    #expect(failed["delivered"] as? Bool == false && failed["outcome"] as? String == "dead" && failed["status"] as? Int == 400, "\(failed)")
    #expect(try server.request("POST", "/api/v1/signals/channels/nope:test", token: token).status == 404)
    #expect(try server.request("POST", "/api/v1/signals/channels/hook:test", token: reader).status == 403)
    #expect(receiver.requests.filter { $0.path == "/hook" }.count == 2, "a refused test sends nothing")
  }

  /// Training over REST: a job started with the request `train run` makes trains what the CLI
  /// trains; the library routes answer what `train list|show|metrics|predict --json` print;
  /// a training job shows its epochs and, cancelled, keeps no version; delete.
  @Test func trainingOverTheAPIAnswersWhatTheCLIPrints() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("goog-up.yaml").path
    try TrainCommandTests.spec.write(toFile: spec, atomically: true, encoding: .utf8)
    let cliTrained = try #require(try cli(qtool, ["train", "run", spec]) as? [String: Any])
    let token = try token(qtool)
    let server = try ServeProcess(qtool)
    defer { _ = server.stop() }
    func items(_ answer: ServeProcess.Answer) -> Any? { (answer.data as? [String: Any])?["items"] }

    let apiTrained = try server.request("POST", "/api/v1/training/jobs?wait=true", token: token, body: #"{"model": {"name": "goog-up"}}"#)
    #expect(apiTrained.status == 200, "\(apiTrained.body)")
    #expect((apiTrained.data as? [String: Any])?["version"] as? Int == 2)
    #expect(sameJSON(cliTrained, apiTrained.data, dropping: ["version", "job_id"]), "the same spec on the same bars trains the same model")
    let started = try server.request("POST", "/api/v1/training/jobs", token: token, body: #"{"model": "goog-up", "params": {"h": 3}}"#)
    #expect(started.status == 202, "\(started.body)")
    let id = try #require((started.data as? [String: Any])?["id"] as? String)
    var job: [String: Any] = [:]
    for _ in 0..<600 {
      job = try server.request("GET", "/api/v1/training/jobs/\(id)", token: token).data as? [String: Any] ?? [:]
      if let status = (job["job"] as? [String: Any])?["status"] as? String, !["queued", "running"].contains(status) { break }
      usleep(50_000)
    }
    #expect((job["job"] as? [String: Any])?["status"] as? String == "completed", "\(job)")
    #expect(job["model"] as? String == "goog-up" && job["version"] as? Int == 3)
    let metrics: [String: Any] = [
      "model": "goog-up", "version": 3, "status": "ready", "best_epochs": job["best_epochs"] as Any, "epochs": job["epochs"] as Any,
    ]
    #expect(sameJSON(try cli(qtool, ["train", "metrics", "goog-up@3"]), metrics))
    #expect((items(try server.request("GET", "/api/v1/training/jobs", token: token)) as? [[String: Any]])?.count == 3)

    #expect(sameJSON(try cli(qtool, ["train", "list"]), items(try server.request("GET", "/api/v1/models", token: token))))
    #expect(sameJSON(try cli(qtool, ["train", "show", "goog-up"]), try server.request("GET", "/api/v1/models/goog-up", token: token).data))
    let version1 = try server.request("GET", "/api/v1/models/goog-up?version=1", token: token).data
    #expect(sameJSON(try cli(qtool, ["train", "show", "goog-up@1"]), version1))
    #expect(
      sameJSON(try cli(qtool, ["train", "metrics", "goog-up"]), try server.request("GET", "/api/v1/models/goog-up/metrics", token: token).data))
    let predicted = try server.request(
      "POST", "/api/v1/models/goog-up:predict", token: token, body: #"{"dataset": "GOOG-1d", "version": 1, "from": "2012-01-01"}"#)
    #expect(predicted.status == 200, "\(predicted.body)")
    #expect(sameJSON(try cli(qtool, ["train", "predict", "goog-up@1", "--dataset", "GOOG-1d", "--from", "2012-01-01"]), predicted.data))
    #expect(try server.request("POST", "/api/v1/models/nope:predict", token: token, body: #"{"dataset": "GOOG-1d"}"#).status == 404)

    // A long training cancelled through its route: no version is kept.
    let slow = TrainCommandTests.spec.replacingOccurrences(of: "name: goog-up", with: "name: goog-slow")
      .replacingOccurrences(of: "rounds: 20, early_stopping: 5, max_depth: 3, eta: 0.1", with: "rounds: 5000, max_depth: 6, eta: 0.001")
    let body = String(decoding: try JSONSerialization.data(withJSONObject: ["model": ["spec": slow]]), as: UTF8.self)
    let long = try server.request("POST", "/api/v1/training/jobs", token: token, body: body)
    #expect(long.status == 202, "\(long.body)")
    let longID = try #require((long.data as? [String: Any])?["id"] as? String)
    let cancel = try server.request("POST", "/api/v1/training/jobs/\(longID):cancel", token: token)
    #expect(cancel.status == 200, "\(cancel.body)")
    for _ in 0..<600 {
      job = try server.request("GET", "/api/v1/training/jobs/\(longID)", token: token).data as? [String: Any] ?? [:]
      if let status = (job["job"] as? [String: Any])?["status"] as? String, !["queued", "running"].contains(status) { break }
      usleep(50_000)
    }
    #expect((job["job"] as? [String: Any])?["status"] as? String == "cancelled", "\(job)")
    #expect(job["version"] is NSNull && (job["epochs"] as? [Any])?.isEmpty == true, "\(job)")
    let trainJob = try #require(cliTrained["job_id"] as? String)
    #expect(try server.request("GET", "/api/v1/training/jobs/\(trainJob)", token: token).status == 200)
    let run = try #require(try cli(qtool, ["backtest", "run", "goog-sma"]) as? [String: Any])
    let notTraining = try server.request("POST", "/api/v1/training/jobs/\(run["job_id"] as? String ?? "x"):cancel", token: token)
    #expect(notTraining.status == 404 && notTraining.errorCode == "not_a_training_job", "\(notTraining.body)")

    // Scopes: train:read reads, cannot train or delete.
    let reader = try self.token(qtool, scopes: "train:read", name: "reader")
    #expect(try server.request("GET", "/api/v1/models", token: reader).status == 200)
    #expect(try server.request("POST", "/api/v1/training/jobs", token: reader, body: #"{"model": "goog-up"}"#).status == 403)
    #expect(try server.request("DELETE", "/api/v1/models/goog-up", token: reader).status == 403)
    let deleted = try server.request("DELETE", "/api/v1/models/goog-up?version=1", token: token)
    #expect(sameJSON(deleted.data, ["model": "goog-up", "deleted_versions": [1]]), "\(deleted.body)")
    #expect(try server.request("GET", "/api/v1/models/goog-up?version=1", token: token).status == 404)
  }

  /// SIGTERM drains and exits 0 within 2 s; the job it ran is recorded as terminated.
  @Test func sigtermDrainsAndExitsZero() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let server = try ServeProcess(qtool)
    #expect(try server.request("GET", "/readyz").status == 200)
    let values = (2...90).map(String.init).joined(separator: ",")
    let started = try server.request(
      "POST", "/api/v1/backtests/grid", token: token,
      body: #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [\#(values)]}, {"name": "slow", "values": [\#(values)]}], "jobs": 1}"#)
    #expect(started.status == 202)
    let id = try #require((started.data as? [String: Any])?["id"] as? String)
    let (status, seconds) = server.stop()
    #expect(status == 0, "\(server.server.stderr)")
    #expect(seconds < 2)
    #expect(!server.server.stderr.contains(" error "), "a normal stop logs no error: \(server.server.stderr)")
    let job = try jsonObject(try qtool.run(["jobs", "show", id, "--json"]).stdout)
    #expect(job["status"] as? String == "cancelled")
    #expect((job["error"] as? [String: Any])?["category"] as? String == "terminated")
  }

  /// Jobs a killed server left running are marked interrupted when the next one starts.
  @Test func jobsOfADeadServerAreMarkedInterrupted() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let first = try ServeProcess(qtool)
    let values = (2...90).map(String.init).joined(separator: ",")
    let started = try first.request(
      "POST", "/api/v1/backtests/grid", token: token,
      body: #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [\#(values)]}, {"name": "slow", "values": [\#(values)]}], "jobs": 1}"#)
    let id = try #require((started.data as? [String: Any])?["id"] as? String)
    first.server.signal(SIGKILL)
    _ = first.server.wait()
    let second = try ServeProcess(qtool)
    defer { _ = second.stop() }
    let job = try second.request("GET", "/api/v1/jobs/\(id)", token: token).data as? [String: Any]
    #expect(job?["status"] as? String == "interrupted")
  }

  /// What an attacker would send, over the real socket: each refused with its status and code,
  /// nothing read from the file system, and the server still answering afterwards.
  @Test func hostileRequestsAreRefused() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let token = try token(qtool)
    let server = try ServeProcess(qtool, environment: ["QTOOL_SERVE_MAX_BODY_MIB": "1"])
    defer { _ = server.stop() }

    // Malformed JSON: 400 with the path of the field.
    let cut = try server.request("POST", "/api/v1/backtests", token: token, body: #"{"strategy": "goog-sma", "#)
    #expect(cut.status == 400)
    #expect(cut.errorCode == "malformed_body")
    let wrong = try server.request("POST", "/api/v1/backtests", token: token, body: #"{"strategy": "goog-sma", "params": {"fast": "ten"}}"#)
    #expect(wrong.status == 400)
    #expect(wrong.field == "params.fast", "\(wrong.body)")
    #expect(wrong.error["message"] as? String == "params.fast: expected a number, found a string")
    let deep = qtool.home.appendingPathComponent("deep.json").path
    try Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8).write(to: URL(fileURLWithPath: deep))
    #expect(try server.request("POST", "/api/v1/backtests", token: token, file: deep).status == 400)

    // A rule error: 422 with line and column.
    let spec = "name: bad\nuniverse: {symbols: [GOOG], timeframe: 1d}\nrules:\n  entry: sma(close, 10) >>> 3\n  exit: close < 1\n"
    let body = String(decoding: try JSONSerialization.data(withJSONObject: ["spec": spec]), as: UTF8.self)
    let rule = try server.request("POST", "/api/v1/strategies/validate", token: token, body: body)
    #expect(rule.status == 422, "\(rule.body)")
    let details = rule.error["details"] as? [String: Any] ?? [:]
    #expect((details["line"] as? Int ?? 0) > 0 && (details["column"] as? Int ?? 0) > 0, "\(rule.body)")

    // Unknown ids: 404 with the CLI's codes.
    for (path, code) in [
      ("/api/v1/backtests/nope", "run_not_found"), ("/api/v1/jobs/nope", "job_not_found"), ("/api/v1/data/datasets/NOPE-1d", "dataset_not_found"),
      ("/api/v1/nothing/here", "route_not_found"),
    ] {
      let answer = try server.request("GET", path, token: token)
      #expect(answer.status == 404, "\(path): \(answer.body)")
      #expect(answer.errorCode == code, "\(path): \(answer.body)")
    }
    #expect(try server.request("GET", "/api/v1/strategies/nope", token: token).status == 404)

    // Oversized bodies: 413 whether the length is announced or the body just keeps coming.
    let announced = try server.request(
      "POST", "/api/v1/data/import?symbol=X&timeframe=1d", token: token, body: "a", curl: ["-H", "Content-Length: 99999999999"])
    #expect(announced.status == 413, "\(announced.body)")
    let big = qtool.home.appendingPathComponent("big.csv").path
    try Data(repeating: UInt8(ascii: "1"), count: (1 << 20) + 100).write(to: URL(fileURLWithPath: big))
    let streamed = try server.request(
      "POST", "/api/v1/data/import?symbol=X&timeframe=1d", token: token, file: big, curl: ["-H", "Transfer-Encoding: chunked"])
    #expect(streamed.status == 413, "\(streamed.body)")
    #expect(streamed.errorCode == "body_too_large")

    // Paths and names that try to reach the file system.
    let raw = try server.request("GET", "/api/v1/data/datasets/../../../../etc/passwd", token: token, curl: ["--path-as-is"])
    #expect(raw.status == 404)
    let dashboard = try server.request("GET", "/../../../../etc/passwd", curl: ["--path-as-is"])
    #expect(dashboard.status == 404)
    for path in [
      "/api/v1/data/datasets/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/api/v1/data/datasets/..%2F..%2Fetc%2Fpasswd/export", "/api/v1/strategies/..%2Fqtool.db",
      "/api/v1/data/datasets/GOOG%00-1d",
    ] {
      let answer = try server.request("GET", path, token: token)
      #expect(answer.status == 400, "\(path): \(answer.body)")
      #expect(answer.errorCode == "invalid_name", "\(path)")
    }
    let named = try server.request("POST", "/api/v1/data/import?symbol=X&timeframe=1d&name=/etc/x", token: token, body: "a,b")
    #expect(named.errorCode == "invalid_name")
    for url in ["/etc/passwd", "file:///etc/passwd", "../qtool.db"] {
      let answer = try server.request(
        "POST", "/api/v1/data/downloads", token: token,
        body: #"{"source": "csv", "symbols": ["X"], "timeframe": "1d", "from": "2024-01-01", "url": "\#(url)"}"#)
      #expect(answer.status == 400, "\(url)")
      #expect(answer.errorCode == "file_access_refused", "\(url)")
    }
    for answer in [raw, dashboard, named] { #expect(!answer.body.contains("root:")) }

    // Still answering, and nothing was created by any of it.
    #expect(try server.request("GET", "/healthz").status == 200)
    let datasets = try server.request("GET", "/api/v1/data/datasets", token: token).data as? [String: Any]
    #expect(datasets?["total"] as? Int == 1)
    #expect(server.server.process.isRunning)
  }

  @Test func nonLoopbackNeedsCredentials() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let refused = try qtool.run(["serve", "--host", "0.0.0.0", "--port", "0", "--json"])
    #expect(refused.status == 64)
    #expect(try errorObject(refused.stderr)["code"] as? String == "no_credentials")
    #expect(refused.stderr.contains("no user or API token exists"), "\(refused.stderr)")
    _ = try token(qtool)
    let server = try ServeProcess(qtool, ["--host", "0.0.0.0", "--json"])
    #expect(try server.request("GET", "/healthz").status == 200)
    let listening = try jsonObject(server.server.stdout)
    #expect(listening["port"] as? Int == server.port)
    #expect(listening["url"] as? String == "http://0.0.0.0:\(server.port)")
    #expect(listening["pid"] as? Int == Int(server.server.pid))
    #expect(server.stop().status == 0)
    let half = try qtool.run(["serve", "--tls-cert", "x.pem"])
    #expect(half.status == 64)
  }

  /// With a certificate and its key, the same API over HTTPS (and plain HTTP is not answered).
  @Test func servesHTTPSWithACertificate() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let cert = qtool.home.appendingPathComponent("cert.pem").path
    let key = qtool.home.appendingPathComponent("key.pem").path
    let made = try qtool.shell(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout '\(key)' -out '\(cert)' >/dev/null 2>&1 && echo made")
    try #require(made.stdout.contains("made"), "openssl is a test package: make test-deps installs it")
    let server = try ServeProcess(qtool, ["--tls-cert", cert, "--tls-key", key])
    #expect(server.server.stderr.contains("https://127.0.0.1:"), "\(server.server.stderr)")
    let health = try server.request("GET", "/healthz")
    #expect(health.status == 200, "\(health.body)")
    #expect(health.json["success"] as? Bool == true)
    #expect(server.stop().status == 0)
    let missing = try qtool.run(["serve", "--port", "0", "--tls-cert", cert, "--tls-key", qtool.home.appendingPathComponent("nope.pem").path])
    #expect(missing.status == 66, "\(missing.stderr)")
    let swapped = try qtool.run(["serve", "--port", "0", "--tls-cert", cert, "--tls-key", cert])
    #expect(swapped.status == 65, "\(swapped.stderr)")
    #expect(swapped.stderr.contains("is not a PEM private key"))
    let other = qtool.home.appendingPathComponent("other.pem").path
    _ = try qtool.shell("openssl genrsa -out '\(other)' 2048 >/dev/null 2>&1")
    let mismatched = try qtool.run(["serve", "--port", "0", "--tls-cert", cert, "--tls-key", other])
    #expect(mismatched.status == 65, "\(mismatched.stderr)")
    #expect(mismatched.stderr.contains("does not belong to the certificate"))
  }

  @Test func authCommands() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let environment = ["QTOOL_SERVE_BCRYPT_COST": "4"]
    let added = try qtool.run(
      ["auth", "user", "add", "alice", "--role", "admin", "--password-stdin", "--json"], environment: environment, stdin: Data("s3cret-pass\n".utf8))
    #expect(added.status == 0, "\(added.stderr)")
    #expect(try jsonObject(added.stdout)["role"] as? String == "admin")
    let again = try qtool.run(["auth", "user", "add", "alice", "--password-stdin", "--json"], environment: environment, stdin: Data("other-pass\n".utf8))
    #expect(again.status == 73)
    #expect(try errorObject(again.stderr)["code"] as? String == "user_exists")
    let short = try qtool.run(["auth", "user", "add", "bob", "--password-stdin"], environment: environment, stdin: Data("short\n".utf8))
    #expect(short.status == 64)
    let noTerminal = try qtool.run(["auth", "user", "add", "bob"], environment: environment)
    #expect(noTerminal.status == 64)
    #expect(noTerminal.stderr.contains("--password-stdin"))
    let users = try jsonArray(try qtool.run(["auth", "user", "list", "--json"]).stdout)
    #expect(users.map { $0["username"] as? String } == ["alice"])
    #expect(!(try qtool.run(["auth", "user", "list", "--json"]).stdout.contains("$2")), "never the hash")
    #expect(try qtool.run(["auth", "user", "passwd", "alice", "--password-stdin"], environment: environment, stdin: Data("new-secret-1\n".utf8)).status == 0)
    #expect(try qtool.run(["auth", "user", "passwd", "nobody", "--password-stdin"], stdin: Data("new-secret-1\n".utf8)).status == 66)

    let created = try jsonObject(try qtool.run(["auth", "token", "create", "ci", "--scopes", "backtest:*,jobs:read", "--expires", "30d", "--json"]).stdout)
    let secret = try #require(created["token"] as? String)
    #expect(secret.hasPrefix("qt_"))
    let plain = try qtool.run(["auth", "token", "create", "cron", "--scopes", "data:read"])
    #expect(plain.stdout.hasPrefix("qt_"))
    #expect(plain.stderr.contains("not shown again"))
    let list = try qtool.run(["auth", "token", "list", "--json"])
    #expect(!list.stdout.contains(secret))
    #expect(try jsonArray(list.stdout).count == 2)
    let badScope = try qtool.run(["auth", "token", "create", "x", "--scopes", "backtest:raed", "--json"])
    #expect(badScope.status == 64)
    #expect(try errorObject(badScope.stderr)["code"] as? String == "invalid_scopes")
    #expect(try qtool.run(["auth", "token", "revoke", "ci"]).status == 0)
    #expect(try qtool.run(["auth", "token", "revoke", "ci"]).status == 66)
    #expect(try qtool.run(["auth", "user", "remove", "alice"]).status == 0)
    #expect(try jsonArray(try qtool.run(["auth", "user", "list", "--json"]).stdout).isEmpty)
  }
}
