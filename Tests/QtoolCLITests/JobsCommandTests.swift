import Foundation
import QtoolTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Jobs, cancellation and structured errors, through the built binary. Operations are stopped
/// at a chosen point with `QTOOL_TEST_PAUSE=name:index` (they announce the pause on stderr), so
/// nothing here races a timer.
@Suite struct JobsCommandTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  func prepared() throws -> (QtoolProcess, String) {
    let qtool = try QtoolProcess()
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("sma.yaml").path
    #expect(try qtool.run(["strategy", "new", "sma", "--symbol", "GOOG", "-o", spec]).status == 0)
    return (qtool, spec)
  }

  func jobs(_ qtool: QtoolProcess, _ extra: [String] = []) throws -> [[String: Any]] {
    let result = try qtool.run(["jobs", "list", "--json"] + extra)
    #expect(result.status == 0, "\(result.stderr)")
    return try jsonArray(result.stdout)
  }

  func bigCSV(_ qtool: QtoolProcess, rows: Int) throws -> String {
    let file = qtool.home.appendingPathComponent("big.csv")
    var text = "timestamp,open,high,low,close,volume\n"
    text.reserveCapacity(rows * 40)
    let start = 1_577_836_800
    for i in 0..<rows { text += "\(start + i * 60),100.5,101.25,99.75,100.125,\(i % 1000)\n" }
    try text.write(to: file, atomically: false, encoding: .utf8)
    return file.path
  }

  /// Ctrl-C while an import's transaction is open: exit 130, nothing of it in the store, the job cancelled.
  @Test func interruptedImportLeavesNothing() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try bigCSV(qtool, rows: 200_000)
    let running = try BackgroundQtool(
      qtool, ["data", "import", file, "-s", "RW", "-t", "1m"], environment: ["QTOOL_TEST_PAUSE": "import.store:0"])
    #expect(running.waitForStderr("qtool-test: paused at import.store:0"), "\(running.stderr)")
    let during = try jobs(qtool)
    #expect(during.first?["status"] as? String == "running")
    #expect((during.first?["progress"] as? [String: Any])?["phase"] != nil)
    running.signal(SIGINT)
    #expect(running.wait() == 130)
    #expect(running.stderr.contains("qtool: interrupted"))
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n")
    #expect(try qtool.run(["db", "info", "--json"]).stdout.contains("\"bars\" : 0"))
    let job = try #require(try jobs(qtool).first)
    #expect(job["kind"] as? String == "import")
    #expect(job["status"] as? String == "cancelled")
    #expect((job["error"] as? [String: Any])?["code"] as? String == "cancelled")
    #expect((job["request"] as? [String: Any])?["symbol"] as? String == "RW")
  }

  /// SIGTERM cancels too, with 143.
  @Test func terminatedImportExits143() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try bigCSV(qtool, rows: 1_000)
    let running = try BackgroundQtool(
      qtool, ["data", "import", file, "-s", "RW", "-t", "1m"], environment: ["QTOOL_TEST_PAUSE": "import.store:0"])
    #expect(running.waitForStderr("paused at import.store:0"))
    running.signal(SIGTERM)
    #expect(running.wait() == 143)
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n")
    #expect(try jobs(qtool).first?["status"] as? String == "cancelled")
  }

  /// Ctrl-C in the middle of a grid: exit 130, no grid stored, the job cancelled.
  @Test func interruptedGridStoresNothing() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let running = try BackgroundQtool(
      qtool, ["backtest", "grid", spec, "--grid", "fast=5..40:1", "--grid", "slow=20..60:2", "--where", "fast < slow"],
      environment: ["QTOOL_TEST_PAUSE": "grid.batch:2"])
    #expect(running.waitForStderr("paused at grid.batch:2"), "\(running.stderr)")
    running.signal(SIGINT)
    #expect(running.wait() == 130)
    #expect(try qtool.run(["db", "info", "--json"]).stdout.contains("\"grid_runs\" : 0"))
    let grid = try #require(try jobs(qtool, ["--kind", "grid"]).first)
    #expect(grid["status"] as? String == "cancelled")
    let progress = try #require(grid["progress"] as? [String: Any])
    #expect(progress["unit"] as? String == "combinations")
    #expect((progress["total"] as? Int ?? 0) > 500)
  }

  /// `qtool jobs cancel ID` from another terminal stops a running grid.
  @Test func jobsCancelFromAnotherProcess() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let running = try BackgroundQtool(
      qtool, ["backtest", "grid", spec, "--grid", "fast=5..40:1", "--grid", "slow=20..60:2"], environment: ["QTOOL_TEST_PAUSE": "grid.batch:1"])
    #expect(running.waitForStderr("paused at grid.batch:1"), "\(running.stderr)")
    let job = try #require(try jobs(qtool, ["--status", "running"]).first)
    let id = job["id"] as! String
    #expect(job["pid"] as? Int == Int(running.pid))
    let cancel = try qtool.run(["jobs", "cancel", String(id.prefix(6)), "--json"])
    #expect(cancel.status == 0, "\(cancel.stderr)")
    #expect(try jsonObject(cancel.stdout)["status"] as? String == "cancelled")
    #expect(running.wait() == 130)
    #expect(running.stderr.contains("qtool: cancelled"))
    let shown = try jsonObject(try qtool.run(["jobs", "show", id, "--json"]).stdout)
    #expect(shown["cancel_requested"] as? Bool == true)
    // Waiting on a cancelled job exits as the job did.
    #expect(try qtool.run(["jobs", "wait", id]).status == 130)
  }

  /// Ctrl-C before a backtest is recorded: no run, the job cancelled.
  @Test func interruptedBacktestRecordsNoRun() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let running = try BackgroundQtool(qtool, ["backtest", "run", spec], environment: ["QTOOL_TEST_PAUSE": "backtest.record:0"])
    #expect(running.waitForStderr("paused at backtest.record:0"))
    running.signal(SIGINT)
    #expect(running.wait() == 130)
    #expect(try qtool.run(["backtest", "list", "--json"]).stdout == "[\n\n]\n")
    #expect(try qtool.run(["db", "info", "--json"]).stdout.contains("\"backtest_runs\" : 0"))
    #expect(try jobs(qtool, ["--kind", "backtest"]).first?["status"] as? String == "cancelled")
  }

  /// Ctrl-C between two archives of a download: what was stored stays, the rest is not.
  @Test func interruptedDownloadKeepsWholeFilesOnly() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: sharedData.appendingPathComponent("binance_vision"))
    let running = try BackgroundQtool(
      qtool,
      [
        "data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2024-01-01", "--to", "2024-04-01",
        "--jobs", "1",
      ], environment: ["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL, "QTOOL_TEST_PAUSE": "download.store:1"])
    #expect(running.waitForStderr("paused at download.store:1"), "\(running.stderr)")
    running.signal(SIGINT)
    #expect(running.wait() == 130)
    let datasets = try jsonArray(try qtool.run(["data", "list", "--json"]).stdout)
    #expect(datasets.first?["bars"] as? Int == 31, "January only: the second archive was not stored")
    let job = try #require(try jobs(qtool, ["--kind", "download"]).first)
    #expect(job["status"] as? String == "cancelled")
  }

  /// A job whose process was killed shows as interrupted: its lease is free.
  @Test func killedJobShowsAsInterrupted() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try bigCSV(qtool, rows: 1_000)
    let running = try BackgroundQtool(
      qtool, ["data", "import", file, "-s", "RW", "-t", "1m"], environment: ["QTOOL_TEST_PAUSE": "import.store:0"])
    #expect(running.waitForStderr("paused at import.store:0"))
    running.signal(SIGKILL)
    _ = running.wait()
    let job = try #require(try jobs(qtool).first)
    #expect(job["status"] as? String == "interrupted")
    let error = try #require(job["error"] as? [String: Any])
    #expect(error["code"] as? String == "process_gone")
    #expect((error["message"] as? String)?.contains("pid \(running.pid)") == true)
    #expect(try qtool.run(["jobs", "wait", job["id"] as! String]).status == 1)
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n")
    // The lease died with the process: the same import runs at once.
    #expect(try qtool.run(["data", "import", file, "-s", "RW", "-t", "1m"]).status == 0)
  }

  @Test func listFiltersShowAndPrune() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["backtest", "run", spec]).status == 0)
    #expect(try qtool.run(["backtest", "run", spec, "--dataset", "NOPE-1d"]).status == 66)
    let all = try jobs(qtool)
    #expect(all.map { $0["kind"] as! String } == ["backtest", "backtest", "import"], "newest first")
    let failed = try jobs(qtool, ["--since", "1h", "--status", "failed"])
    #expect(failed.count == 1)
    #expect((failed[0]["error"] as? [String: Any])?["code"] as? String == "dataset_not_found")
    let completed = try #require(try jobs(qtool, ["--kind", "backtest", "--status", "completed"]).first)
    let runID = (completed["result"] as? [String: Any])?["run_id"] as? String
    #expect(runID?.hasPrefix("r") == true)
    #expect(try qtool.run(["backtest", "show", runID!, "--json"]).status == 0)
    let text = try qtool.run(["jobs", "show", completed["id"] as! String])
    #expect(text.stdout.contains("status    completed"))
    #expect(text.stdout.contains("result    run_id \(runID!)"))
    #expect(try qtool.run(["jobs", "wait", completed["id"] as! String, "--json"]).status == 0)
    #expect(try qtool.run(["jobs", "show", "jnothere"]).status == 66)
    let pruned = try qtool.run(["jobs", "prune", "--older-than", "1h", "--json"])
    #expect(try jsonObject(pruned.stdout)["deleted"] as? Int == 0, "all are newer than an hour")
  }

  /// With --json, a failing command prints `{"error": …}` on stderr.
  @Test func jsonErrorObjects() throws {
    let (qtool, _) = try prepared()
    defer { qtool.cleanUp() }
    let usage = try qtool.run(["backtest", "run", "sma", "--bogus", "--json"])
    #expect(usage.status == 64)
    let usageError = try errorObject(usage.stderr)
    #expect(usageError["code"] as? String == "usage")
    #expect(usageError["category"] as? String == "usage")
    #expect((usageError["message"] as? String)?.contains("--bogus") == true)

    let bad = qtool.home.appendingPathComponent("bad.csv")
    try "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\nnot-a-date,1,2,0.5,1.5,10\n".write(to: bad, atomically: true, encoding: .utf8)
    let csv = try qtool.run(["data", "import", bad.path, "-s", "B", "-t", "1d", "--json"])
    #expect(csv.status == 65)
    let csvError = try errorObject(csv.stderr)
    #expect(csvError["category"] as? String == "invalid_input")
    #expect((csvError["details"] as? [String: Any])?["line"] as? Int == 3)
    #expect((csvError["code"] as? String)?.hasPrefix("csv_") == true)

    let missing = try qtool.run(["backtest", "run", "nosuch", "--json"])
    #expect(missing.status == 66)
    let missingError = try errorObject(missing.stderr)
    #expect(missingError["code"] as? String == "strategy_not_found")
    #expect(missingError["category"] as? String == "not_found")
    #expect((missingError["details"] as? [String: Any])?["strategy"] as? String == "nosuch")
    #expect((missingError["hint"] as? String)?.contains("qtool strategy list") == true)
    #expect(missing.stderr.hasPrefix("qtool: error: no strategy named 'nosuch'"))

    // Hints name flags on the command line (the server names fields).
    let gaps = qtool.home.appendingPathComponent("gaps.csv")
    try "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10\n2024-01-09,1,2,0.5,1.5,10\n"
      .write(to: gaps, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", gaps.path, "-s", "GAPPY", "-t", "1d", "--calendar", "24x7"]).status == 0)
    let gappy = try qtool.run(["backtest", "run", "sma", "--dataset", "GAPPY-1d", "--json"])
    #expect(gappy.status == 65)
    #expect(gappy.stderr.contains("or run anyway with --allow-gaps"))
    #expect(try errorObject(gappy.stderr)["code"] as? String == "dataset_has_gaps")
  }

  /// A registered strategy whose file was edited: the CLI registers the new version and says so;
  /// a pinned version runs as it was.
  @Test func changedSpecFileIsRegisteredExplicitly() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let text = try String(contentsOfFile: spec, encoding: .utf8)
    try text.replacingOccurrences(of: "fast: 10", with: "fast: 12").write(toFile: spec, atomically: true, encoding: .utf8)
    let run = try qtool.run(["backtest", "run", "sma", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("registered sma v2 from \(URL(fileURLWithPath: spec).standardizedFileURL.path) (the file changed)"))
    #expect((try jsonObject(run.stdout)["params"] as? [String: Double])?["fast"] == 12)
    let pinned = try qtool.run(["backtest", "run", "sma@1", "--json"])
    #expect((try jsonObject(pinned.stdout)["params"] as? [String: Double])?["fast"] == 10)
    #expect(try qtool.run(["backtest", "run", "sma@7"]).status == 66)
    #expect(try jsonArray(try qtool.run(["strategy", "versions", "sma", "--json"]).stdout).count == 2)
  }
}
