import Foundation
import QtoolCore
import QtoolStore

extension Bench {
  /// How long qtool takes to stop after Ctrl-C: a 1,590-combination grid on 100k bars and a
  /// 2M-row import, each sent SIGINT while it works. The figure is signal → process gone.
  func cancellation() throws {
    print("\ncancellation (SIGINT while working; signal → exit)")
    let home = scratch.appendingPathComponent("cancel-home").path
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    let bars = Self.randomWalk(count: 100_000, seed: 3)
    try database.write { db in
      _ = try QtoolDatabase.storeBars(
        db, into: DatasetDefinition(name: "RW-1m", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported"),
        bars, at: 0)
    }
    let specPath = scratch.appendingPathComponent("cancel-sma.yaml").path
    try Self.smaCross.write(toFile: specPath, atomically: true, encoding: .utf8)
    let grid = [
      "QTOOL_HOME=\(home)", qtool, "backtest", "grid", specPath, "--grid", "fast=5..50:1", "--grid", "slow=20..200:5", "--where", "fast < slow", "-q",
    ]
    var latencies: [Double] = []
    var statuses: Set<Int32> = []
    for delay in [0.3, 0.5, 0.7] {
      let (latency, status) = try interrupt(grid, after: delay)
      latencies.append(latency)
      statuses.insert(status)
    }
    report(
      "grid, 1,590 combos on 100k bars", String(format: "%.0f ms", latencies.max()! * 1000),
      "worst of 3 (signals at 0.3/0.5/0.7 s); exit \(statuses.sorted().map(String.init).joined(separator: ",")); target < 500 ms")

    let count = 2_000_000
    var text = "timestamp,open,high,low,close,volume\n"
    text.reserveCapacity(count * 45)
    for i in 0..<count { text += "\(1_577_836_800 + i * 60),100.5,101.25,99.75,100.125,\(i % 1000)\n" }
    let csv = scratch.appendingPathComponent("cancel-2m.csv").path
    try text.write(toFile: csv, atomically: true, encoding: .utf8)
    latencies = []
    statuses = []
    for delay in [0.1, 0.3, 0.5] {
      let importHome = scratch.appendingPathComponent("cancel-import-\(delay)").path
      let (latency, status) = try interrupt(["QTOOL_HOME=\(importHome)", qtool, "data", "import", csv, "-s", "RW", "-t", "1m", "-q"], after: delay)
      latencies.append(latency)
      statuses.insert(status)
    }
    report(
      "import, 2M-row CSV", String(format: "%.0f ms", latencies.max()! * 1000),
      "worst of 3 (signals at 0.1/0.3/0.5 s); exit \(statuses.sorted().map(String.init).joined(separator: ",")); target < 500 ms")
  }

  /// Starts `arguments` (through /usr/bin/env), sends SIGINT after `delay` seconds and returns
  /// the seconds from the signal to the process's end, and its exit status.
  func interrupt(_ arguments: [String], after delay: Double) throws -> (Double, Int32) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    guard posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ) == 0 else { throw CocoaError(.executableLoad) }
    usleep(useconds_t(delay * 1_000_000))
    let signalled = DispatchTime.now().uptimeNanoseconds
    kill(pid, SIGINT)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - signalled) / 1e9
    return (seconds, (status >> 8) & 0xff)
  }
}
