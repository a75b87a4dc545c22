import Foundation
import Testing

/// A walk-forward split into shards of (fold × combination) work items, each into its own
/// store, merges into exactly the report a local walk-forward prints (issue #16).
@Suite(.timeLimit(.minutes(5))) struct WalkForwardShardTests {
  static let axes = ["--grid", "fast=5..30:5", "--grid", "slow=20..100:20", "--where", "fast < slow", "--walk-forward", "2y/1y"]

  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func prepared() throws -> (QtoolProcess, spec: String, snapshot: String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec, "-q"]).status == 0)
    let snapshot = qtool.home.appendingPathComponent("goog.snapshot.db").path
    #expect(try qtool.run(["data", "snapshot", "GOOG-1d", "-o", snapshot, "-q"]).status == 0)
    return (qtool, spec, snapshot)
  }

  func store(_ qtool: QtoolProcess, _ k: Int) -> String { qtool.home.appendingPathComponent("wf-shard-\(k).db").path }

  /// A merged report's JSON less the lines only a merge has (its id and number of shards).
  static func withoutMergeKeys(_ text: String) -> String {
    text.split(separator: "\n", omittingEmptySubsequences: false)
      .filter { !$0.hasPrefix("  \"id\" : ") && !$0.hasPrefix("  \"shards\" : ") }.joined(separator: "\n")
  }

  @Test func threeShardsMergeIntoTheLocalWalkForwardByteForByte() throws {
    let (qtool, spec, snapshot) = try prepared()
    defer { qtool.cleanUp() }
    let local = try qtool.run(["backtest", "grid", spec] + Self.axes + ["--json"])
    #expect(local.status == 0, "\(local.stderr)")
    let folds = (try json(local.stdout)["windows"] as! [Any]).count
    let combinations = try json(local.stdout)["combinations"] as! Int
    #expect(folds >= 3)

    var id = ""
    var blocks: [(Int, Int)] = []
    for k in 1...3 {
      let shard = try qtool.run(
        ["--db", store(qtool, k), "backtest", "grid", spec] + Self.axes + ["--shard", "\(k)/3", "--snapshot", snapshot, "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      let report = try json(shard.stdout)
      id = report["grid_id"] as! String
      #expect(report["folds"] as? Int == folds && report["combinations"] as? Int == combinations)
      blocks.append((report["first_item"] as! Int, report["end_item"] as! Int))
    }
    // Contiguous, count-balanced blocks of the fold-major work items.
    let items = folds * combinations
    #expect(blocks.map(\.0) == [0, blocks[0].1, blocks[1].1] && blocks[2].1 == items)
    #expect(blocks.allSatisfy { $0.1 - $0.0 == items / 3 || $0.1 - $0.0 == items / 3 + 1 })
    // A shard run again replaces what it wrote.
    #expect(
      try qtool.run(["--db", store(qtool, 2), "backtest", "grid", spec] + Self.axes + ["--shard", "2/3", "--snapshot", snapshot, "-q"]).status == 0)

    let merged = try qtool.run(["backtest", "grid", "merge", id] + (1...3).map { store(qtool, $0) } + ["--json"])
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(try json(merged.stdout)["id"] as? String == id && json(merged.stdout)["shards"] as? Int == 3)
    #expect(Self.withoutMergeKeys(merged.stdout) == local.stdout, "the merged report is the local walk-forward's, byte for byte")

    // The table a person reads is the local one's too.
    let localTable = try qtool.run(["backtest", "grid", spec] + Self.axes)
    let again = try qtool.run(["backtest", "grid", "merge", id] + (1...3).map { store(qtool, $0) })
    #expect(again.status == 73 && again.stderr.contains("already merged"), "\(again.stderr)")
    let other = try qtool.run(
      ["--db", qtool.home.appendingPathComponent("other.db").path, "backtest", "grid", "merge", id] + (1...3).map { store(qtool, $0) })
    #expect(other.status == 0, "\(other.stderr)")
    #expect(other.stdout.hasPrefix(localTable.stdout), "\(other.stdout)\n---\n\(localTable.stdout)")
  }

  /// `backtest grid show ID` of a merged walk-forward prints what the merge printed (table and
  /// JSON, byte for byte), by a prefix of its id too, and `backtest grid list` lists it.
  @Test func aMergedWalkForwardIsShownAndListedAsItsMergePrintedIt() throws {
    let (qtool, spec, snapshot) = try prepared()
    defer { qtool.cleanUp() }
    var id = ""
    for k in 1...2 {
      let shard = try qtool.run(
        ["--db", store(qtool, k), "backtest", "grid", spec] + Self.axes + ["--shard", "\(k)/2", "--snapshot", snapshot, "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
    }
    // A plain grid in the same store: both are listed, and show tells them apart.
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "slow=50", "--json"])
    #expect(grid.status == 0, "\(grid.stderr)")
    let gridID = try json(grid.stdout)["id"] as! String

    let merged = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2)])
    #expect(merged.status == 0, "\(merged.stderr)")
    let shown = try qtool.run(["backtest", "grid", "show", id])
    #expect(shown.status == 0, "\(shown.stderr)")
    #expect(shown.stdout == merged.stdout, "\(shown.stdout)\n---\n\(merged.stdout)")
    #expect(shown.stdout.contains("fast") && shown.stdout.contains("walk-forward \(id): "), "the axes' columns and the merge's line")

    // The JSON is the merge's: merging again elsewhere prints it, show prints it from the store.
    let mergedJSON = try qtool.run(
      ["--db", qtool.home.appendingPathComponent("other.db").path, "backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2), "--json"])
    #expect(mergedJSON.status == 0, "\(mergedJSON.stderr)")
    let shownJSON = try qtool.run(["backtest", "grid", "show", String(id.prefix(5)), "--json"])
    #expect(shownJSON.status == 0, "\(shownJSON.stderr)")
    #expect(shownJSON.stdout == mergedJSON.stdout, "\(shownJSON.stdout)\n---\n\(mergedJSON.stdout)")

    // A walk-forward has folds, not rows to sort or filter.
    let csv = try qtool.run(["backtest", "grid", "show", id, "--csv"])
    #expect(csv.status == 64 && csv.stderr.contains("merged walk-forward"), "\(csv.stderr)")
    let open = try qtool.run(["backtest", "grid", "open", id, "1"])
    #expect(open.status == 64 && open.stderr.contains("is a merged walk-forward"), "\(open.stderr)")
    // The grid is still shown as a grid.
    #expect(try qtool.run(["backtest", "grid", "show", gridID, "--csv"]).stdout.hasPrefix("row,fast,slow,"))

    let list = try qtool.run(["backtest", "grid", "list", "--json"])
    #expect(list.status == 0, "\(list.stderr)")
    let listed = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [[String: Any]]
    #expect(Set(listed.map { $0["id"] as! String }) == [id, gridID])
    let walkForward = listed.first { $0["id"] as? String == id }!
    let local = try json(try qtool.run(["backtest", "grid", spec] + Self.axes + ["--json"]).stdout)
    #expect(walkForward["walk_forward"] as? String == "2y/1y" && walkForward["combinations"] as? Int == local["combinations"] as? Int)
    #expect((walkForward["axes"] as! [[String: Any]]).map { $0["name"] as! String } == ["fast", "slow"])
    #expect(listed.first { $0["id"] as? String == gridID }!["walk_forward"] == nil, "a grid has no walk_forward")
    let table = try qtool.run(["backtest", "grid", "list"])
    #expect(table.stdout.contains("WALK-FORWARD") && table.stdout.contains("2y/1y"), "\(table.stdout)")
    #expect(table.stdout.contains("fast(6) slow(5)"), "\(table.stdout)")
  }

  @Test func oneFoldPerShardAndAutoIndices() throws {
    let (qtool, spec, snapshot) = try prepared()
    defer { qtool.cleanUp() }
    let local = try qtool.run(["backtest", "grid", spec] + Self.axes + ["--rank", "total_return", "--json"])
    #expect(local.status == 0, "\(local.stderr)")
    let folds = (try json(local.stdout)["windows"] as! [Any]).count
    let combinations = try json(local.stdout)["combinations"] as! Int
    var id = ""
    for k in 1...folds {
      // Kubernetes' 0-based index; with as many shards as folds, each task is one fold.
      let shard = try qtool.run(
        ["--db", store(qtool, k), "backtest", "grid", spec] + Self.axes + [
          "--rank", "total_return", "--shard", "auto", "--shards", "\(folds)", "--snapshot", snapshot, "--json",
        ],
        environment: ["JOB_COMPLETION_INDEX": "\(k - 1)"])
      #expect(shard.status == 0, "\(shard.stderr)")
      let report = try json(shard.stdout)
      id = report["grid_id"] as! String
      #expect(report["first_item"] as? Int == (k - 1) * combinations && report["end_item"] as? Int == k * combinations, "shard \(k) is fold \(k)")
    }
    let merged = try qtool.run(["backtest", "grid", "merge", id] + (1...folds).map { store(qtool, $0) } + ["--json"])
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(Self.withoutMergeKeys(merged.stdout) == local.stdout)
  }

  @Test func missingDuplicateAndDisagreeingShardsAreRefused() throws {
    let (qtool, spec, snapshot) = try prepared()
    defer { qtool.cleanUp() }
    var id = ""
    for k in [1, 2] {
      let shard = try qtool.run(
        ["--db", store(qtool, k), "backtest", "grid", spec] + Self.axes + ["--shard", "\(k)/3", "--snapshot", snapshot, "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
    }
    let missing = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2), "--json"])
    #expect(missing.status == 66, "\(missing.stderr)")
    let error = try errorObject(missing.stderr)
    #expect(error["code"] as? String == "grid_shards_missing")
    #expect((error["details"] as! [String: Any])["missing"] as? [Int] == [3], "exactly shard 3 is missing")
    #expect((error["hint"] as? String ?? "").contains("--walk-forward 2y/1y"), "\(error)")

    // The same shard in two stores.
    let copy = qtool.home.appendingPathComponent("copy.db").path
    try FileManager.default.copyItem(atPath: store(qtool, 1), toPath: copy)
    let twice = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), copy, store(qtool, 2), "--json"])
    #expect(try twice.status == 65 && (errorObject(twice.stderr)["code"] as? String) == "grid_shard_duplicate", "\(twice.stderr)")

    // Shard 3 from an edited spec: another spec version, refused naming both shards.
    let edited = qtool.home.appendingPathComponent("s2.yaml").path
    try (try String(contentsOfFile: spec, encoding: .utf8)).replacingOccurrences(of: "commission: 0.001", with: "commission: 0.002")
      .write(toFile: edited, atomically: true, encoding: .utf8)
    #expect(
      try qtool.run(["--db", store(qtool, 3), "backtest", "grid", edited] + Self.axes + ["--shard", "3/3", "--snapshot", snapshot, "-q"]).status == 0)
    let disagree = try qtool.run(["backtest", "grid", "merge", id] + (1...3).map { store(qtool, $0) } + ["--json"])
    #expect(disagree.status == 65, "\(disagree.stderr)")
    let refused = try errorObject(disagree.stderr)
    #expect(refused["code"] as? String == "grid_shards_disagree")
    let message = refused["message"] as! String
    #expect(message.contains("spec versions") && message.contains("shard 1") && message.contains("shard 3"), "\(message)")

    // Shard 3 without the snapshot (bars from its own store): another snapshot, refused.
    let own = store(qtool, 4)
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["--db", own, "data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    #expect(try qtool.run(["--db", own, "backtest", "grid", spec] + Self.axes + ["--shard", "3/3", "-q"]).status == 0)
    let noSnapshot = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2), own, "--json"])
    #expect(try noSnapshot.status == 65 && (errorObject(noSnapshot.stderr)["message"] as! String).contains("snapshots"), "\(noSnapshot.stderr)")

    // Another --walk-forward is another walk-forward: its shards are not this one's.
    let otherWindows = try qtool.run(
      ["--db", store(qtool, 5), "backtest", "grid", spec] + Self.axes.dropLast(2) + [
        "--walk-forward", "3y/1y", "--shard", "3/3", "--snapshot", snapshot, "--json",
      ])
    #expect(otherWindows.status == 0, "\(otherWindows.stderr)")
    #expect(try json(otherWindows.stdout)["grid_id"] as? String != id)
    let wrongStore = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2), store(qtool, 5)])
    #expect(wrongStore.status == 66 && wrongStore.stderr.contains("holds no shard of walk-forward \(id)"), "\(wrongStore.stderr)")
  }

  @Test func slurmDryRunPrintsAWalkForwardArray() throws {
    let (qtool, spec, _) = try prepared()
    defer { qtool.cleanUp() }
    let work = qtool.home.appendingPathComponent("w").path
    let dry = try qtool.run(
      ["backtest", "grid", spec] + Self.axes + ["--slurm", "--shards", "4", "--work-dir", work, "--dry-run"], environment: ["PATH": "/nonexistent"])
    #expect(dry.status == 0, "\(dry.stderr)")
    for line in [
      "#SBATCH --array=1-4", "'--walk-forward' '2y/1y'", "--shard auto --shards 4", "backtest grid merge", "--json > '\(work)/walk-forward.json'",
      "walk-forward 2y/1y, 6 folds × ",
    ] {
      #expect(dry.stdout.contains(line), "\(line) in \(dry.stdout)")
    }
    #expect(!FileManager.default.fileExists(atPath: work), "a dry run writes nothing")
    let plan = try json(
      try qtool.run(["backtest", "grid", spec] + Self.axes + ["--slurm", "--shards", "4", "--work-dir", work, "--dry-run", "--json"]).stdout)
    #expect(plan["walk_forward"] as? String == "2y/1y" && plan["folds"] as? Int == 6)
    // The id is the shards' own: shard 1 of 4 reports it.
    let shard = try qtool.run(["backtest", "grid", spec] + Self.axes + ["--shard", "1/4", "--json"])
    #expect(shard.status == 0, "\(shard.stderr)")
    #expect(try json(shard.stdout)["grid_id"] as? String == plan["grid_id"] as? String)
    let tooShort = try qtool.run(
      ["backtest", "grid", spec] + Self.axes.dropLast(2) + ["--walk-forward", "20y/1y", "--slurm", "--shards", "2", "--dry-run"])
    #expect(tooShort.status == 64 && tooShort.stderr.contains("shorter than one train + test window"), "\(tooShort.stderr)")
  }

  /// A merge checks every work item it takes from a shard store, as a grid merge does: its
  /// params must be its combination's and its score the ranked metric of its in-sample
  /// metrics. An edited store is refused (65) naming the store and the item; nothing is merged.
  @Test func mergeRefusesTamperedWorkItems() throws {
    let (qtool, spec, snapshot) = try prepared()
    defer { qtool.cleanUp() }
    var id = ""
    var last = 0
    for k in 1...2 {
      let shard = try qtool.run(
        ["--db", store(qtool, k), "backtest", "grid", spec] + Self.axes + ["--shard", "\(k)/2", "--snapshot", snapshot, "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
      last = try json(shard.stdout)["end_item"] as! Int - 1
    }
    let pristine = qtool.home.appendingPathComponent("pristine.db").path
    try FileManager.default.copyItem(atPath: store(qtool, 2), toPath: pristine)
    func sqlite(_ sql: String) throws {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
      process.arguments = [store(qtool, 2), sql]
      try process.run()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0, "sqlite3 \(sql)")
    }
    func restore() throws {
      try FileManager.default.removeItem(atPath: store(qtool, 2))
      try FileManager.default.copyItem(atPath: pristine, toPath: store(qtool, 2))
    }
    func merge() throws -> (status: Int32, error: [String: Any]) {
      let result = try qtool.run(["backtest", "grid", "merge", id, store(qtool, 1), store(qtool, 2), "--json"])
      return (result.status, result.status == 0 ? [:] : try errorObject(result.stderr))
    }
    // The last item given the params of the shard's first (another combination).
    try sqlite(
      "UPDATE walk_forward_shard_results SET params = (SELECT params FROM walk_forward_shard_results ORDER BY item LIMIT 1) WHERE item = \(last)")
    var refused = try merge()
    #expect(refused.status == 65)
    #expect(refused.error["code"] as? String == "grid_shard_mismatch")
    var message = refused.error["message"] as? String ?? ""
    #expect(message.contains(store(qtool, 2)) && message.contains("work item \(last)") && message.contains("params"), "\(message)")
    #expect((refused.error["details"] as? [String: Any])?["item"] as? Int == last)
    #expect(try qtool.run(["backtest", "grid", "show", id]).status == 66, "nothing was merged")
    // A score that is not its in-sample sharpe.
    try restore()
    try sqlite("UPDATE walk_forward_shard_results SET score = 42.5 WHERE item = \(last)")
    refused = try merge()
    #expect(refused.status == 65)
    message = refused.error["message"] as? String ?? ""
    #expect(message.contains(store(qtool, 2)) && message.contains("work item \(last)") && message.contains("score 42.5"), "\(message)")
    // The in-sample metric edited instead: the same refusal.
    try restore()
    try sqlite("UPDATE walk_forward_shard_results SET in_sample = json_set(in_sample, '$.sharpe', 9.75) WHERE item = \(last)")
    refused = try merge()
    #expect(refused.status == 65 && (refused.error["message"] as? String ?? "").contains("work item \(last)"), "\(refused.error)")
    // The out-of-sample return, which is what the report is for, and which no check can
    // rebuild without the bars: caught by the hash of the results the shard wrote.
    try restore()
    try sqlite("UPDATE walk_forward_shard_results SET out_of_sample = json_set(out_of_sample, '$.total_return', 5.0) WHERE item = \(last)")
    refused = try merge()
    #expect(refused.status == 65 && refused.error["code"] as? String == "grid_shard_mismatch", "\(refused.error)")
    #expect((refused.error["message"] as? String ?? "").contains(store(qtool, 2)), "\(refused.error)")
    // Untouched, it merges.
    try restore()
    #expect(try merge().status == 0)
  }
}
