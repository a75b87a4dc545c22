import Foundation
import QtoolTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Live paper trading through the built binary: replays against `backtest run`, restarts after
/// kill -9, detached runners, their control from other processes, signals and notifications.
@Suite(.serialized, .timeLimit(.minutes(3))) struct LiveCommandTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  static let riskSpec = """
    name: live-risk
    universe: { symbols: [GOOG], timeframe: 1d }
    params: { fast: 10, slow: 30 }
    rules:
      entry: cross_above(sma(close, fast), sma(close, slow))
      exit: cross_below(sma(close, fast), sma(close, slow))
      short_entry: cross_below(sma(close, fast), sma(close, slow)) and rsi(close, 14) < 45
      short_exit: cross_above(sma(close, fast), sma(close, slow))
    sizing: { fraction: 0.9 }
    costs: { commission: 0.001, slippage_bps: 5 }
    risk: { stop_loss: 0.06, take_profit: 0.25, trailing_stop: 0.1 }
    execution: { fill: next_open, units: whole, close_at_end: false, capital: 100000 }
    """

  /// A home with GOOG's bars and `spec` written to spec.yaml.
  func prepared(_ spec: String = riskSpec, rows: Int? = nil) throws -> (QtoolProcess, String) {
    let qtool = try QtoolProcess()
    var file = Self.goog
    if let rows {
      let lines = try String(contentsOfFile: Self.goog, encoding: .utf8).split(separator: "\n")
      file = qtool.home.appendingPathComponent("head.csv").path
      try (lines.prefix(rows + 1).joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
    }
    let imported = try qtool.run(["data", "import", file, "-s", "GOOG", "-t", "1d", "-q"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let path = qtool.home.appendingPathComponent("spec.yaml").path
    try spec.write(toFile: path, atomically: true, encoding: .utf8)
    return (qtool, path)
  }

  func status(_ qtool: QtoolProcess, _ name: String, trades: Bool = false) throws -> [String: Any] {
    let result = try qtool.run(["strategy", "status", name, "--json"] + (trades ? ["--trades"] : []))
    #expect(result.status == 0, "\(result.stderr)")
    return try jsonObject(result.stdout)
  }

  func processAlive(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

  /// A replay at full speed holds exactly the trades and the final equity of `backtest run`.
  @Test func replayAgreesWithBacktestRun() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let run = try qtool.run(["strategy", "run", spec, "--feed", "replay", "--speed", "max", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("registered live-risk v1"))
    #expect(run.stderr.contains("replay finished"))
    let summary = try jsonObject(run.stdout)
    #expect(summary["status"] as? String == "completed" && summary["bars_processed"] as? Int == 2148)

    let backtest = try qtool.run(["backtest", "run", "live-risk", "--json"])
    #expect(backtest.status == 0, "\(backtest.stderr)")
    let report = try jsonObject(backtest.stdout)
    let shown = try status(qtool, "live-risk", trades: true)
    let account = try #require(shown["account"] as? [String: Any])
    #expect(shown["status"] as? String == "completed")
    #expect(shown["last_bar"] as? String == "2013-03-01T00:00:00Z")
    #expect(account["equity"] as? Double == (report["metrics"] as? [String: Any])?["final_equity"] as? Double)
    let expected = try #require(report["trades"] as? [[String: Any]])
    let trades = try #require(shown["trades"] as? [[String: Any]])
    #expect(expected.count > 20 && trades.count == expected.count)
    for (paper, backtest) in zip(trades, expected) {
      for key in ["side", "size", "entry_time", "entry_price", "exit_time", "exit_price", "pnl"] {
        #expect("\(paper[key] ?? "-")" == "\(backtest[key] ?? "-")", "\(key) of the trade entered at \(backtest["entry_time"] ?? "?")")
      }
    }
    #expect(
      Set(expected.compactMap { $0["reason"] as? String }) == ["signal", "stop", "target", "trailing"], "stops, targets and trailing stops act")
    #expect(Set(expected.compactMap { $0["side"] as? String }) == ["long", "short"])
  }

  /// A portfolio spec (two symbols ranked weekly, a stop on each) replayed at full speed holds
  /// the trades and the final equity of `backtest run`, symbol by symbol.
  @Test func portfolioReplayAgreesWithBacktestRun() throws {
    let portfolio = """
      name: live-portfolio
      universe: { symbols: [GOOG, AAPL], timeframe: 1d }
      rules: {}
      portfolio: { rank: "roc(close, 20)", top: 1, rebalance: weekly }
      costs: { commission: 0.001, slippage_bps: 2 }
      risk: { stop_loss: 0.06 }
      execution: { close_at_end: false }
      """
    let (qtool, spec) = try prepared(portfolio)
    defer { qtool.cleanUp() }
    let aapl = QtoolProcess.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data/stooq/aapl_us_d.csv").path
    let imported = try qtool.run(["data", "import", aapl, "-s", "AAPL", "-t", "1d", "-q"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let run = try qtool.run(["strategy", "run", spec, "--feed", "replay", "--speed", "max", "--from", "2009-01-02", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try jsonObject(run.stdout)["status"] as? String == "completed")
    let backtest = try qtool.run(["backtest", "run", "live-portfolio", "--from", "2009-01-02", "--json"])
    #expect(backtest.status == 0, "\(backtest.stderr)")
    let report = try jsonObject(backtest.stdout)
    let shown = try status(qtool, "live-portfolio", trades: true)
    #expect((shown["account"] as? [String: Any])?["equity"] as? Double == (report["metrics"] as? [String: Any])?["final_equity"] as? Double)
    func keyed(_ trades: [[String: Any]]) -> [String] {
      trades.map { trade in
        ["symbol", "side", "size", "entry_time", "entry_price", "exit_time", "exit_price", "pnl"].map { "\(trade[$0] ?? "-")" }.joined(separator: " ")
      }
      .sorted()
    }
    let expected = try #require(report["trades"] as? [[String: Any]])
    let paper = try #require(shown["trades"] as? [[String: Any]])
    #expect(expected.count > 20)
    #expect(Set(expected.compactMap { $0["symbol"] as? String }) == ["GOOG", "AAPL"])
    #expect(keyed(paper) == keyed(expected))
  }

  /// kill -9 in the middle of a replay (held at a bar by the test hook), then a restart: the
  /// same account, no bar missed, no signal twice, the equity of a run never interrupted; every
  /// notification arrives at least once, repeats carrying the same webhook-id.
  @Test func aRunnerKilledMidwayRestartsWhereItStopped() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on(path: "/hook") { _, _ in .text("ok") }
    let (reference, referenceSpec) = try prepared()
    defer { reference.cleanUp() }
    #expect(try reference.run(["strategy", "run", referenceSpec, "--feed", "replay", "-q"]).status == 0)
    let expected = try status(reference, "live-risk", trades: true)

    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["strategy", "validate", spec]).status == 0)
    let added = try qtool.run(["signals", "notify", "add", "hook", "--kind", "webhook", "--url", server.baseURL + "/hook"])
    #expect(added.status == 0, "\(added.stderr)")
    let first = try BackgroundQtool(qtool, ["strategy", "run", spec, "--feed", "replay"], environment: ["QTOOL_TEST_PAUSE": "live.bar:900"])
    #expect(first.waitForStderr("qtool-test: paused at live.bar:900"), "\(first.stderr)")
    let during = try status(qtool, "live-risk")
    #expect(during["status"] as? String == "running")
    first.signal(SIGKILL)
    #expect(first.wait() == 137)
    #expect(try status(qtool, "live-risk")["status"] as? String == "dead")

    let second = try qtool.run(["strategy", "run", "live-risk", "--feed", "replay", "--json"])
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stderr.contains("continuing paper account"))
    #expect(try jsonObject(second.stdout)["bars_processed"] as? Int == 2148 - 900, "every bar after the last committed one, and no other")
    let shown = try status(qtool, "live-risk", trades: true)
    #expect((shown["account"] as? [String: Any])?["equity"] as? Double == (expected["account"] as? [String: Any])?["equity"] as? Double)
    func fills(_ status: [String: Any]) -> [String] {
      (status["fills"] as? [[String: Any]] ?? []).map { fill in
        ["time", "side", "action", "size", "price", "commission", "reason", "pnl"].map { "\(fill[$0] ?? "-")" }.joined(separator: " ")
      }
    }
    #expect(!fills(shown).isEmpty && fills(shown) == fills(expected), "the same fills")

    let signals = try jsonObject(try qtool.run(["signals", "list", "--size", "1000", "--json"]).stdout)["items"] as! [[String: Any]]
    let ids = signals.map { $0["id"] as! String }
    #expect(!ids.isEmpty && Set(ids).count == ids.count, "no signal twice")
    let referenceSignals = try jsonObject(try reference.run(["signals", "list", "--size", "1000", "--json"]).stdout)["items"] as! [[String: Any]]
    #expect(signals.map { "\($0["bar_time"]!) \($0["action"]!)" } == referenceSignals.map { "\($0["bar_time"]!) \($0["action"]!)" })

    let deadline = Date().addingTimeInterval(20)
    func received() -> [LoopbackServer.Request] { server.requests.filter { $0.path == "/hook" } }
    while Set(received().compactMap { $0.headers["webhook-id"] }).count < ids.count, Date() < deadline { usleep(50_000) }
    let requests = received()
    #expect(Set(requests.compactMap { $0.headers["webhook-id"] }) == Set(ids), "every signal notified at least once")
    for (id, group) in Dictionary(grouping: requests, by: { $0.headers["webhook-id"] ?? "" }) where group.count > 1 {
      #expect(Set(group.map(\.body)).count == 1, "a repeat of \(id) is the same notification")
    }
    let history = try jsonArray(try qtool.run(["signals", "notify", "history", "--limit", "1000", "--json"]).stdout)
    #expect(history.count == ids.count && history.allSatisfy { $0["status"] as? String == "delivered" })
  }

  /// Two starts at once: one runs, the other exits 75 naming it; stop stops it for good.
  @Test func twoStartsAtOnceOneRuns() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let results = Mutex<[QtoolProcess.Result]>([])
    let group = DispatchGroup()
    for _ in 0..<2 {
      group.enter()
      DispatchQueue.global().async {
        if let result = try? qtool.run(["strategy", "start", spec, "--feed", "store", "--json"]) { results.withLock { $0.append(result) } }
        group.leave()
      }
    }
    #expect(group.wait(timeout: .now() + 60) == .success)
    let both = results.withLock { $0 }
    #expect(both.map(\.status).sorted() == [0, 75], "\(both.map(\.stderr))")
    let winner = try #require(both.first { $0.status == 0 })
    let loser = try #require(both.first { $0.status == 75 })
    let started = try jsonObject(winner.stdout)
    let pid = Int32(started["pid"] as! Int)
    #expect(loser.stderr.contains("strategy live-risk is already running (pid \(pid)"), "\(loser.stderr)")
    #expect(try errorObject(loser.stderr)["code"] as? String == "lease_held")
    #expect(processAlive(pid))
    let shown = try status(qtool, "live-risk")
    #expect(shown["status"] as? String == "running" && shown["pid"] as? Int == Int(pid))

    let stop = try qtool.run(["strategy", "stop", "live-risk", "--json"])
    #expect(stop.status == 0, "\(stop.stderr)")
    #expect(try jsonObject(stop.stdout)["was"] as? String == "running")
    usleep(100_000)
    #expect(!processAlive(pid) || isZombie(pid), "gone once stop returns")
    #expect(try status(qtool, "live-risk")["status"] as? String == "stopped")
  }

  func isZombie(_ pid: Int32) -> Bool {
    (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8))?.split(separator: " ").dropFirst(2).first == "Z"
  }

  /// A runner whose process died is dead in `status`; stopping it marks its run failed.
  @Test func stoppingADeadRunMarksItFailed() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let start = try qtool.run(["strategy", "start", spec, "--feed", "store", "--json"])
    #expect(start.status == 0, "\(start.stderr)")
    let pid = Int32(try jsonObject(start.stdout)["pid"] as! Int)
    kill(pid, SIGKILL)
    let deadline = Date().addingTimeInterval(10)
    while processAlive(pid), !isZombie(pid), Date() < deadline { usleep(10_000) }
    let shown = try status(qtool, "live-risk")
    #expect(shown["status"] as? String == "dead")
    #expect(shown["run_status"] as? String == "failed")
    #expect((shown["error"] as? [String: Any])?["code"] as? String == "process_gone")
    // `strategy runs` (which only reads the store) says the same of the run.
    let runs = try qtool.run(["strategy", "runs", "live-risk", "--json"])
    let latest = try #require((try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as? [[String: Any]])?.first)
    #expect(latest["status"] as? String == "failed", "\(runs.stdout)")
    let stop = try qtool.run(["strategy", "stop", "live-risk", "--json"])
    #expect(stop.status == 0, "\(stop.stderr)")
    let report = try jsonObject(stop.stdout)
    #expect(report["was"] as? String == "dead" && report["status"] as? String == "failed")
    #expect(try status(qtool, "live-risk")["status"] as? String == "failed")
    // It starts again on the same account.
    let again = try qtool.run(["strategy", "start", "live-risk", "--feed", "store", "--json"])
    #expect(again.status == 0, "\(again.stderr)")
    #expect(try jsonObject(again.stdout)["continued"] as? Bool == true)
    #expect(try qtool.run(["strategy", "stop", "--all"]).status == 0)
  }

  /// A runner's log is a regular file: a FIFO there would block the start forever, a symlink
  /// would have the runner append to whatever it names. Both are refused (73) at once.
  @Test func aLogThatIsNotARegularFileIsRefused() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let logs = qtool.home.appendingPathComponent("logs")
    try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
    let log = logs.appendingPathComponent("live-risk.log").path
    #expect(mkfifo(log, 0o644) == 0)
    let started = Date()
    let fifo = try qtool.run(["strategy", "start", spec, "--feed", "store"])
    #expect(fifo.status == 73, "\(fifo.stderr)")
    #expect(fifo.stderr.contains("not a regular file"), "\(fifo.stderr)")
    #expect(Date().timeIntervalSince(started) < 10)
    try FileManager.default.removeItem(atPath: log)
    let victim = qtool.home.appendingPathComponent("victim.txt").path
    try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
    try FileManager.default.createSymbolicLink(atPath: log, withDestinationPath: victim)
    let symlink = try qtool.run(["strategy", "start", spec, "--feed", "store"])
    #expect(symlink.status == 73, "\(symlink.stderr)")
    #expect(symlink.stderr.contains("symbolic link"), "\(symlink.stderr)")
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
  }

  /// start, status --json, signals tail -f (signals of another process within half a second),
  /// stop (the process is gone when stop returns).
  @Test func startStatusTailStop() throws {
    let (qtool, spec) = try prepared(rows: 1500)
    defer { qtool.cleanUp() }
    let headLast = try String(contentsOfFile: Self.goog, encoding: .utf8).split(separator: "\n")[1500].split(separator: ",")[0]
    let start = try qtool.run(["strategy", "start", spec, "--feed", "store", "--from", "2010-01-04"])
    #expect(start.status == 0, "\(start.stderr)")
    let runID = start.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    #expect(runID.hasPrefix("lr_"))
    #expect(start.stderr.contains("log: \(qtool.home.path)/logs/live-risk.log"))
    var shown = try status(qtool, "live-risk")
    #expect(shown["status"] as? String == "running")
    #expect(shown["run_id"] as? String == runID)
    #expect(shown["heartbeat_age_seconds"] as? Double ?? 99 < 10)
    let pid = Int32(shown["pid"] as! Int)

    var deadline = Date().addingTimeInterval(30)
    while (try? status(qtool, "live-risk")["last_bar"] as? String)?.hasPrefix(String(headLast)) != true, Date() < deadline { usleep(50_000) }
    #expect(try status(qtool, "live-risk")["last_bar"] as? String == String(headLast), "the stored bars from --from on are traded")
    let tail = try BackgroundQtool(qtool, ["signals", "tail", "-f", "-n", "100000", "--json", "--strategy", "live-risk"])
    // Another process stores the rest of the bars: the runner trades them, tail shows the signals.
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    deadline = Date().addingTimeInterval(30)
    while (try? status(qtool, "live-risk")["last_bar"] as? String) != "2013-03-01T00:00:00Z", Date() < deadline { usleep(50_000) }
    shown = try status(qtool, "live-risk")
    #expect(shown["last_bar"] as? String == "2013-03-01T00:00:00Z")
    let stored = try jsonObject(try qtool.run(["signals", "list", "--size", "1000", "--json"]).stdout)["total"] as! Int
    #expect(stored > 0)
    deadline = Date().addingTimeInterval(10)
    while tail.stdout.split(separator: "\n").count < stored, Date() < deadline { usleep(50_000) }
    let lines = tail.stdout.split(separator: "\n")
    #expect(lines.count == stored, "tail -f printed every signal, those stored while it followed too")
    #expect(lines.allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, "NDJSON")
    tail.signal(SIGTERM)
    #expect(tail.wait() == 0)

    let stop = try qtool.run(["strategy", "stop", "live-risk"])
    #expect(stop.status == 0, "\(stop.stderr)")
    #expect(stop.stderr.contains("stopped live-risk (run \(runID)"))
    #expect(!processAlive(pid) || isZombie(pid))
    let log = try String(contentsOfFile: qtool.home.appendingPathComponent("logs/live-risk.log").path, encoding: .utf8)
    #expect(log.contains("run \(runID)") && log.contains("live-risk stopped"))
  }

  /// A runner that does not answer (stopped with SIGSTOP) makes `strategy stop` exit 75 naming
  /// its pid, without a signal sent to it; once it runs again, `stop --close-positions` stops it
  /// and settles its account at the last close (reason manual), and the account is closed.
  @Test func stopWaitsForTheRunnerAndClosesPositions() throws {
    let holder = """
      name: live-hold
      universe: { symbols: [GOOG], timeframe: 1d }
      rules: { entry: close > 0, exit: close < 0 }
      execution: { fill: next_open, units: whole, close_at_end: false, capital: 100000 }
      """
    let (qtool, spec) = try prepared(holder, rows: 1500)
    defer { qtool.cleanUp() }
    let lastClose = 489.83  // the 1,500th bar, 2010-08-03
    // Its heart beats every 0.1 s (the runner inherits the environment of `start`).
    let start = try qtool.run(
      ["strategy", "start", spec, "--feed", "store", "--from", "2010-01-04", "--json"], environment: ["QTOOL_LIVE_HEARTBEAT_INTERVAL": "0.1"])
    #expect(start.status == 0, "\(start.stderr)")
    let pid = Int32(try jsonObject(start.stdout)["pid"] as! Int)
    let deadline = Date().addingTimeInterval(30)
    while (try? status(qtool, "live-hold")["last_bar"] as? String) != "2010-08-03T00:00:00Z", Date() < deadline { usleep(50_000) }
    let account = try #require(try status(qtool, "live-hold")["account"] as? [String: Any])
    let positions = try #require(account["positions"] as? [[String: Any]])
    #expect(positions.count == 1 && positions[0]["side"] as? String == "long")

    kill(pid, SIGSTOP)
    usleep(800_000)
    // Hung, its lease still held: dead once its heartbeat is older than live.stale_after.
    let hung = try jsonObject(try qtool.run(["strategy", "status", "live-hold", "--json"], environment: ["QTOOL_LIVE_STALE_AFTER": "0.5"]).stdout)
    #expect(hung["status"] as? String == "dead" && hung["run_status"] as? String == "failed")
    #expect((hung["note"] as? String)?.contains("no heartbeat") == true, "\(hung["note"] ?? "no note")")
    #expect(try status(qtool, "live-hold")["status"] as? String == "running", "within the default 30 s it is running")
    let stuck = try qtool.run(["strategy", "stop", "live-hold", "--timeout", "600ms", "--json"])
    kill(pid, SIGCONT)
    #expect(stuck.status == 75, "\(stuck.stderr)")
    let error = try errorObject(stuck.stderr)
    #expect(error["code"] as? String == "stop_timeout")
    #expect((error["message"] as? String)?.contains("(pid \(pid))") == true)
    #expect((error["hint"] as? String)?.contains("--timeout") == true)

    let stop = try qtool.run(["strategy", "stop", "live-hold", "--close-positions", "--json"])
    #expect(stop.status == 0, "\(stop.stderr)")
    let report = try jsonObject(stop.stdout)
    let closed = try #require(report["closed"] as? [[String: Any]])
    #expect(closed.count == 1)
    #expect(closed.first?["reason"] as? String == "manual" && closed.first?["side"] as? String == "sell")
    #expect(closed.first?["size"] as? Double == positions[0]["size"] as? Double)
    #expect(abs((closed.first?["price"] as? Double ?? 0) - lastClose) < 0.01 * lastClose, "at the last close, less slippage")
    let after = try status(qtool, "live-hold")
    let settled = try #require(after["account"] as? [String: Any])
    #expect(settled["status"] as? String == "closed")
    #expect((settled["positions"] as? [Any])?.isEmpty == true)
    #expect(settled["equity"] as? Double == report["equity"] as? Double)
    #expect(after["status"] as? String == "stopped")
    let waited = Date().addingTimeInterval(5)
    while processAlive(pid), !isZombie(pid), Date() < waited { usleep(10_000) }
    #expect(!processAlive(pid) || isZombie(pid))
  }

  /// `strategy run` in the foreground (systemd, Docker, tmux): SIGTERM or Ctrl-C stop it at
  /// the next bar boundary and it exits 0, its run stopped; `--once` processes what is final
  /// and exits.
  @Test func aForegroundRunnerStopsOnSigtermOrCtrlC() throws {
    let (qtool, spec) = try prepared(rows: 1500)
    defer { qtool.cleanUp() }
    let once = try qtool.run(["strategy", "run", spec, "--feed", "store", "--from", "2010-01-04", "--once", "--json"])
    #expect(once.status == 0, "\(once.stderr)")
    let summary = try jsonObject(once.stdout)
    #expect(summary["status"] as? String == "completed" && summary["last_bar"] as? String == "2010-08-03T00:00:00Z")
    for signal in [SIGTERM, SIGINT] {
      let runner = try BackgroundQtool(qtool, ["strategy", "run", "live-risk", "--feed", "store"])
      #expect(runner.waitForStderr("continuing paper account"), "\(runner.stderr)")
      #expect(try status(qtool, "live-risk")["status"] as? String == "running")
      runner.signal(signal)
      #expect(runner.wait() == 0, "\(runner.stderr)")
      #expect(runner.stderr.contains("live-risk stopped: 0 bars"), "\(runner.stderr)")
      let shown = try status(qtool, "live-risk")
      #expect(shown["status"] as? String == "stopped" && shown["last_bar"] as? String == "2010-08-03T00:00:00Z")
    }
  }

  /// Unknown strategy 66, a source that cannot serve live bars 64, a webhook URL off http(s)
  /// 64, an unreachable source at start 69 — from `run` and from `start` alike.
  @Test func refusesWhatCannotRun() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let unknown = try qtool.run(["strategy", "run", "nope", "--json"])
    #expect(unknown.status == 66)
    #expect(try errorObject(unknown.stderr)["code"] as? String == "strategy_not_found")
    #expect(try qtool.run(["strategy", "start", "nope"]).status == 66)

    let imported = try qtool.run(["strategy", "run", spec, "--json"])
    #expect(imported.status == 64, "\(imported.stderr)")
    let error = try errorObject(imported.stderr)
    #expect(error["code"] as? String == "source_not_live")
    #expect((error["message"] as? String)?.contains("binance, yahoo, stooq") == true)
    #expect((error["hint"] as? String)?.contains("--feed store") == true)
    let viaStart = try qtool.run(["strategy", "start", "live-risk", "--json"])
    #expect(viaStart.status == 64)
    #expect(try errorObject(viaStart.stderr)["code"] as? String == "source_not_live")

    let hook = try qtool.run(["signals", "notify", "add", "h", "--kind", "webhook", "--url", "file:///etc/passwd", "--json"])
    #expect(hook.status == 64)
    #expect(try errorObject(hook.stderr)["details"] as? [String: String] == ["field": "url"])

    let closed = try LoopbackServer()
    let url = closed.baseURL
    closed.stop()
    let btc = qtool.home.appendingPathComponent("btc.yaml").path
    try "name: btc\nuniverse: { symbols: [BTCUSDT], timeframe: 1h, source: binance }\nrules: { entry: close > 0 }\n".write(
      toFile: btc, atomically: true, encoding: .utf8)
    let environment = ["QTOOL_SOURCE_BINANCE_URL": url]
    let unreachable = try qtool.run(["strategy", "start", btc, "--json"], environment: environment)
    #expect(unreachable.status == 69, "\(unreachable.stderr)")
    #expect(try errorObject(unreachable.stderr)["code"] as? String == "source_unreachable")
    #expect(try qtool.run(["strategy", "run", "btc"], environment: environment).status == 69)

    #expect(try qtool.run(["strategy", "run", spec, "--feed", "store", "--speed", "5"]).status == 64)
    #expect(try qtool.run(["strategy", "run", spec, "--feed", "replay", "--speed", "1e-300"]).status == 64, "a wait that fits in no clock")
    #expect(try qtool.run(["strategy", "run", spec, "--feed", "replay", "--late-after", "9999999999999"]).status == 64)
    #expect(try qtool.run(["strategy", "stop"]).status == 64)
    let absurd = try qtool.run(["strategy", "status", "--json"], environment: ["QTOOL_LIVE_STALE_AFTER": "1e300"])
    #expect(absurd.status == 64, "a setting whose milliseconds overflow is refused, not a crash: \(absurd.stderr)")
    #expect(try errorObject(absurd.stderr)["details"] as? [String: String] == ["field": "live.stale_after"])
    #expect(try qtool.run(["signals", "list", "--since", "99999999999999d"]).status == 64, "not an overflow")
    #expect(try qtool.run(["jobs", "list", "--since", "99999999999999999w"]).status == 64, "not an overflow")
    #expect(try qtool.run(["strategy", "pause", "live-risk"]).status == 66, "no account yet")
  }

  /// signals tail, list (table, csv, json pages), stats; `| head` exits 0; pause and resume.
  @Test func signalsAreListedCountedAndPausable() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["strategy", "run", spec, "--feed", "replay", "-q"]).status == 0)
    let tail = try qtool.run(["signals", "tail", "-n", "5", "--json"])
    #expect(tail.status == 0)
    let lines = tail.stdout.split(separator: "\n")
    #expect(lines.count == 5)
    let last = try jsonObject(String(lines[4]))
    for key in ["id", "type", "action", "reason", "strength_raw", "strength_level", "price", "indicators", "symbol", "timeframe", "late", "bar_time"]
    {
      #expect(last[key] != nil, "signal field \(key)")
    }
    #expect((last["indicators"] as? [String: Any])?["sma(close, 10)"] != nil)
    #expect((last["models"] as? [Any])?.isEmpty == true, "a strategy without model() read no model")
    let page = try jsonObject(try qtool.run(["signals", "list", "--size", "7", "--page", "2", "--json"]).stdout)
    #expect((page["items"] as? [Any])?.count == 7 && page["page"] as? Int == 2 && page["size"] as? Int == 7)
    let total = page["total"] as! Int
    #expect(page["pages"] as? Int == (total + 6) / 7)
    let csv = try qtool.run(["signals", "list", "--format", "csv", "--size", "1000"])
    #expect(csv.stdout.split(separator: "\n").count == total + 1)
    #expect(csv.stdout.hasPrefix("id,bar_time,strategy,"))
    let stats = try jsonObject(try qtool.run(["signals", "stats", "--all", "--json"]).stdout)
    #expect(stats["total"] as? Int == total)
    #expect((stats["by_type"] as! [String: Int]).values.reduce(0, +) == total)
    #expect((stats["by_strategy"] as! [String: Int]) == ["live-risk": total])
    let buys = try jsonObject(try qtool.run(["signals", "list", "--type", "buy", "--size", "1000", "--json"]).stdout)
    #expect((buys["items"] as! [[String: Any]]).allSatisfy { $0["type"] as? String == "BUY" })
    let piped = try qtool.shell("\"$QTOOL\" signals tail -n 1000 | head -n 1 >/dev/null; echo ${PIPESTATUS[0]}")
    #expect(piped.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "0")

    // A replay with nothing to replay fails before it touches the account.
    let account = (try status(qtool, "live-risk")["account"] as? [String: Any])?["id"] as? String
    let future = try qtool.run(["strategy", "run", "live-risk", "--feed", "replay", "--from", "2099-01-01", "--new-account", "--json"])
    #expect(future.status == 66, "\(future.stderr)")
    #expect(try errorObject(future.stderr)["code"] as? String == "nothing_to_replay")
    #expect(future.stderr.contains("GOOG-1d from 2099-01-01 on has no stored bars to replay"), "\(future.stderr)")
    let kept = try #require(try status(qtool, "live-risk")["account"] as? [String: Any])
    #expect(account != nil && kept["id"] as? String == account && kept["status"] as? String == "open", "the account is not closed for nothing")

    let paused = try qtool.run(["strategy", "pause", "live-risk", "--json"])
    #expect(paused.status == 0, "\(paused.stderr)")
    #expect((try jsonObject(paused.stdout)["account"] as? [String: Any])?["paused"] as? Bool == true)
    #expect(try qtool.run(["strategy", "list", "--json"]).stdout.contains("\"paused\""))
    let resumed = try qtool.run(["strategy", "resume", "live-risk"])
    #expect(resumed.stderr.contains("live-risk resumed") && resumed.stdout.isEmpty, "a confirmation: \(resumed)")
  }

  /// A pause belongs to the account and outlives a stop: the next run of the account warns
  /// that it is paused and its summary says so (it signals, suppressed, and enters nothing);
  /// after a resume it trades again.
  @Test func aPauseOutlivesAStopAndTheNextRunSaysSo() throws {
    let (qtool, spec) = try prepared(rows: 400)
    defer { qtool.cleanUp() }
    let first = try qtool.run(["strategy", "run", spec, "--feed", "store", "--from", "2005-01-03", "--once", "--json"])
    #expect(first.status == 0, "\(first.stderr)")
    #expect(try jsonObject(first.stdout)["paused"] as? Bool == false)
    #expect(try qtool.run(["strategy", "pause", "live-risk"]).status == 0)
    #expect(try qtool.run(["strategy", "stop", "live-risk"]).status == 0)
    // The rest of the bars arrive; the account goes on, paused.
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let second = try qtool.run(["strategy", "run", "live-risk", "--feed", "store", "--once", "--json"])
    #expect(second.status == 0, "\(second.stderr)")
    let summary = try jsonObject(second.stdout)
    #expect(summary["paused"] as? Bool == true)
    #expect(summary["signals"] as? Int ?? 0 > 0)
    #expect(second.stderr.contains("is paused: no new entries and no notifications until `qtool strategy resume live-risk`"), "\(second.stderr)")
    #expect(second.stderr.contains("its paper account is paused"), "\(second.stderr)")
    let entries = try jsonObject(try qtool.run(["signals", "list", "--size", "500", "--json"]).stdout)["items"] as? [[String: Any]] ?? []
    #expect(entries.contains { $0["suppressed"] as? Bool == true }, "the entries it would have made are stored suppressed")
    #expect(try qtool.run(["strategy", "resume", "live-risk"]).status == 0)
    let start = try qtool.run(["strategy", "start", "live-risk", "--feed", "store", "--json"])
    #expect(start.status == 0, "\(start.stderr)")
    #expect(try jsonObject(start.stdout)["paused"] as? Bool == false)
    #expect(try qtool.run(["strategy", "stop", "live-risk"]).status == 0)
  }

  /// notify add, list, test (a signed test event; exit 69 when refused), history, remove.
  @Test func notificationChannelsFromTheCommandLine() throws {
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on(path: "/ok") { _, _ in .text("ok") }
    server.on(path: "/gone") { _, _ in .text("gone", status: 410) }
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let secret = "s3cret-of-the-test"
    let environment = ["QTOOL_HOOK_SECRET": secret]
    let add = try qtool.run(
      [
        "signals", "notify", "add", "ok", "--kind", "webhook", "--url", server.baseURL + "/ok", "--secret-env", "QTOOL_HOOK_SECRET", "--type", "buy",
        "--json",
      ])
    #expect(add.status == 0, "\(add.stderr)")
    #expect(try qtool.run(["signals", "notify", "add", "gone", "--kind", "webhook", "--url", server.baseURL + "/gone"]).status == 0)
    #expect(try qtool.run(["signals", "notify", "add", "ok", "--kind", "command", "--command", "true"]).status == 73, "a name is taken once")
    let list = try jsonArray(try qtool.run(["signals", "notify", "list", "--json"]).stdout)
    #expect(list.map { $0["name"] as? String } == ["gone", "ok"])
    #expect(!(try qtool.run(["signals", "notify", "list", "--json"]).stdout.contains(secret)), "secrets are never stored")

    let test = try qtool.run(["signals", "notify", "test", "ok", "--json"], environment: environment)
    #expect(test.status == 0, "\(test.stderr)")
    #expect(try jsonObject(test.stdout)["delivered"] as? Bool == true)
    let request = try #require(server.requests.first { $0.path == "/ok" })
    #expect(try jsonObject(String(decoding: request.body, as: UTF8.self))["type"] as? String == "test")
    #expect(request.headers["webhook-signature"]?.hasPrefix("v1,") == true)
    let unset = try qtool.run(["signals", "notify", "test", "ok"])
    #expect(unset.status == 69 && unset.stderr.contains("QTOOL_HOOK_SECRET"), "\(unset.stderr)")
    let gone = try qtool.run(["signals", "notify", "test", "gone"])
    #expect(gone.status == 69 && gone.stderr.contains("HTTP 410"), "\(gone.stderr)")
    #expect(try qtool.run(["signals", "notify", "history", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[\n\n]")
    #expect(try qtool.run(["signals", "notify", "remove", "gone"]).status == 0)
    #expect(try qtool.run(["signals", "notify", "remove", "gone"]).status == 66)
  }
}
