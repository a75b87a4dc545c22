import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

extension Bench {
  static let smaCross = """
    name: sma-cross
    universe: { symbols: [RW], timeframe: 1m }
    params: { fast: 10, slow: 30 }
    rules:
      entry: cross_above(sma(close, fast), sma(close, slow))
      exit: cross_below(sma(close, fast), sma(close, slow))
    sizing: { fraction: 1.0 }
    execution: { fill: next_open, units: fractional, capital: 10000 }
    """

  /// SMA 10/30 crossover, all-in, next-open fills, on a seeded 1-minute random walk
  /// (the setting the vectorbt and backtesting.py figures were measured in).
  func backtest() throws {
    print("\nbacktest (SMA 10/30 crossover, next-open fills, seeded 1-minute random walk)")
    let million = Self.randomWalk(count: 1_000_000, seed: 11)
    let loaded = try StrategyLoader.parse(Self.smaCross, origin: "bench")
    let strategy = try CompiledStrategy(loaded.spec)
    var best = Double.infinity
    var trades = 0
    for _ in 0..<3 {
      best = min(best, try time { trades = Backtester.run(strategy, bars: million).trades.count })
    }
    report(
      "engine alone, 1M bars (in-process)", String(format: "%.1fM bars/s", 1.0 / best),
      String(format: "%.0f ms, %d trades; target ≥ 25M bars/s", best * 1000, trades))

    // Whole process: the release qtool reading 1M stored bars, running, recording.
    let home = scratch.appendingPathComponent("bt-home").path
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    try database.write { db in
      let id = try QtoolDatabase.findOrCreateDataset(
        db, DatasetDefinition(name: "RW-1m", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported"))
      _ = try QtoolDatabase.upsertBars(db, datasetID: id, million)
      try QtoolDatabase.refreshStatistics(db, datasetID: id)
    }
    let specPath = scratch.appendingPathComponent("sma.yaml").path
    try Self.smaCross.write(toFile: specPath, atomically: true, encoding: .utf8)
    let whole = try medianRunTime("/usr/bin/env", ["QTOOL_HOME=\(home)", qtool, "backtest", "run", specPath, "-q"], runs: 3)
    report("qtool backtest run, 1M stored bars", String(format: "%.2f s", whole), "whole process incl. read + record; target < 0.5 s")
    let peak = try peakMemoryOfChild(["QTOOL_HOME=\(home)", qtool, "backtest", "run", specPath, "-q"])
    report("  peak memory of that process", String(format: "%.0f MB", peak), "target < 200 MB")

    // The grid: fast 5..50 × slow 20..200:5 with fast < slow (1,590 combos) on 100k bars.
    let hundredThousand = million.slice(0..<100_000)
    try database.write { db in
      let id = try QtoolDatabase.findOrCreateDataset(
        db,
        DatasetDefinition(name: "RW100k-1m", source: "bench", symbol: "RW100k", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported"))
      _ = try QtoolDatabase.upsertBars(db, datasetID: id, hundredThousand)
      try QtoolDatabase.refreshStatistics(db, datasetID: id)
    }
    let gridSeconds = try medianRunTime(
      "/usr/bin/env",
      [
        "QTOOL_HOME=\(home)", qtool, "backtest", "grid", specPath, "--dataset", "RW100k-1m", "--grid", "fast=5..50:1", "--grid", "slow=20..200:5",
        "--where", "fast < slow", "-q",
      ],
      runs: 1)
    report(
      "grid 1,590 combos on 100k bars (2 cores)", String(format: "%.2f s", gridSeconds),
      String(format: "%.0f combos/s; target < 2 s", 1590 / gridSeconds))
    let gridPeak = try peakMemoryOfChild([
      "QTOOL_HOME=\(home)", qtool, "backtest", "grid", specPath, "--dataset", "RW100k-1m", "--grid", "fast=5..50:1", "--grid", "slow=20..200:5",
      "--where", "fast < slow", "-q",
    ])
    report("  peak memory of the grid", String(format: "%.0f MB", gridPeak), "target < 1 GB")
  }

  /// The engine alone on 200k bars, once: small enough to run under callgrind.
  func engineOnly() throws {
    let bars = Self.randomWalk(count: 200_000, seed: 11)
    let strategy = try CompiledStrategy(try StrategyLoader.parse(Self.smaCross, origin: "bench").spec)
    var seconds = Double.infinity
    for _ in 0..<5 { seconds = min(seconds, try time { _ = Backtester.run(strategy, bars: bars) }) }
    report("engine alone, 200k bars", String(format: "%.1fM bars/s", 0.2 / seconds), String(format: "%.1f ms", seconds * 1000))
    var conditions = Double.infinity
    for _ in 0..<5 {
      conditions = min(
        conditions,
        try time {
          let evaluator = RuleEvaluator(bars: bars)
          _ = evaluator.condition(strategy.entry!)
          _ = evaluator.condition(strategy.exit!)
        })
    }
    report("  of which rule evaluation", String(format: "%.1f ms", conditions * 1000))
    var sma = Double.infinity
    for _ in 0..<5 { sma = min(sma, try time { _ = Indicators.sma(bars.close, 30) }) }
    report("  one sma(close, 30)", String(format: "%.2f ms", sma * 1000))
  }

  /// Runs a command and returns its peak resident memory in MB. The command is started by a
  /// small Python process with fork and exec, and its rusage read with wait4: a child spawned
  /// from here (posix_spawn shares this process's memory until exec) would be charged this
  /// process's own peak, which after the in-process benches is larger than the command's.
  func peakMemoryOfChild(_ arguments: [String]) throws -> Double {
    let helper = Process()
    helper.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    helper.arguments =
      [
        "python3", "-c",
        """
        import os, sys
        pid = os.fork()
        if pid == 0:
            fd = os.open(os.devnull, os.O_WRONLY); os.dup2(fd, 1); os.dup2(fd, 2)
            os.execvp(sys.argv[1], sys.argv[1:])
        print(os.wait4(pid, 0)[2].ru_maxrss)
        """,
        "/usr/bin/env",
      ] + arguments
    let output = Pipe()
    helper.standardOutput = output
    try helper.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    helper.waitUntilExit()
    guard let kilobytes = Double(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { throw CocoaError(.executableLoad) }
    return kilobytes / 1024
  }
}
