import Foundation
import QtoolCore
import QtoolStore

struct Bench {
  static var today: String { UTCCalendar.format(Int64(Date().timeIntervalSince1970 * 1000) / 86_400_000 * 86_400_000) }

  /// The release qtool next to this benchmark binary.
  let qtool = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qtool").path
  let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-bench-\(getpid())")

  init() {
    try? FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
  }

  func report(_ name: String, _ value: String, _ note: String = "") {
    print("  " + name.padding(toLength: 44, withPad: " ", startingAt: 0) + value.padding(toLength: 18, withPad: " ", startingAt: 0) + note)
  }

  /// Median wall time of `runs` executions of a command, in seconds. Uses posix_spawn:
  /// Foundation's Process adds ~50 ms of its own per launch here, which would hide the figure.
  func medianRunTime(_ path: String, _ arguments: [String], runs: Int = 31) throws -> Double {
    var times: [Double] = []
    for _ in 0..<runs {
      let start = DispatchTime.now().uptimeNanoseconds
      try spawnAndWait(path, arguments)
      times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
    }
    return times.sorted()[times.count / 2]
  }

  func spawnAndWait(_ path: String, _ arguments: [String]) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv = ([path] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    guard posix_spawn(&pid, path, &actions, nil, argv, environ) == 0 else {
      throw CocoaError(.executableLoad)
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
  }

  func startup() throws {
    print("\nstartup (median of 31 runs)")
    guard FileManager.default.isExecutableFile(atPath: qtool) else {
      print("  qtool not built next to the benchmark: run `make bench`")
      return
    }
    let baseline = try medianRunTime("/bin/true", [])
    let help = try medianRunTime(qtool, ["--help"])
    let version = try medianRunTime(qtool, ["--version"])
    report("/bin/true (process spawn baseline)", ms(baseline))
    report("qtool --help", ms(help), "target < 20 ms; a bare process spawn takes \(ms(baseline))")
    report("qtool --version", ms(version))
  }

  func store() throws {
    let count = 1_000_000
    print("\nstore (\(count / 1_000_000)M bars, one transaction, WAL)")
    let series = Self.randomWalk(count: count, seed: 42)
    let path = scratch.appendingPathComponent("bench.db").path
    let database = try QtoolDatabase.open(path: path)
    try database.write { db in
      try db.execute(sql: "INSERT INTO instruments (id, source, symbol) VALUES (1, 'bench', 'RW')")
      try db.execute(
        sql:
          "INSERT INTO datasets (id, name, instrument_id, timeframe, calendar, origin, row_count, created_at, updated_at) VALUES (1, 'rw', 1, '1m', '24x7', 'imported', \(count), 0, 0)"
      )
    }
    let insert = try time { try database.write { _ = try QtoolDatabase.upsertBars($0, datasetID: 1, series) } }
    var read = Double.infinity
    for _ in 0..<3 {
      read = min(read, try time { _ = try database.read { try QtoolDatabase.readBars($0, datasetID: 1) } })
    }

    // Baseline: the sqlite3 CLI importing the same bars from CSV into a table of the same shape.
    let csv = scratch.appendingPathComponent("bars.csv").path
    var text = ""
    text.reserveCapacity(count * 60)
    for i in 0..<count {
      text += "1,\(series.timestamps[i]),\(series.open[i]),\(series.high[i]),\(series.low[i]),\(series.close[i]),\(series.volume[i])\n"
    }
    try text.write(toFile: csv, atomically: true, encoding: .utf8)
    let cliPath = scratch.appendingPathComponent("cli.db").path
    let script = """
      PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
      CREATE TABLE bars (dataset_id INTEGER NOT NULL, ts INTEGER NOT NULL, open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL, PRIMARY KEY (dataset_id, ts)) WITHOUT ROWID;
      .mode csv
      .import \(csv) bars
      """
    let cli = try time { try runSQLite(cliPath, script) }
    let cliRead = try time { try runSQLite(cliPath, ".output /dev/null\nSELECT * FROM bars ORDER BY ts;") }

    report("sqlite3 CLI .import (baseline)", rate(count, cli))
    report("qtool store insert", rate(count, insert), "target ≥ 1.0M/s; \(ratio(cli, insert)) the CLI's speed")
    report("sqlite3 CLI SELECT * to /dev/null", rate(count, cliRead))
    report("qtool store read (columns)", rate(count, read), "target ≥ 4.0M/s; \(ratio(cliRead, read)) the CLI's speed")
    report("peak memory (RSS)", Self.peakMemory())
  }

  func runSQLite(_ database: String, _ script: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    process.arguments = [database]
    let input = Pipe()
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    input.fileHandleForWriting.write(Data(script.utf8))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
  }

  func time(_ body: () throws -> Void) throws -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  }

  func ms(_ seconds: Double) -> String { String(format: "%.1f ms", seconds * 1000) }
  func rate(_ count: Int, _ seconds: Double) -> String { String(format: "%.2fM bars/s", Double(count) / seconds / 1e6) }
  /// How many times faster `candidate` is than `baseline` (both durations).
  func ratio(_ baseline: Double, _ candidate: Double) -> String { String(format: "%.2f×", baseline / candidate) }

  static func peakMemory() -> String {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return String(format: "%.0f MB", Double(usage.ru_maxrss) / 1024)
  }

  /// A seeded, bit-for-bit repeatable 1-minute random walk.
  static func randomWalk(count: Int, seed: UInt64) -> BarSeries {
    var state = seed
    func next() -> Double {
      // SplitMix64
      state &+= 0x9E37_79B9_7F4A_7C15
      var z = state
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      z ^= z >> 31
      return Double(z >> 11) / Double(1 << 53)
    }
    var series = BarSeries(reservingCapacity: count)
    var price = 100.0
    let start: Int64 = 1_577_836_800_000
    for i in 0..<count {
      // Quoted in cents, as real prices are (and as CSV files carry them).
      let cents = { (x: Double) in (x * 100).rounded() / 100 }
      let open = price
      let close = cents(max(1, open * (1 + (next() - 0.5) * 0.002)))
      let high = cents(max(open, close) * (1 + next() * 0.0005))
      let low = cents(min(open, close) * (1 - next() * 0.0005))
      series.append(timestamp: start + Int64(i) * 60_000, open: open, high: high, low: low, close: close, volume: (next() * 100).rounded())
      price = close
    }
    return series
  }
}
