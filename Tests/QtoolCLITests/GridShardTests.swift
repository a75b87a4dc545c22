import Foundation
import Testing

/// Grids split into shards (`--shard K/N`, `--shard auto`), each into its own store, read bars
/// from a snapshot, and merge into exactly the grid one process gives (issue #16).
@Suite(.timeLimit(.minutes(5))) struct GridShardTests {
  static let axes = ["--grid", "fast=5..50:1", "--grid", "slow=20..120:4", "--where", "fast < slow"]

  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  /// A home with GOOG imported and a spec file.
  func prepared() throws -> (QtoolProcess, spec: String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec, "-q"]).status == 0)
    return (qtool, spec)
  }

  /// Every row of a stored grid, exactly as stored (params, metrics, place in the ranking).
  func rows(_ qtool: QtoolProcess, _ id: String) throws -> String {
    let shown = try qtool.run(["backtest", "grid", "show", id, "--json", "--top", "1000000"])
    #expect(shown.status == 0, "\(shown.stderr)")
    let rows = try json(shown.stdout)["rows"] as! [Any]
    return String(decoding: try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]), as: UTF8.self)
  }

  func shardStore(_ qtool: QtoolProcess, _ k: Int) -> String { qtool.home.appendingPathComponent("shard-\(k).db").path }

  /// A snapshot of GOOG-1d in the home, for shards whose own stores hold no bars.
  func snapshot(_ qtool: QtoolProcess) throws -> String {
    let path = qtool.home.appendingPathComponent("goog.snapshot.db").path
    if !FileManager.default.fileExists(atPath: path) { #expect(try qtool.run(["data", "snapshot", "GOOG-1d", "-o", path, "-q"]).status == 0) }
    return path
  }

  @Test func fourShardsMergeIntoTheLocalGridBitForBit() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let local = try qtool.run(["backtest", "grid", spec] + Self.axes + ["--json"])
    #expect(local.status == 0, "\(local.stderr)")
    let localID = try json(local.stdout)["id"] as! String
    #expect(try json(local.stdout)["combinations"] as! Int >= 1_000)

    let snapshot = qtool.home.appendingPathComponent("goog.snapshot.db").path
    let written = try qtool.run(["data", "snapshot", "GOOG-1d", "-o", snapshot, "--json"])
    #expect(written.status == 0, "\(written.stderr)")
    let hash = try json(written.stdout)["hash"] as! String
    let mode = try FileManager.default.attributesOfItem(atPath: snapshot)[.posixPermissions] as! Int
    #expect(mode == 0o444, "a snapshot is read-only")

    var gridID = ""
    var ranges: [(Int, Int)] = []
    for k in 1...4 {
      let shard = try qtool.run(
        ["--db", shardStore(qtool, k), "backtest", "grid", spec] + Self.axes
          + ["--shard", "\(k)/4", "--snapshot", snapshot, "--snapshot-hash", hash, "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      let report = try json(shard.stdout)
      gridID = report["grid_id"] as! String
      ranges.append((report["first"] as! Int, report["end"] as! Int))
      #expect(report["snapshot_hash"] as? String == hash)
    }
    // Contiguous, count-balanced blocks of the ordered list.
    let total = try json(local.stdout)["combinations"] as! Int
    #expect(ranges.map(\.0) == [0, ranges[0].1, ranges[1].1, ranges[2].1] && ranges[3].1 == total)
    #expect(Set(ranges.map { $0.1 - $0.0 }).count <= 2)

    // A shard run again (after a crash, a requeue) replaces its rows: nothing twice.
    #expect(
      try qtool.run(["--db", shardStore(qtool, 2), "backtest", "grid", spec] + Self.axes + ["--shard", "2/4", "--snapshot", snapshot, "-q"]).status
        == 0)

    let merged = try qtool.run(["backtest", "grid", "merge", gridID] + (1...4).map { shardStore(qtool, $0) } + ["--json"])
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(try json(merged.stdout)["combinations"] as? Int == (try json(local.stdout)["combinations"] as! Int))
    #expect(try rows(qtool, gridID) == (try rows(qtool, localID)), "rows, metrics and ranking equal the local grid's")
    // The printed ranking is the one a local grid prints.
    let localTop = ((try json(local.stdout)["results"] as! [[String: Any]]).map { $0["params"] as! [String: Double] })
    let mergedTop = ((try json(merged.stdout)["results"] as! [[String: Any]]).map { $0["params"] as! [String: Double] })
    #expect(localTop == mergedTop)

    let again = try qtool.run(["backtest", "grid", "merge", gridID] + (1...4).map { shardStore(qtool, $0) })
    #expect(again.status == 73 && again.stderr.contains("already stored"), "\(again.stderr)")
  }

  @Test func mergeListsMissingShardsAndRefusesShardsThatDisagree() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let small = ["--grid", "fast=5..20:5", "--grid", "slow=30,60", "--snapshot", try snapshot(qtool)]
    var id = ""
    for k in [1, 2, 4] {
      let shard = try qtool.run(["--db", shardStore(qtool, k), "backtest", "grid", spec] + small + ["--shard", "\(k)/4", "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
    }
    let missing = try qtool.run(["backtest", "grid", "merge", id] + [1, 2, 4].map { shardStore(qtool, $0) } + ["--json"])
    #expect(missing.status == 66)
    let error = try errorObject(missing.stderr)
    #expect(error["code"] as? String == "grid_shards_missing")
    #expect((error["details"] as! [String: Any])["missing"] as? [Int] == [3], "exactly shard 3 is missing")

    // Shard 3 run from an edited spec: another spec version, refused naming both.
    let edited = qtool.home.appendingPathComponent("s2.yaml").path
    try (try String(contentsOfFile: spec, encoding: .utf8)).replacingOccurrences(of: "commission: 0.001", with: "commission: 0.002")
      .write(toFile: edited, atomically: true, encoding: .utf8)
    #expect(try String(contentsOfFile: edited, encoding: .utf8) != (try String(contentsOfFile: spec, encoding: .utf8)), "the spec has a commission")
    #expect(try qtool.run(["--db", shardStore(qtool, 3), "backtest", "grid", edited] + small + ["--shard", "3/4", "-q"]).status == 0)
    let disagree = try qtool.run(["backtest", "grid", "merge", id] + (1...4).map { shardStore(qtool, $0) } + ["--json"])
    #expect(disagree.status == 65, "\(disagree.stderr)")
    let refused = try errorObject(disagree.stderr)
    #expect(refused["code"] as? String == "grid_shards_disagree")
    let message = refused["message"] as! String
    #expect(message.contains("spec versions") && message.contains("shard 1") && message.contains("shard 3"), "\(message)")
    #expect(message.contains(shardStore(qtool, 1)) && message.contains(shardStore(qtool, 3)))

    // A store that holds another grid's shards is named.
    let other = try qtool.run(["backtest", "grid", "merge", "gdeadbeef0", shardStore(qtool, 1)])
    #expect(other.status == 66 && other.stderr.contains("holds no shard of grid gdeadbeef0") && other.stderr.contains(id))
  }

  /// A shard store edited after the shard ran (by hand, or damaged) is refused, naming the
  /// store and the combination: its params must be the grid's combination at their place, its
  /// score the ranked metric its metrics hold, its recorded grid the grid's own.
  @Test func mergeRefusesTamperedShardResults() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let small = ["--grid", "fast=5..20:5", "--grid", "slow=30,60", "--where", "fast < 20", "--snapshot", try snapshot(qtool)]
    var id = ""
    for k in 1...2 {
      let shard = try qtool.run(["--db", shardStore(qtool, k), "backtest", "grid", spec] + small + ["--shard", "\(k)/2", "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
    }
    let pristine = qtool.home.appendingPathComponent("pristine.db").path
    try FileManager.default.copyItem(atPath: shardStore(qtool, 2), toPath: pristine)
    func sqlite(_ path: String, _ sql: String) throws {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
      process.arguments = [path, sql]
      try process.run()
      process.waitUntilExit()
      #expect(process.terminationStatus == 0, "sqlite3 \(sql)")
    }
    func restore() throws {
      try FileManager.default.removeItem(atPath: shardStore(qtool, 2))
      try FileManager.default.copyItem(atPath: pristine, toPath: shardStore(qtool, 2))
    }
    func merge() throws -> (status: Int32, error: [String: Any]) {
      let result = try qtool.run(["backtest", "grid", "merge", id, shardStore(qtool, 1), shardStore(qtool, 2), "--json"])
      return (result.status, result.status == 0 ? [:] : try errorObject(result.stderr))
    }
    // Six combinations (fast 5, 10, 15 × slow 30, 60); shard 2 holds 3, 4 and 5.
    // Params swapped for another combination's.
    try sqlite(shardStore(qtool, 2), "UPDATE grid_shard_results SET params = '{\"fast\":5,\"slow\":30}' WHERE combination = 4")
    var refused = try merge()
    #expect(refused.status == 65)
    #expect(refused.error["code"] as? String == "grid_shard_mismatch")
    var message = refused.error["message"] as? String ?? ""
    #expect(message.contains(shardStore(qtool, 2)) && message.contains("combination 4") && message.contains("{\"fast\":15,\"slow\":30}"), "\(message)")
    #expect((refused.error["details"] as? [String: Any])?["combination"] as? Int == 4)
    #expect(try qtool.run(["backtest", "grid", "show", id]).status == 66, "nothing was merged")

    // A score that is not the ranked metric (sharpe) its metrics hold.
    try restore()
    try sqlite(shardStore(qtool, 2), "UPDATE grid_shard_results SET score = 42.5 WHERE combination = 5")
    refused = try merge()
    #expect(refused.status == 65)
    message = refused.error["message"] as? String ?? ""
    #expect(message.contains(shardStore(qtool, 2)) && message.contains("combination 5") && message.contains("score 42.5"), "\(message)")
    // The metric edited instead of the score: the same refusal.
    try restore()
    try sqlite(
      shardStore(qtool, 2), "UPDATE grid_shard_results SET metrics = json_set(metrics, '$.sharpe', 9.75) WHERE combination = 3")
    refused = try merge()
    #expect(refused.status == 65 && (refused.error["message"] as? String ?? "").contains("combination 3"), "\(refused.error)")
    // The metric made null (how JSON writes an infinity) with an infinite score, to rank first:
    // nothing else in its metrics says the sharpe is infinite.
    for score in ["9e999", "-9e999"] {
      try restore()
      try sqlite(
        shardStore(qtool, 2), "UPDATE grid_shard_results SET metrics = json_set(metrics, '$.sharpe', json('null')), score = \(score) WHERE combination = 3")
      refused = try merge()
      #expect(refused.status == 65 && (refused.error["message"] as? String ?? "").contains("combination 3"), "\(score): \(refused.error)")
    }
    // A score that is not a number at all: the store is damaged, said as such, not a crash.
    for score in ["'abc'", "x'00'"] {
      try restore()
      try sqlite(shardStore(qtool, 2), "UPDATE grid_shard_results SET score = \(score) WHERE combination = 4")
      refused = try merge()
      #expect(refused.status == 65 && refused.error["code"] as? String == "store_damaged", "\(score): \(refused.error)")
      #expect((refused.error["message"] as? String ?? "").contains(shardStore(qtool, 2)), "\(refused.error)")
    }
    try restore()
    try sqlite(shardStore(qtool, 2), "UPDATE grid_shards SET shards = 'two'")
    refused = try merge()
    #expect(refused.status == 65 && refused.error["code"] as? String == "store_damaged", "\(refused.error)")

    // The recorded grid edited in both stores, so they agree: it is not this grid's.
    try restore()
    for k in 1...2 {
      try sqlite(shardStore(qtool, k), "UPDATE grid_shards SET definition = replace(definition, '\"where\":\"fast < 20\"', '\"where\":\"fast < 25\"')")
    }
    refused = try merge()
    #expect(refused.status == 65 && refused.error["code"] as? String == "grid_shard_mismatch", "\(refused.error)")
    #expect((refused.error["message"] as? String ?? "").contains("is not grid \(id)'s"), "\(refused.error)")
    try sqlite(shardStore(qtool, 1), "UPDATE grid_shards SET definition = replace(definition, 'fast < 25', 'fast < 20')")
    try restore()

    // A refused merge into a new store leaves no store (nor lease directory) behind.
    let fresh = qtool.home.appendingPathComponent("fresh.db").path
    try sqlite(shardStore(qtool, 2), "UPDATE grid_shard_results SET score = 42.5 WHERE combination = 5")
    #expect(try qtool.run(["--db", fresh, "backtest", "grid", "merge", id, shardStore(qtool, 1), shardStore(qtool, 2)]).status == 65)
    #expect(!FileManager.default.fileExists(atPath: fresh) && !FileManager.default.fileExists(atPath: fresh + ".leases"))
    try restore()

    // Any other field edited since the shard ran — the params rewritten with the same numbers,
    // a metric the ranking does not read, the spec text, a result added beyond the shard's
    // block — is caught by the hashes the shard recorded as it ran.
    let edits = [
      #"UPDATE grid_shard_results SET params = '{ "slow" : 6E1, "fast" : 1e1 }' WHERE combination = 3"#,
      "UPDATE grid_shard_results SET metrics = json_set(metrics, '$.total_return', 99) WHERE combination = 4",
      "UPDATE grid_shards SET spec_text = spec_text || '# edited'",
      "INSERT INTO grid_shard_results (grid_id, combination, params, metrics, score) SELECT grid_id, 0, params, metrics, score FROM grid_shard_results WHERE combination = 3",
    ]
    for edit in edits {
      try restore()
      try sqlite(shardStore(qtool, 2), edit)
      refused = try merge()
      #expect(refused.status == 65 && refused.error["code"] as? String == "grid_shard_mismatch", "\(edit): \(refused.error)")
      #expect((refused.error["message"] as? String ?? "").contains(shardStore(qtool, 2)), "\(edit): \(refused.error)")
    }
    try restore()
    let merged = try qtool.run(["backtest", "grid", "merge", id, shardStore(qtool, 1), shardStore(qtool, 2), "--json"])
    #expect(merged.status == 0, "\(merged.stderr)")
    #expect(try json(merged.stdout)["combinations"] as? Int == 6)
  }

  /// Shards run without a snapshot read their own stores' bars: shards whose bars differ (a
  /// corrected CSV imported between them) are refused, not merged into a grid no run computed.
  @Test func shardsOfDifferentDataRefuseToMerge() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv")
    var lines = try String(contentsOf: goog, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    // One close moved to the middle of its bar's range, the same number of bars.
    var fields = lines[1000].split(separator: ",").map(String.init)
    fields[4] = String((Double(fields[2])! + Double(fields[3])!) / 2)
    lines[1000] = fields.joined(separator: ",")
    let corrected = qtool.home.appendingPathComponent("goog-corrected.csv").path
    try lines.joined(separator: "\n").write(toFile: corrected, atomically: true, encoding: .utf8)
    for (k, file) in [(1, goog.path), (2, corrected)] {
      #expect(try qtool.run(["--db", shardStore(qtool, k), "data", "import", file, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    }
    var id = ""
    for k in 1...2 {
      let shard = try qtool.run(
        ["--db", shardStore(qtool, k), "backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "slow=30,60", "--shard", "\(k)/2", "--json"])
      #expect(shard.status == 0, "\(shard.stderr)")
      id = try json(shard.stdout)["grid_id"] as! String
    }
    let merge = try qtool.run(["backtest", "grid", "merge", id, shardStore(qtool, 1), shardStore(qtool, 2)])
    #expect(merge.status == 65, "\(merge.stderr)")
    #expect(merge.stderr.contains("were run with different data"), "\(merge.stderr)")
    #expect(try qtool.run(["backtest", "grid", "show", id]).status == 66, "nothing was merged")
  }

  @Test func shardAutoReadsSlurmAndKubernetesIndices() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let small = ["--grid", "fast=5..20:5", "--grid", "slow=30,60", "--snapshot", try snapshot(qtool)]
    // Kubernetes: JOB_COMPLETION_INDEX is 0-based, the count comes from --shards.
    let k8s = try qtool.run(
      ["--db", shardStore(qtool, 1), "backtest", "grid", spec] + small + ["--shard", "auto", "--shards", "4", "--json"],
      environment: ["JOB_COMPLETION_INDEX": "2"])
    #expect(k8s.status == 0, "\(k8s.stderr)")
    #expect(try json(k8s.stdout)["shard"] as? Int == 3 && json(k8s.stdout)["shards"] as? Int == 4)
    #expect(try json(k8s.stdout)["first"] as? Int == 4 && json(k8s.stdout)["end"] as? Int == 6, "shard 3 of 4 of 8: combinations 4 and 5")
    // Slurm: an array 0-3 (min 0): task 1 is shard 2 of 4.
    let slurm = try qtool.run(
      ["--db", shardStore(qtool, 2), "backtest", "grid", spec] + small + ["--shard", "auto", "--json"],
      environment: ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "0"])
    #expect(slurm.status == 0, "\(slurm.stderr)")
    #expect(try json(slurm.stdout)["shard"] as? Int == 2)
    // With --shards, the task id is the shard number (a resumed array of some of them).
    let resumed = try qtool.run(
      ["--db", shardStore(qtool, 3), "backtest", "grid", spec] + small + ["--shard", "auto", "--shards", "4", "--json"],
      environment: ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "1", "SLURM_ARRAY_TASK_MIN": "3"])
    #expect(try json(resumed.stdout)["shard"] as? Int == 3, "\(resumed.stderr)")

    let none = try qtool.run(["backtest", "grid", spec] + small + ["--shard", "auto", "--json"])
    #expect(try none.status == 64 && (errorObject(none.stderr)["message"] as! String).contains("JOB_COMPLETION_INDEX"))
    let noCount = try qtool.run(["backtest", "grid", spec] + small + ["--shard", "auto"], environment: ["JOB_COMPLETION_INDEX": "0"])
    #expect(noCount.status == 64 && noCount.stderr.contains("--shards"), "\(noCount.stderr)")
    // Numbers no scheduler sets are refused, not computed with: an overflow stopped the
    // process (132), and a task between an array's steps, or a step of 0, ran another's shard.
    for environment in [
      ["SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "-9223372036854775808"],
      ["SLURM_ARRAY_TASK_ID": "9223372036854775807", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "-1"],
      ["JOB_COMPLETION_INDEX": "9223372036854775807"],
      ["SLURM_ARRAY_TASK_ID": "15", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_STEP": "2"],
      ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_STEP": "0"],
    ] {
      let refused = try qtool.run(
        ["backtest", "grid", spec] + small + ["--shard", "auto"] + (environment["JOB_COMPLETION_INDEX"] == nil ? [] : ["--shards", "4"]),
        environment: environment)
      #expect(refused.status == 64, "\(environment): \(refused.status) \(refused.stderr)")
    }
  }

  @Test func badShardsSnapshotsAndSubmissionsAreRefused() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let small = ["--grid", "fast=5..20:5", "--grid", "slow=30,60"]
    for bad in ["5/4", "0/0", "0/4", "-1/4", "1/0", "a/b", "2", "1/4/2", "1/1000001"] {
      let result = try qtool.run(["backtest", "grid", spec] + small + ["--shard", bad])
      #expect(result.status == 64, "--shard \(bad): \(result.stderr)")
    }
    #expect(try qtool.run(["backtest", "grid", spec] + small + ["--shard", "5/4"]).stderr.contains("shard 5 of 4 does not exist"))

    // A snapshot with another hash than the grid's is refused (65) before anything runs.
    let snapshot = qtool.home.appendingPathComponent("snap.db").path
    #expect(try qtool.run(["data", "snapshot", "GOOG-1d", "-o", snapshot, "-q"]).status == 0)
    let wrongHash = try qtool.run(
      ["--db", shardStore(qtool, 1), "backtest", "grid", spec] + small + [
        "--shard", "1/2", "--snapshot", snapshot, "--snapshot-hash", "0123abcd", "--json",
      ])
    #expect(try wrongHash.status == 65 && (errorObject(wrongHash.stderr)["code"] as? String) == "snapshot_hash_mismatch", "\(wrongHash.stderr)")
    // Refused before its store is opened: no --db file, no lease directory.
    for litter in ["", "-wal", "-shm", ".leases"] {
      #expect(!FileManager.default.fileExists(atPath: shardStore(qtool, 1) + litter), "a refused shard created \(shardStore(qtool, 1))\(litter)")
    }
    for bad in [["--shard", "5/4"], ["--shard", "1/2", "--snapshot-hash", "0123abcd"], ["--shard", "1/2", "--snapshot", "/nonexistent.db"]] {
      let refused = try qtool.run(["--db", shardStore(qtool, 2), "backtest", "grid", spec] + small + bad)
      #expect(refused.status != 0, "\(bad)")
      #expect(!FileManager.default.fileExists(atPath: shardStore(qtool, 2)), "\(bad) created the --db store")
      #expect(!FileManager.default.fileExists(atPath: shardStore(qtool, 2) + ".leases"), "\(bad) created a lease directory")
    }
    // A store that is not a snapshot is refused too.
    let notSnapshot = try qtool.run(["backtest", "grid", spec] + small + ["--shard", "1/2", "--snapshot", qtool.databasePath])
    #expect(notSnapshot.status == 65 && notSnapshot.stderr.contains("is not a snapshot"), "\(notSnapshot.stderr)")
    // A directory is neither a snapshot nor a shard store: missing input (66), said so.
    let directory = qtool.home.appendingPathComponent("a-directory").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let snapshotDirectory = try qtool.run(["--db", shardStore(qtool, 3), "backtest", "grid", spec] + small + ["--shard", "1/2", "--snapshot", directory])
    #expect(snapshotDirectory.status == 66 && snapshotDirectory.stderr.contains("is a directory, not a snapshot"), "\(snapshotDirectory.stderr)")
    let mergeDirectory = try qtool.run(["backtest", "grid", "merge", "gdeadbeef0", directory])
    #expect(mergeDirectory.status == 66 && mergeDirectory.stderr.contains("is a directory, not a shard store"), "\(mergeDirectory.stderr)")
    // A snapshot of other data says the snapshot lacks the dataset, not the store `data list` shows.
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOX", "-t", "1d", "-q"]).status == 0)
    let other = qtool.home.appendingPathComponent("goox.db").path
    #expect(try qtool.run(["data", "snapshot", "GOOX-1d", "-o", other, "-q"]).status == 0)
    let lacking = try qtool.run(["--db", shardStore(qtool, 3), "backtest", "grid", spec] + small + ["--shard", "1/2", "--snapshot", other])
    #expect(lacking.status == 66, "\(lacking.stderr)")
    #expect(lacking.stderr.contains("the snapshot \(other) holds no dataset 'GOOG-1d' (it holds GOOX-1d)"), "\(lacking.stderr)")
    // An existing snapshot is kept without --force; an unwritable path is 73.
    #expect(try qtool.run(["data", "snapshot", "GOOG-1d", "-o", snapshot]).status == 73)
    let unwritable = try qtool.run(["data", "snapshot", "GOOG-1d", "-o", "/proc/qtool-no/snap.db", "--json"])
    #expect(try unwritable.status == 73 && (errorObject(unwritable.stderr)["code"] as? String) == "cannot_write", "\(unwritable.stderr)")
    #expect(try qtool.run(["data", "snapshot", "NOPE-1d", "-o", qtool.home.appendingPathComponent("n.db").path]).status == 66)

    // --slurm without sbatch on PATH: 69, naming what is missing.
    let noSlurm = try qtool.run(
      ["backtest", "grid", spec] + small + ["--slurm", "--shards", "2", "--work-dir", qtool.home.appendingPathComponent("w").path, "--json"],
      environment: ["PATH": "/nonexistent"])
    #expect(noSlurm.status == 69, "\(noSlurm.stderr)")
    #expect((try errorObject(noSlurm.stderr)["message"] as! String).contains("sbatch is not on PATH"))
    // A dry run needs no Slurm: it prints the scripts and writes nothing.
    let work = qtool.home.appendingPathComponent("w").path
    let dry = try qtool.run(
      ["backtest", "grid", spec] + small + [
        "--slurm", "--shards", "3", "--work-dir", work, "--dry-run", "--partition", "short", "--sbatch-arg=--mem=2G",
      ],
      environment: ["PATH": "/nonexistent"])
    #expect(dry.status == 0, "\(dry.stderr)")
    for line in [
      "#SBATCH --array=1-3", "#SBATCH --partition=short", "#SBATCH --mem=2G", "--shard auto --shards 3", "--dependency=afterok",
      "backtest grid merge",
    ] {
      #expect(dry.stdout.contains(line), "\(line) in \(dry.stdout)")
    }
    #expect(!FileManager.default.fileExists(atPath: work), "a dry run writes nothing")
    // What an #SBATCH line cannot carry is refused before anything is written.
    for bad in [["--work-dir", work + " 2"], ["--work-dir", work, "--sbatch-arg=--mem=2G\n#SBATCH --x=1"], ["--work-dir", work, "--time", "banana"]] {
      let refused = try qtool.run(["backtest", "grid", spec] + small + ["--slurm", "--shards", "3", "--dry-run"] + bad, environment: ["PATH": "/nonexistent"])
      #expect(refused.status == 64, "\(bad): \(refused.stderr)")
    }
    // A work directory whose shards/ holds another grid's stores is refused: its merge step
    // would merge them with this grid's, and fail every time.
    try FileManager.default.createDirectory(atPath: work + "/shards", withIntermediateDirectories: true)
    #expect(
      try qtool.run(["--db", work + "/shards/shard-1.db", "backtest", "grid", spec, "--grid", "fast=5,10", "--shard", "1/2", "--snapshot", snapshot, "-q"]).status == 0)
    let reused = try qtool.run(
      ["backtest", "grid", spec] + small + ["--slurm", "--shards", "3", "--work-dir", work, "--dry-run"], environment: ["PATH": "/nonexistent"])
    #expect(reused.status == 64 && reused.stderr.contains("already holds shards of grid"), "\(reused.stderr)")
    #expect(try qtool.run(["backtest", "grid", spec] + small + ["--slurm"]).status == 64, "--slurm needs --shards")
    #expect(try qtool.run(["backtest", "grid", spec] + small + ["--partition", "x"]).status == 64, "--partition needs --slurm")
    #expect(try qtool.run(["backtest", "grid", spec] + small + ["--snapshot", snapshot]).status == 64, "--snapshot needs --shard")
    #expect(try qtool.run(["backtest", "grid", "resume", "gdeadbeef0"]).status == 64, "resume names its scheduler")
    #expect(try qtool.run(["backtest", "grid", "resume", "gdeadbeef0", "--slurm"]).status == 66)
  }

  /// A shard of a registered strategy (a name, not a file) into a new --db that is refused —
  /// a bad --shard, a missing snapshot — leaves no store file, nor its directory, behind: the
  /// check whether the strategy's file changed reads an existing store only.
  @Test func refusedShardOfARegisteredStrategyCreatesNoStore() throws {
    let (qtool, _) = try prepared()
    defer { qtool.cleanUp() }
    let directory = qtool.home.appendingPathComponent("shards")
    let store = directory.appendingPathComponent("new.db").path
    let grid = ["backtest", "grid", "s", "--grid", "fast=5,10", "--grid", "slow=30,60"]
    let badShard = try qtool.run(["--db", store] + grid + ["--shard", "5/4"])
    #expect(badShard.status == 64, "\(badShard.stderr)")
    #expect(!FileManager.default.fileExists(atPath: directory.path), "a refused shard created \(store)")
    let noSnapshot = try qtool.run(["--db", store] + grid + ["--shard", "1/2", "--snapshot", qtool.home.appendingPathComponent("none.db").path])
    #expect(noSnapshot.status == 66, "\(noSnapshot.stderr)")
    #expect(!FileManager.default.fileExists(atPath: directory.path), "a refused shard created \(store)")
    // The home's own store, where s is registered, still sees a changed file registered anew.
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try (try String(contentsOfFile: spec, encoding: .utf8)).replacingOccurrences(of: "fast: 10", with: "fast: 12").write(
      toFile: spec, atomically: true, encoding: .utf8)
    let run = try qtool.run(grid)
    #expect(run.status == 0, "\(run.stderr)")
    #expect(run.stderr.contains("registered s v2"), "\(run.stderr)")
  }
}
