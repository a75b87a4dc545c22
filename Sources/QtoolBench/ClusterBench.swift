import Foundation
import QtoolCore
import QtoolData
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

    // CPU time: one process vs four shard processes, one worker each, same grid; runs
    // interleaved (one, then the four shards), each shard into a new store as a cluster task's.
    let spec = scratch.appendingPathComponent("cluster-sma.yaml").path
    try Self.smaCross.replacingOccurrences(of: "symbols: [RW]", with: "symbols: [RW100k]").write(toFile: spec, atomically: true, encoding: .utf8)
    let small = scratch.appendingPathComponent("rw100k.snapshot.db").path
    try spawnAndWait("/usr/bin/env", env + ["data", "snapshot", "RW100k-1m", "-o", small, "--force", "-q"])
    func shardStore(_ k: Int) -> String { scratch.appendingPathComponent("cpu-shard-\(k).db").path }
    func removeStore(_ path: String) { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
    /// CPU of the grid in one process and of its four shard processes, `runs` times.
    func shardedCPU(_ grid: [String], runs: Int) throws -> (one: [Double], shards: [Double]) {
      var (one, shards) = ([Double](), [Double]())
      for _ in 0..<runs {
        one.append(try cpuTimeOfChild(env + ["backtest", "grid", spec] + grid).cpu)
        var total = 0.0
        for k in 1...4 {
          removeStore(shardStore(k))
          total += try cpuTimeOfChild(
            env + ["--db", shardStore(k), "backtest", "grid", spec] + grid + ["--shard", "\(k)/4", "--snapshot", small]
          ).cpu
        }
        shards.append(total)
      }
      return (one, shards)
    }
    // The overhead of sharding is a fixed cost per shard process (start, a new store, the
    // snapshot checked, the bars read, the indicators its combinations share computed again),
    // not a cost per combination; so it is measured on a grid worth sharding, ≈ 25 s of one
    // core (each shard ≈ 6 s), and shown as well on a grid a quarter of that, where it weighs
    // four times as much. This VM's CPU time of one and the same run varies by ±10 %, so the
    // runs are interleaved (one, then the four shards) and each side's fastest run is shown too.
    let runs = 5
    /// Reports the grid of `fast` × `slow` (step 5) with fast < slow; returns the fastest
    /// one-process CPU per combination.
    func shardingFigures(fast: ClosedRange<Int>, slow: ClosedRange<Int>, name: String) throws -> Double {
      let slowValues = Array(stride(from: slow.lowerBound, through: slow.upperBound, by: 5))
      let grid = [
        "--grid", "fast=\(fast.lowerBound)..\(fast.upperBound):1", "--grid", "slow=\(slow.lowerBound)..\(slow.upperBound):5", "--where", "fast < slow",
        "--jobs", "1", "-q",
      ]
      let count = Self.pairs(fast: Array(fast), slow: slowValues)
      let measured = try shardedCPU(grid, runs: runs)
      let ratios = zip(measured.shards, measured.one).map { $0 / $1 }
      report(
        "\(name) \(Self.grouped(count)) combos on 100k bars, CPU",
        String(format: "%.2f s / %.2f s", Self.median(measured.shards), Self.median(measured.one)),
        String(
          format: "4 shard processes / 1 process: min %.3f, median %.3f over %d runs, fastest / fastest %.3f; target ≤ 1.05",
          ratios.min()!, Self.median(ratios), runs, measured.shards.min()! / measured.one.min()!))
      let fixed = zip(measured.shards, measured.one).map { ($0 - $1) / 3 }
      report(
        "  extra CPU of each further shard process", String(format: "%.0f ms", Self.median(fixed) * 1000),
        String(format: "median of the differences (min %.0f ms)", fixed.min()! * 1000))
      return measured.one.min()! / Double(count)
    }
    let perCombination = try shardingFigures(fast: 5...200, slow: 20...800, name: "grid")
    report(
      "  per combination (1 process, 100k bars)", String(format: "%.2f ms", perCombination * 1000),
      "fastest run; the input of the README's extrapolation")
    _ = try shardingFigures(fast: 5...100, slow: 20...400, name: "smaller grid")
    // The fixed cost of a process without the grid's noise: processes that run one combination.
    let one = ["--grid", "fast=10", "--grid", "slow=30", "--jobs", "1", "-q"]
    var (shardProcess, localProcess, startOnly) = ([Double](), [Double](), [Double]())
    for _ in 0..<9 {
      removeStore(shardStore(1))
      shardProcess.append(try cpuTimeOfChild(env + ["--db", shardStore(1), "backtest", "grid", spec] + one + ["--shard", "1/1", "--snapshot", small]).cpu)
      localProcess.append(try cpuTimeOfChild(env + ["backtest", "grid", spec] + one).cpu)
      startOnly.append(try cpuTimeOfChild(env + ["--version"]).cpu)
    }
    report(
      "  a one-combination shard process, CPU", String(format: "%.0f ms", Self.median(shardProcess) * 1000),
      String(
        format: "median of 9; the same grid in the main store %.0f ms; `qtool --version` %.0f ms",
        Self.median(localProcess) * 1000, Self.median(startOnly) * 1000))

    // Merge of 100,000 results from 4 shard stores; baseline: storing them as a local grid does.
    let computed = Metrics.compute(
      Backtester.run(try CompiledStrategy(try StrategyLoader.parse(Self.smaCross, origin: "bench").spec), bars: million.slice(0..<20_000)),
      bars: million.slice(0..<20_000), barsPerYear: 525_600
    )
    let metrics = computed.sortedJSON
    let sharpe = Metrics.reader("sharpe")!(computed)
    let total = 100_000
    // A grid the merge can check: fast 0…999 × slow 0…99, the last axis varying fastest.
    let axes = [GridAxis(name: "fast", values: (0..<1000).map(Double.init)), GridAxis(name: "slow", values: (0..<100).map(Double.init))]
    let gridID = try BacktestOperations.shardedGridID(strategy: "sma-cross", axes: axes, condition: nil, rank: "sharpe", settings: "{}", shards: 4)
    let definition = try GridDefinition(axes: axes, condition: nil).text
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    var rows: [(params: String, metrics: String)] = []
    for k in 1...4 {
      let shard = GridShard(unchecked: k, count: 4)
      let range = shard.range(of: total)
      let results = try range.map {
        GridShardResult(
          combination: $0, params: try BacktestOperations.paramsText(["fast": Double($0 / 100), "slow": Double($0 % 100)], encoder: encoder),
          metrics: metrics, score: sharpe.isNaN ? nil : sharpe)
      }
      rows += results.map { ($0.params, $0.metrics) }
      let store = try QtoolDatabase.open(path: scratch.appendingPathComponent("merge-shard-\(k).db").path)
      try store.recordGridShard(
        GridShardRecord(
          gridID: gridID, shard: k, shards: 4, combinations: total, firstCombination: range.lowerBound, endCombination: range.upperBound,
          strategyName: "sma-cross", specText: Self.smaCross, specHash: ContentHash.sha256Hex(Data(Self.smaCross.utf8)), dataset: "RW-1m", axes: "{\"fast\":[1],\"slow\":[1]}", rank: "sharpe",
          settings: "{}", snapshotHash: nil, engineVersion: "bench", bars: 20_000, warmupBars: 0, jobID: nil, completedAt: 0,
          definition: definition, resultsHash: ContentHash.fingerprint(records: results.map(\.hashedFields))),
        results: results)
    }
    let local = try time {
      try database.recordGrid(
        id: "glocal0001", strategyName: "sma-cross", specText: Self.smaCross, dataset: "RW-1m", axes: "{}", rank: "sharpe", results: rows)
    }
    let mergeSeconds = try time {
      try spawnAndWait(
        "/usr/bin/env",
        env + ["backtest", "grid", "merge", gridID] + (1...4).map { scratch.appendingPathComponent("merge-shard-\($0).db").path } + ["-q"])
    }
    let merged = try database.grids().contains { $0.id == gridID && $0.combinations == total }
    report(
      "grid merge, 100,000 results from 4 stores", String(format: "%.2f s", mergeSeconds),
      String(format: "%@storing them in-process as a local grid does %.2f s; target < 2 s", merged ? "" : "MERGE FAILED; ", local))

    // A sharded walk-forward: 4 shard processes run one after another, then the merge, against
    // the local walk-forward in one process; one worker each, CPU and wall time, interleaved.
    let walkForward = [
      "--grid", "fast=5..50:1", "--grid", "slow=20..200:5", "--where", "fast < slow", "--walk-forward", "4w/1w", "--jobs", "1", "-q",
    ]
    var (localCPU, localWall, shardedCPU, shardedWall) = ([Double](), [Double](), [Double](), [Double]())
    var allMerged = true
    let merges = scratch.appendingPathComponent("wf-merged.db").path
    for _ in 0..<runs {
      let local = try cpuTimeOfChild(env + ["backtest", "grid", spec] + walkForward)
      localCPU.append(local.cpu)
      localWall.append(local.wall)
      var (cpu, wall) = (0.0, 0.0)
      for k in 1...4 {
        let path = scratch.appendingPathComponent("wf-shard-\(k).db").path
        removeStore(path)
        let shard = try cpuTimeOfChild(env + ["--db", path, "backtest", "grid", spec] + walkForward + ["--shard", "\(k)/4", "--snapshot", small])
        cpu += shard.cpu
        wall += shard.wall
      }
      let id = try QtoolDatabase.open(path: scratch.appendingPathComponent("wf-shard-1.db").path, readOnly: true).walkForwardShards()[0].gridID
      // Each run merges into a new store: a walk-forward is merged into a store once.
      removeStore(merges)
      let merge = try cpuTimeOfChild(
        env + ["--db", merges, "backtest", "grid", "merge", id] + (1...4).map { scratch.appendingPathComponent("wf-shard-\($0).db").path })
      shardedCPU.append(cpu + merge.cpu)
      shardedWall.append(wall + merge.wall)
      allMerged = try allMerged && QtoolDatabase.open(path: merges).walkForwardRunReport(id: id) != nil
    }
    let cpuRatios = zip(shardedCPU, localCPU).map { $0 / $1 }
    let wallRatios = zip(shardedWall, localWall).map { $0 / $1 }
    report(
      "walk-forward 4w/1w, 1,590 combos, CPU", String(format: "%.2f s / %.2f s", Self.median(shardedCPU), Self.median(localCPU)),
      String(
        format:
          "%@4 shards + merge / local: min %.3f, median %.3f over %d runs; wall (shards one after another) min %.3f, median %.3f; shards also test every combination",
        allMerged ? "" : "MERGE FAILED; ", cpuRatios.min()!, Self.median(cpuRatios), runs, wallRatios.min()!, Self.median(wallRatios)))
  }

  static func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
  }

  /// `6,695`.
  static func grouped(_ number: Int) -> String {
    let digits = String(number)
    return digits.enumerated().map { index, digit in (index > 0 && (digits.count - index) % 3 == 0 ? "," : "") + String(digit) }.joined()
  }

  /// How many (fast, slow) pairs with fast < slow: the size of a `--where 'fast < slow'` grid.
  static func pairs(fast: [Int], slow: [Int]) -> Int { slow.reduce(0) { count, s in count + fast.filter { $0 < s }.count } }

  /// User plus system CPU seconds of a command run to its end, and its wall time.
  func cpuTimeOfChild(_ arguments: [String]) throws -> (cpu: Double, wall: Double) {
    let start = DispatchTime.now().uptimeNanoseconds
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
    // A failed run takes little CPU and would pass for a fast one.
    guard status == 0 else {
      throw NSError(
        domain: "bench", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "exit status \(status): \(arguments.joined(separator: " "))"])
    }
    func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
    return (seconds(usage.ru_utime) + seconds(usage.ru_stime), Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
  }
}
