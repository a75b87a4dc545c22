import Foundation
import Testing

/// A real single-node Slurm cluster (`Tests/Cluster/slurm-up.sh`): grids submitted with
/// `--slurm` run as array jobs and merge into exactly the local grid; a cancelled task is the one
/// shard missing, and resume reruns only it. Run alone with `--filter SlurmGridTests`.
/// `make test` sets QTOOL_SLURM_TESTS=skip (and says so) only when it cannot start the cluster
/// and QTOOL_REQUIRE_SLURM is not set (`.ci/run` sets it).
@Suite(.serialized, .enabled(if: ProcessInfo.processInfo.environment["QTOOL_SLURM_TESTS"] != "skip"), .timeLimit(.minutes(5)))
struct SlurmGridTests {
  /// Starts the cluster under `directory`; the environment its clients need.
  static func startCluster(_ directory: URL) throws -> [String: String] {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let script = QtoolProcess.packageRoot.appendingPathComponent("Tests/Cluster/slurm-up.sh").path
    let started = try qtool.shell("'\(script)' start '\(directory.path)'")
    try #require(started.status == 0, "the Slurm test cluster did not start: \(started.stderr)")
    return ["SLURM_CONF": directory.appendingPathComponent("slurm.conf").path]
  }

  static func stopCluster(_ directory: URL) {
    let script = QtoolProcess.packageRoot.appendingPathComponent("Tests/Cluster/slurm-up.sh").path
    _ = try? QtoolProcess().shell("'\(script)' stop '\(directory.path)'")
  }

  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func rows(_ qtool: QtoolProcess, _ id: String) throws -> String? {
    let shown = try qtool.run(["backtest", "grid", "show", id, "--json", "--top", "1000000"])
    guard shown.status == 0 else { return nil }
    let rows = try json(shown.stdout)["rows"] as! [Any]
    return String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self)
  }

  /// Polls `check` every half second for at most `seconds`.
  func wait(_ seconds: Double, _ check: () throws -> Bool) rethrows -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
      if try check() { return true }
      Thread.sleep(forTimeInterval: 0.5)
    }
    return try check()
  }

  @Test func fourShardGridThroughSlurmEqualsTheLocalGridAndResumeRerunsOnlyTheCancelledShard() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let cluster = qtool.home.appendingPathComponent("slurm")
    let slurm = try Self.startCluster(cluster)
    defer { Self.stopCluster(cluster) }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec, "-q"]).status == 0)
    let axes = ["--grid", "fast=5..50:1", "--grid", "slow=20..120:4", "--where", "fast < slow"]
    let local = try qtool.run(["backtest", "grid", spec] + axes + ["--json"])
    #expect(local.status == 0, "\(local.stderr)")
    #expect(try json(local.stdout)["combinations"] as! Int >= 1_000)
    let localRows = try rows(qtool, try json(local.stdout)["id"] as! String)

    // 1. Four shards as a Slurm array, merged by the dependent step.
    let work = qtool.home.appendingPathComponent("work").path
    let submitted = try qtool.run(
      ["backtest", "grid", spec] + axes + ["--slurm", "--shards", "4", "--work-dir", work, "--json"], environment: slurm)
    #expect(submitted.status == 0, "\(submitted.stderr)")
    let report = try json(submitted.stdout)
    let id = report["grid_id"] as! String
    #expect(report["array_job"] as? String != nil && report["merge_job"] as? String != nil)
    #expect(
      try wait(120) { try rows(qtool, id) != nil },
      "the merge step stored the grid: \((try? String(contentsOfFile: work + "/logs/merge.out", encoding: .utf8)) ?? "")")
    #expect(try rows(qtool, id) == localRows, "results and ranking bit-identical to the local grid")
    let job = try qtool.run(["jobs", "show", report["job_id"] as! String, "--json"], environment: slurm)
    let tasks = (try json(job.stdout)["slurm"] as! [String: Any])["tasks"] as! [[String: Any]]
    #expect(tasks.map { $0["state"] as? String } == Array(repeating: "done", count: 4))

    // 2. Held, task 3 cancelled, the rest released: merge reports exactly shard 3 missing.
    let work2 = qtool.home.appendingPathComponent("work2").path
    let held = try qtool.run(
      ["backtest", "grid", spec] + axes + ["--rank", "sortino", "--slurm", "--shards", "4", "--work-dir", work2, "--sbatch-arg=--hold", "--json"],
      environment: slurm)
    #expect(held.status == 0, "\(held.stderr)")
    let second = try json(held.stdout)
    let (id2, array) = (second["grid_id"] as! String, second["array_job"] as! String)
    #expect(try qtool.shell("export SLURM_CONF='\(slurm["SLURM_CONF"]!)'; scancel \(array)_3 && scontrol release \(array)").status == 0)
    let shardStores = (1...4).map { "\(work2)/shards/shard-\($0).db" }
    #expect(
      try wait(120) {
        let status = try json(try qtool.run(["jobs", "show", second["job_id"] as! String, "--json"], environment: slurm).stdout)
        let states = ((status["slurm"] as! [String: Any])["tasks"] as! [[String: Any]]).map { $0["state"] as! String }
        return states == ["done", "done", "failed", "done"]
      }, "tasks 1, 2 and 4 ran; 3 was cancelled")
    let partial = try qtool.run(["backtest", "grid", "merge", id2] + shardStores.filter { FileManager.default.fileExists(atPath: $0) } + ["--json"])
    #expect(partial.status == 66)
    #expect((try errorObject(partial.stderr)["details"] as! [String: Any])["missing"] as? [Int] == [3])

    // 3. Resume resubmits only shard 3 (held again by the script's directive: release it).
    let resumed = try qtool.run(["backtest", "grid", "resume", id2, "--slurm", "--json"], environment: slurm)
    #expect(resumed.status == 0, "\(resumed.stderr)")
    let again = try json(resumed.stdout)
    #expect(again["submitted"] as? [Int] == [3])
    #expect(
      try qtool.shell(
        "export SLURM_CONF='\(slurm["SLURM_CONF"]!)'; scontrol release \(again["array_job"] as! String) \(again["merge_job"] as! String)"
      ).status == 0)
    #expect(try wait(120) { try rows(qtool, id2) != nil }, "\((try? String(contentsOfFile: work2 + "/logs/merge.out", encoding: .utf8)) ?? "")")
    let localSortino = try qtool.run(["backtest", "grid", spec] + axes + ["--rank", "sortino", "--json"])
    #expect(try rows(qtool, id2) == (try rows(qtool, try json(localSortino.stdout)["id"] as! String)))
  }

  @Test func fourShardWalkForwardThroughSlurmEqualsTheLocalWalkForward() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let cluster = qtool.home.appendingPathComponent("slurm")
    let slurm = try Self.startCluster(cluster)
    defer { Self.stopCluster(cluster) }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec, "-q"]).status == 0)
    let axes = ["--grid", "fast=5..30:5", "--grid", "slow=20..100:20", "--where", "fast < slow", "--walk-forward", "2y/1y"]
    let local = try qtool.run(["backtest", "grid", spec] + axes + ["--json"])
    #expect(local.status == 0, "\(local.stderr)")

    // Four tasks over 6 folds × the combinations: blocks that cut across folds.
    let work = qtool.home.appendingPathComponent("work").path
    let submitted = try qtool.run(
      ["backtest", "grid", spec] + axes + ["--slurm", "--shards", "4", "--work-dir", work, "--json"], environment: slurm)
    #expect(submitted.status == 0, "\(submitted.stderr)")
    let report = try json(submitted.stdout)
    #expect(report["walk_forward"] as? String == "2y/1y" && report["folds"] as? Int == 6)
    func merged() throws -> Bool {
      let status = try json(try qtool.run(["jobs", "show", report["job_id"] as! String, "--json"], environment: slurm).stdout)
      return (status["slurm"] as! [String: Any])["merge"] as? String == "done"
    }
    #expect(
      try wait(120) { try merged() && ((try? String(contentsOfFile: work + "/walk-forward.json", encoding: .utf8)) ?? "").hasSuffix("}\n") },
      "the merge step stored the walk-forward: \((try? String(contentsOfFile: work + "/logs/merge.out", encoding: .utf8)) ?? "")")
    let stitched = try String(contentsOfFile: work + "/walk-forward.json", encoding: .utf8)
    #expect(try json(stitched)["id"] as? String == report["grid_id"] as? String)
    let withoutMergeKeys = stitched.split(separator: "\n", omittingEmptySubsequences: false)
      .filter { !$0.hasPrefix("  \"id\" : ") && !$0.hasPrefix("  \"shards\" : ") }.joined(separator: "\n")
    #expect(withoutMergeKeys == local.stdout, "the walk-forward merged from Slurm's shards is the local one, byte for byte")
    let job = try qtool.run(["jobs", "show", report["job_id"] as! String, "--json"], environment: slurm)
    let tasks = (try json(job.stdout)["slurm"] as! [String: Any])["tasks"] as! [[String: Any]]
    #expect(tasks.map { $0["state"] as? String } == Array(repeating: "done", count: 4))
    // Every shard is done and merged: resume has nothing to do.
    let resumed = try qtool.run(["backtest", "grid", "resume", report["grid_id"] as! String, "--slurm"], environment: slurm)
    #expect(resumed.status == 73 && resumed.stderr.contains("already merged"), "\(resumed.stderr)")

    // Held, task 2 cancelled, the rest released: merge reports exactly shard 2 missing; resume
    // reruns only it, and the merge equals the local walk-forward.
    let work2 = qtool.home.appendingPathComponent("work2").path
    let held = try qtool.run(
      ["backtest", "grid", spec] + axes + ["--rank", "sortino", "--slurm", "--shards", "4", "--work-dir", work2, "--sbatch-arg=--hold", "--json"],
      environment: slurm)
    #expect(held.status == 0, "\(held.stderr)")
    let second = try json(held.stdout)
    let (id2, array) = (second["grid_id"] as! String, second["array_job"] as! String)
    #expect(try qtool.shell("export SLURM_CONF='\(slurm["SLURM_CONF"]!)'; scancel \(array)_2 && scontrol release \(array)").status == 0)
    #expect(
      try wait(120) {
        let status = try json(try qtool.run(["jobs", "show", second["job_id"] as! String, "--json"], environment: slurm).stdout)
        return ((status["slurm"] as! [String: Any])["tasks"] as! [[String: Any]]).map { $0["state"] as! String } == [
          "done", "failed", "done", "done",
        ]
      }, "tasks 1, 3 and 4 ran; 2 was cancelled")
    let present = (1...4).map { "\(work2)/shards/shard-\($0).db" }.filter { FileManager.default.fileExists(atPath: $0) }
    let partial = try qtool.run(["backtest", "grid", "merge", id2] + present + ["--json"])
    #expect(partial.status == 66)
    #expect((try errorObject(partial.stderr)["details"] as! [String: Any])["missing"] as? [Int] == [2])
    let again = try json(try qtool.run(["backtest", "grid", "resume", id2, "--slurm", "--json"], environment: slurm).stdout)
    #expect(again["submitted"] as? [Int] == [2])
    #expect(
      try qtool.shell(
        "export SLURM_CONF='\(slurm["SLURM_CONF"]!)'; scontrol release \(again["array_job"] as! String) \(again["merge_job"] as! String)"
      ).status == 0)
    #expect(
      try wait(120) { ((try? String(contentsOfFile: work2 + "/walk-forward.json", encoding: .utf8)) ?? "").hasSuffix("}\n") },
      "\((try? String(contentsOfFile: work2 + "/logs/merge.out", encoding: .utf8)) ?? "")")
    let localSortino = try qtool.run(["backtest", "grid", spec] + axes + ["--rank", "sortino", "--json"])
    let resumedReport = try String(contentsOfFile: work2 + "/walk-forward.json", encoding: .utf8).split(
      separator: "\n", omittingEmptySubsequences: false
    )
    .filter { !$0.hasPrefix("  \"id\" : ") && !$0.hasPrefix("  \"shards\" : ") }.joined(separator: "\n")
    #expect(resumedReport == localSortino.stdout)
  }
}
