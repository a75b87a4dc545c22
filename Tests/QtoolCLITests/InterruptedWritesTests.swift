import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Ctrl-C during the writes that used to ignore it: `data snapshot` of a large dataset and the
/// HTML report of a run with many trades. Either stops with 130 and leaves no file, finished
/// or temporary, behind.
@Suite(.timeLimit(.minutes(5))) struct InterruptedWritesTests {
  /// Files in `directory` whose name contains `name` (the output and its temporaries).
  func leftovers(_ directory: URL, _ name: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(name) }
  }

  @Test func interruptedSnapshotLeavesNoFile() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    // Three million 1-minute bars: writing them takes the snapshot well over a second.
    let csv = qtool.home.appendingPathComponent("big.csv").path
    let generated = try qtool.shell(
      "awk 'BEGIN { print \"timestamp,open,high,low,close,volume\"; for (i = 0; i < 3000000; i++) printf \"%d,100.5,101.25,99.75,100.125,%d\\n\", 1577836800 + i * 60, i % 1000 }' > '\(csv)'"
    )
    #expect(generated.status == 0, "\(generated.stderr)")
    #expect(try qtool.run(["data", "import", csv, "-s", "RW", "-t", "1m", "-q"]).status == 0)
    let directory = qtool.home.appendingPathComponent("out")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let output = directory.appendingPathComponent("rw.snapshot.db").path
    let running = try BackgroundQtool(qtool, ["data", "snapshot", "RW-1m", "-o", output])
    // Busy once its temporary store exists and is being filled (its rollback journal is open).
    let deadline = Date().addingTimeInterval(120)
    var busy = false
    while Date() < deadline, running.process.isRunning {
      if try leftovers(directory, "rw.snapshot.db").contains(where: { $0.hasSuffix("-journal") }) {
        busy = true
        break
      }
      usleep(2_000)
    }
    #expect(busy, "the snapshot never started writing: \(running.stderr)")
    running.signal(SIGINT)
    #expect(running.wait() == 130, "\(running.stderr)")
    #expect(running.stderr.contains("interrupted"), "\(running.stderr)")
    #expect(try leftovers(directory, "rw.snapshot.db") == [], "nothing of the snapshot is left")
  }

  @Test func interruptedReportRenderingLeavesNoFile() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("sma.yaml").path
    #expect(try qtool.run(["strategy", "new", "sma", "--symbol", "GOOG", "-o", spec, "-q"]).status == 0)
    let directory = qtool.home.appendingPathComponent("reports")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    // fast=2 slow=3 trades 376 times: the report stops in its trade table, past the first 256.
    for command in [["backtest", "run", spec, "--param", "fast=2", "--param", "slow=3", "--report"]] {
      let report = directory.appendingPathComponent("run.html").path
      let running = try BackgroundQtool(qtool, command + [report], environment: ["QTOOL_TEST_PAUSE": "report.trades:1"])
      #expect(running.waitForStderr("qtool-test: paused at report.trades:1"), "\(running.stderr)")
      running.signal(SIGINT)
      #expect(running.wait() == 130, "\(running.stderr)")
      #expect(try leftovers(directory, "run.html") == [])
      // "Nothing half-done was kept": nor the run whose report was interrupted.
      let runs = try qtool.run(["backtest", "list", "--json"])
      #expect(runs.status == 0 && !runs.stdout.contains("\"id\""), "\(runs.stdout)")
    }
    // The same for a stored run's report.
    let run = try qtool.run(["backtest", "run", spec, "--param", "fast=2", "--param", "slow=3", "--json"])
    let id = try #require(try jsonObject(run.stdout)["id"] as? String)
    let report = directory.appendingPathComponent("show.html").path
    let running = try BackgroundQtool(
      qtool, ["backtest", "show", id, "--report", report], environment: ["QTOOL_TEST_PAUSE": "report.trades:1"])
    #expect(running.waitForStderr("qtool-test: paused at report.trades:1"), "\(running.stderr)")
    running.signal(SIGINT)
    #expect(running.wait() == 130, "\(running.stderr)")
    #expect(try leftovers(directory, "show.html") == [])
    // Uninterrupted, it is written.
    #expect(try qtool.run(["backtest", "show", id, "--report", report, "-q"]).status == 0)
    #expect(FileManager.default.fileExists(atPath: report))
  }
}
