import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

extension Bench {
  /// Issue #16: what splitting a grid into shards costs. Baselines are measured in the same run.
  func cluster() throws {
    print("\ncluster (grid shards, merge, snapshot; release qtool as separate processes)")
    let home = scratch.appendingPathComponent("cluster-home").path
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    let million = Self.randomWalk(count: 1_000_000, seed: 16)
    try database.write { db in
      let definition = DatasetDefinition(
        name: "RW-1m", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported")
      _ = try QtoolDatabase.storeBars(db, into: definition, million, at: 0)
      let small = DatasetDefinition(
        name: "RW100k-1m", source: "bench", symbol: "RW100k", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported")
      _ = try QtoolDatabase.storeBars(db, into: small, million.slice(0..<100_000), at: 0)
    }
    let env = ["QTOOL_HOME=\(home)", qtool]

    // Snapshot of 1M bars, whole process; baseline: reading those bars in-process.
    let read = try time { _ = try database.bars(datasetID: try database.dataset(named: "RW-1m").id) }
    let snapshot = scratch.appendingPathComponent("rw.snapshot.db").path
    let snapshotSeconds = try medianRunTime("/usr/bin/env", env + ["data", "snapshot", "RW-1m", "-o", snapshot, "--force", "-q"], runs: 3)
    report(
      "data snapshot, 1M bars (whole process)", String(format: "%.2f s", snapshotSeconds),
      String(format: "reading them in-process %.0f ms; target < 1 s", read * 1000))

    // CPU time: one process vs four shard processes, one worker each, same grid.
    let spec = scratch.appendingPathComponent("cluster-sma.yaml").path
    try Self.smaCross.replacingOccurrences(of: "symbols: [RW]", with: "symbols: [RW100k]").write(toFile: spec, atomically: true, encoding: .utf8)
    let grid = ["--grid", "fast=5..50:1", "--grid", "slow=20..200:5", "--where", "fast < slow", "--jobs", "1", "-q"]
    let small = scratch.appendingPathComponent("rw100k.snapshot.db").path
    try spawnAndWait("/usr/bin/env", env + ["data", "snapshot", "RW100k-1m", "-o", small, "--force", "-q"])
    let one = try cpuTimeOfChild(env + ["backtest", "grid", spec] + grid)
    var shards = 0.0
    for k in 1...4 {
      shards += try cpuTimeOfChild(
        env + ["--db", scratch.appendingPathComponent("cpu-shard-\(k).db").path, "backtest", "grid", spec] + grid + [
          "--shard", "\(k)/4", "--snapshot", small,
        ])
    }
    report(
      "grid 1,590 combos on 100k bars, CPU time", String(format: "%.2f s / %.2f s", shards, one),
      String(format: "4 shard processes / 1 process = %.3f; target ≤ 1.05", shards / one))
    report("  per combination (1 process, 100k bars)", String(format: "%.2f ms", one / 1590 * 1000), "the input of the README's extrapolation")
    report(
      "  fixed cost of each extra shard process", String(format: "%.0f ms", (shards - one) / 3 * 1000),
      "start, a new store migrated, snapshot verified; vanishes in large shards")

    // Merge of 100,000 results from 4 shard stores; baseline: storing them as a local grid does.
    let metrics = Metrics.compute(
      Backtester.run(try CompiledStrategy(try StrategyLoader.parse(Self.smaCross, origin: "bench").spec), bars: million.slice(0..<20_000)),
      bars: million.slice(0..<20_000), barsPerYear: 525_600
    ).sortedJSON
    let total = 100_000
    var rows: [(params: String, metrics: String)] = []
    for k in 1...4 {
      let shard = GridShard(unchecked: k, count: 4)
      let range = shard.range(of: total)
      let results = range.map {
        GridShardResult(combination: $0, params: "{\"fast\":\($0 % 1000),\"slow\":\($0 / 1000)}", metrics: metrics, score: Double($0 % 977))
      }
      rows += results.map { ($0.params, $0.metrics) }
      let store = try QtoolDatabase.open(path: scratch.appendingPathComponent("merge-shard-\(k).db").path)
      try store.recordGridShard(
        GridShardRecord(
          gridID: "gbench00001", shard: k, shards: 4, combinations: total, firstCombination: range.lowerBound, endCombination: range.upperBound,
          strategyName: "sma-cross", specText: Self.smaCross, specHash: "h", dataset: "RW-1m", axes: "{\"fast\":[1],\"slow\":[1]}", rank: "sharpe",
          settings: "{}", snapshotHash: nil, engineVersion: "bench", bars: 20_000, warmupBars: 0, jobID: nil, completedAt: 0),
        results: results)
    }
    let local = try time {
      try database.recordGrid(
        id: "glocal0001", strategyName: "sma-cross", specText: Self.smaCross, dataset: "RW-1m", axes: "{}", rank: "sharpe", results: rows)
    }
    let mergeSeconds = try time {
      try spawnAndWait(
        "/usr/bin/env",
        env + ["backtest", "grid", "merge", "gbench00001"] + (1...4).map { scratch.appendingPathComponent("merge-shard-\($0).db").path } + ["-q"])
    }
    let merged = try database.grids().contains { $0.id == "gbench00001" && $0.combinations == total }
    report(
      "grid merge, 100,000 results from 4 stores", String(format: "%.2f s", mergeSeconds),
      String(format: "%@storing them in-process as a local grid does %.2f s; target < 2 s", merged ? "" : "MERGE FAILED; ", local))

    // A sharded walk-forward: 4 shard processes run one after another, then the merge, against
    // the local walk-forward in one process; one worker each, CPU and wall time, same run.
    let walkForward = [
      "--grid", "fast=5..50:1", "--grid", "slow=20..200:5", "--where", "fast < slow", "--walk-forward", "4w/1w", "--jobs", "1", "-q",
    ]
    let localCPU = try cpuTimeOfChild(env + ["backtest", "grid", spec] + walkForward)
    let localWall = try time { try spawnAndWait("/usr/bin/env", env + ["backtest", "grid", spec] + walkForward) }
    var shardedCPU = 0.0
    var walkForwardID = ""
    let shardedWall = try time {
      shardedCPU = 0
      for k in 1...4 {
        shardedCPU += try cpuTimeOfChild(
          env + ["--db", scratch.appendingPathComponent("wf-shard-\(k).db").path, "backtest", "grid", spec] + walkForward + [
            "--shard", "\(k)/4", "--snapshot", small,
          ])
      }
      let id = try QtoolDatabase.open(path: scratch.appendingPathComponent("wf-shard-1.db").path, readOnly: true).walkForwardShards()[0].gridID
      walkForwardID = id
      shardedCPU += try cpuTimeOfChild(
        env + ["--db", scratch.appendingPathComponent("wf-merged.db").path, "backtest", "grid", "merge", id]
          + (1...4).map { scratch.appendingPathComponent("wf-shard-\($0).db").path })
    }
    let stored =
      try QtoolDatabase.open(path: scratch.appendingPathComponent("wf-merged.db").path).walkForwardRunReport(id: walkForwardID) != nil
    report(
      "walk-forward 4w/1w, 1,590 combos, CPU", String(format: "%.2f s / %.2f s", shardedCPU, localCPU),
      String(
        format: "%@4 shards + merge / local = %.3f; wall %.3f (%.2f s / %.2f s, shards one after another); shards also test every combination",
        stored ? "" : "MERGE FAILED; ", shardedCPU / localCPU, shardedWall / localWall, shardedWall, localWall))
  }

  /// User plus system CPU seconds of a command run to its end.
  func cpuTimeOfChild(_ arguments: [String]) throws -> Double {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    guard posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ) == 0 else { throw CocoaError(.executableLoad) }
    var status: Int32 = 0
    var usage = rusage()
    wait4(pid, &status, 0, &usage)
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
  }
}
