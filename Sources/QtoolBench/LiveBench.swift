import Foundation
import QtoolCore
import QtoolData
import QtoolEngine
import QtoolStore
import QtoolTestSupport
import Synchronization

/// Live paper trading: how long a final bar takes to become a committed signal, a committed
/// signal a received webhook, what a runner costs per bar with years of history, its memory,
/// and how fast `strategy stop` ends it. Each figure next to a baseline measured in this run.
extension Bench {
  static let liveSpec = """
    name: live-bench
    universe: { symbols: [RW], timeframe: 1m }
    params: { fast: 10, slow: 30 }
    rules:
      entry: cross_above(sma(close, fast), sma(close, slow))
      exit: cross_below(sma(close, fast), sma(close, slow))
    sizing: { fraction: 1.0 }
    costs: { commission: 0.001 }
    risk: { stop_loss: 0.02 }
    execution: { fill: next_open, units: fractional, close_at_end: false, capital: 10000 }
    """

  func live() throws {
    print("\nlive paper trading (SMA 10/30 + stop loss, seeded random walk)")
    try liveLatency()
    try liveStoreFeed()
    try liveManyRunners()
    try liveProcess()
  }

  func liveSettings(_ home: String, _ extra: [String: String] = [:]) throws -> Settings {
    var environment = ["XDG_CONFIG_HOME": home + "/config", "HOME": home]
    for (key, value) in extra { environment[key] = value }
    return try Settings.resolve(flags: [:], configFile: nil, environment: environment)
  }

  /// A store at `home` with `bars` as RW-1m and the spec registered.
  func liveStore(_ home: String, bars: BarSeries) throws -> OperationContext {
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    try database.write { db in
      _ = try QtoolDatabase.storeBars(
        db,
        into: DatasetDefinition(name: "RW-1m", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported"),
        bars, at: 0)
    }
    let context = OperationContext(database: database)
    _ = try StrategyOperations(context).register(name: "live-bench", path: nil, text: Self.liveSpec)
    return context
  }

  static func percentile(_ values: [Double], _ p: Double) -> Double {
    let sorted = values.sorted()
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
  }

  /// Replays 10,000 bars (the account trading from the first, so every bar re-runs the engine
  /// over all the history before it) with a webhook channel on a loopback server.
  func liveLatency() throws {
    let home = scratch.appendingPathComponent("live-latency").path
    let bars = Self.randomWalk(count: 10_000, seed: 21)
    let context = try liveStore(home, bars: bars)
    let server = try LoopbackServer()
    defer { server.stop() }
    let arrivals = Mutex<[String: UInt64]>([:])
    server.on(path: "/hook") { request, _ in
      if let id = request.headers["webhook-id"] { arrivals.withLock { $0[id] = DispatchTime.now().uptimeNanoseconds } }
      return .text("ok")
    }
    _ = try LiveOperations(context).addChannel(ChannelRequest(name: "hook", kind: .webhook, config: ChannelConfig(url: server.baseURL + "/hook")))
    let marks = Mutex<(last: UInt64, perBar: [(bar: Int, nanoseconds: UInt64)], committed: [String: UInt64])>((0, [], [:]))
    let runner = LiveRunner(
      LiveRunRequest(strategy: .registered(name: "live-bench", version: nil), feed: .replay), settings: try liveSettings(home), context: context
    ) { event in
      let now = DispatchTime.now().uptimeNanoseconds
      marks.withLock { state in
        switch event {
        case .running: state.last = now
        case .signal(let signal): state.committed[signal.id] = now
        case .bar:
          state.perBar.append((state.perBar.count, now - state.last))
          state.last = now
        default: break
        }
      }
    }
    _ = try runner.run()
    let (perBar, committed) = marks.withLock { ($0.perBar, $0.committed) }
    // Bars 9,000 on: each decided over at least 9,000 bars of history.
    let late = perBar.filter { $0.bar >= 9_000 }.map { Double($0.nanoseconds) / 1e6 }
    let strategy = try CompiledStrategy(try StrategyLoader.parse(Self.liveSpec, origin: "bench").spec)
    var engine = Double.infinity
    for _ in 0..<5 { engine = min(engine, try time { _ = Backtester.run(strategy, bars: bars) }) }
    report("engine alone over 10k bars (baseline)", String(format: "%.2f ms", engine * 1000))
    report(
      "bar final → signal committed, p50", String(format: "%.2f ms", Self.percentile(late, 0.5)),
      String(format: "target < 5 ms; %.1f× the engine alone (bars 9k–10k of a 10k replay)", Self.percentile(late, 0.5) / (engine * 1000)))
    report("bar final → signal committed, p99", String(format: "%.2f ms", Self.percentile(late, 0.99)), "target < 20 ms")

    // Every signal's webhook has arrived once the runner has stopped (it flushes what is due).
    let received = arrivals.withLock { $0 }
    let delays = committed.compactMap { id, at in received[id].map { Double(Int64($0) - Int64(at)) / 1e6 } }
    let client = HTTPClient(settings: HTTPSettings(userAgent: "bench", minimumSpeed: 1, maxRedirects: 0))
    var roundTrips: [Double] = []
    for _ in 0..<50 {
      let start = DispatchTime.now().uptimeNanoseconds
      _ = client.fetchAll([HTTPRequest(url: server.baseURL + "/hook", body: Data("{}".utf8))], concurrency: 1)
      roundTrips.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
    }
    report("loopback POST round trip, p50 (baseline)", String(format: "%.2f ms", Self.percentile(roundTrips, 0.5)))
    report(
      "signal committed → webhook received, p50", String(format: "%.2f ms", Self.percentile(delays, 0.5)),
      "\(delays.count) of \(committed.count) signals received")
    report(
      "signal committed → webhook received, p99", String(format: "%.2f ms", Self.percentile(delays, 0.99)),
      String(format: "target < 50 ms; %.1f× a bare round trip's p50", Self.percentile(delays, 0.99) / Self.percentile(roundTrips, 0.5)))
  }

  /// The store feed: a bar committed by another connection (as by another process's `data
  /// download`) → the runner's decision on it committed. The runner polls the store's data
  /// version every 100 ms (the baseline), so bars arriving at random times wait 50 ms on average.
  func liveStoreFeed() throws {
    let home = scratch.appendingPathComponent("live-store").path
    let initial = 2_000
    let bars = Self.randomWalk(count: initial + 40, seed: 31)
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    let definition = DatasetDefinition(
      name: "RW-1m", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported")
    try database.write { db in _ = try QtoolDatabase.storeBars(db, into: definition, bars.slice(0..<initial), at: 0) }
    let context = OperationContext(database: database)
    _ = try StrategyOperations(context).register(name: "live-bench", path: nil, text: Self.liveSpec)
    let seen = Mutex<[Int64: UInt64]>([:])
    let runner = LiveRunner(
      LiveRunRequest(strategy: .registered(name: "live-bench", version: nil), feed: .store, from: bars.timestamps[0]),
      settings: try liveSettings(home),
      context: context
    ) { event in
      if case .bar(let time, _, _) = event { seen.withLock { $0[time] = DispatchTime.now().uptimeNanoseconds } }
    }
    let done = DispatchSemaphore(value: 0)
    Thread {
      _ = try? runner.run()
      done.signal()
    }.start()
    defer {
      runner.stop()
      done.wait()
    }
    var deadline = Date().addingTimeInterval(120)
    while seen.withLock({ $0[bars.timestamps[initial - 1]] }) == nil, Date() < deadline { usleep(1_000) }
    let writer = try QtoolDatabase.open(path: home + "/qtool.db")  // another connection, as another process's
    var delays: [Double] = []
    var generator = SystemRandomNumberGenerator()
    for k in initial..<bars.count {
      usleep(UInt32.random(in: 0..<100_000, using: &generator))  // at any point of the runner's poll
      let start = DispatchTime.now().uptimeNanoseconds
      try writer.write { db in _ = try QtoolDatabase.storeBars(db, into: definition, bars.slice(k..<(k + 1)), at: 0) }
      deadline = Date().addingTimeInterval(5)
      while seen.withLock({ $0[bars.timestamps[k]] }) == nil, Date() < deadline { usleep(200) }
      guard let at = seen.withLock({ $0[bars.timestamps[k]] }) else {
        print("  store feed: a stored bar was not decided within 5 s")
        return
      }
      delays.append(Double(at - start) / 1e6)
    }
    report("store feed poll interval (baseline)", "100 ms")
    report(
      "bar stored elsewhere → decided, p50", String(format: "%.1f ms", Self.percentile(delays, 0.5)),
      String(format: "%d bars over %d of history; %.2f× the poll interval", delays.count, initial, Self.percentile(delays, 0.5) / 100))
    report(
      "bar stored elsewhere → decided, max", String(format: "%.1f ms", delays.max()!),
      String(format: "target < 500 ms; %.2f× the poll interval", delays.max()! / 100))
  }

  /// 100 strategies (fast 5…104) on five years of hourly bars, each account caught up to the
  /// bar before the last; the last bar arrives and each runner processes it.
  func liveManyRunners() throws {
    let home = scratch.appendingPathComponent("live-many").path
    let count = 5 * 365 * 24
    var bars = Self.randomWalk(count: count, seed: 23)
    bars.timestamps = bars.timestamps.indices.map { 1_420_070_400_000 + Int64($0) * 3_600_000 }
    let database = try QtoolDatabase.open(path: home + "/qtool.db")
    let definition = DatasetDefinition(
      name: "RW-1h", source: "bench", symbol: "RW", timeframe: Timeframe("1h")!, calendar: .allDays, origin: "imported")
    try database.write { db in _ = try QtoolDatabase.storeBars(db, into: definition, bars.slice(0..<(count - 1)), at: 0) }
    let context = OperationContext(database: database)
    let runners = 100
    let history = bars.slice(0..<(count - 1))
    for k in 0..<runners {
      let text = Self.liveSpec.replacingOccurrences(of: "name: live-bench", with: "name: many-\(k)").replacingOccurrences(
        of: "timeframe: 1m", with: "timeframe: 1h"
      )
      .replacingOccurrences(of: "fast: 10", with: "fast: \(5 + k)").replacingOccurrences(of: "slow: 30", with: "slow: \(120 + k)")
      _ = try StrategyOperations(context).register(name: "many-\(k)", path: nil, text: text)
      // Where its account stands after the bar before the last: what a runner would have left.
      let strategy = try CompiledStrategy(try StrategyLoader.parse(text, origin: "bench").spec)
      let outcome = Backtester.run(strategy, bars: history)
      let last = history.timestamps[count - 2]
      let positions = outcome.openPositions.map {
        PaperPositionRecord(
          symbol: "RW", side: $0.side, size: $0.size, entryTs: $0.entryTime, entryPrice: $0.entryPrice, peak: $0.peak, stop: $0.stop,
          target: $0.target)
      }
      let equity = outcome.equity.last!
      let cash = equity - positions.reduce(0) { $0 + $1.size * history.close[count - 2] }
      try database.createAccount(
        PaperAccountRecord(
          id: "pa_many\(k)", strategyName: "many-\(k)", strategyVersion: 1, specHash: ContentHash.sha256Hex(Data(text.utf8)), specText: text,
          params: "{}", capital: 10_000, timeframe: "1h", symbols: "[\"RW\"]", datasets: "[\"RW-1h\"]", source: "bench", fromTs: nil, cash: 10_000,
          equity: 10_000, createdAt: 0, updatedAt: 0), closingOpen: false)
      _ = try database.commitBar(
        BarCommit(
          accountID: "pa_many\(k)", runID: nil, barTs: last, cash: cash, equity: equity, halted: outcome.halted, positions: positions, fills: [],
          signals: [], notify: false, now: 0))
    }
    try database.write { db in _ = try QtoolDatabase.storeBars(db, into: definition, bars.slice((count - 1)..<count), at: 0) }

    let settings = try liveSettings(home)
    var perBar: [Double] = []
    var total: [Double] = []
    for k in 0..<runners {
      let cpu = Mutex<(start: Double, running: Double, bar: Double)>((0, 0, 0))
      let runner = LiveRunner(
        LiveRunRequest(strategy: .registered(name: "many-\(k)", version: nil), feed: .store, once: true), settings: settings, context: context
      ) { event in
        switch event {
        case .running: cpu.withLock { $0.running = Self.threadCPU() }
        case .bar: cpu.withLock { $0.bar = Self.threadCPU() }
        default: break
        }
      }
      let start = Self.threadCPU()
      let summary = try runner.run()
      let end = Self.threadCPU()
      precondition(summary.barsProcessed == 1, "each runner processes the new bar")
      let marks = cpu.withLock { $0 }
      perBar.append((marks.bar - marks.running) * 1000)
      total.append((end - start) * 1000)
    }
    let strategy = try CompiledStrategy(
      try StrategyLoader.parse(Self.liveSpec.replacingOccurrences(of: "timeframe: 1m", with: "timeframe: 1h"), origin: "bench").spec)
    let engineStart = Self.threadCPU()
    for _ in 0..<10 { _ = Backtester.run(strategy, bars: bars) }
    let engine = (Self.threadCPU() - engineStart) * 100
    report("engine alone over 5 y of 1h bars (baseline)", String(format: "%.2f ms CPU", engine))
    report(
      "CPU per runner per bar (100, 5 y of 1h)", String(format: "%.2f ms", perBar.reduce(0, +) / Double(runners)),
      String(
        format: "target < 10 ms (max %.2f); %.1f× the engine alone; load + decide + commit; 43.8k bars each", perBar.max()!,
        perBar.reduce(0, +) / Double(runners) / engine))
    report(
      "  with each runner's start and stop", String(format: "%.2f ms", total.reduce(0, +) / Double(runners)),
      "lease, account, run row, dispatcher, the bar, the end")
  }

  static func threadCPU() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
  }

  /// The release binary: a replay runner's peak memory, and `strategy stop` → process gone.
  func liveProcess() throws {
    guard FileManager.default.isExecutableFile(atPath: qtool) else {
      print("  qtool not built next to the benchmark: run `make bench`")
      return
    }
    let home = scratch.appendingPathComponent("live-process").path
    let context = try liveStore(home, bars: Self.randomWalk(count: 10_000, seed: 29))
    let version = try childUsage(["QTOOL_HOME=\(home)", qtool, "--version"])
    let replay = try childUsage(["QTOOL_HOME=\(home)", qtool, "strategy", "run", "live-bench", "--feed", "replay", "-q"])
    let status = try childUsage(["QTOOL_HOME=\(home)", qtool, "strategy", "status", "-q"])
    report("qtool --version peak RSS (baseline)", String(format: "%.1f MB", version.rss), String(format: "%.1f MB anonymous", version.anonymous))
    report(
      "strategy status peak RSS (baseline)", String(format: "%.1f MB", status.rss),
      String(format: "%.1f MB anonymous; opens the store", status.anonymous))
    report(
      "runner peak RSS (10k-bar replay)", String(format: "%.1f MB", replay.rss),
      String(format: "target < 40 MB; %.1f× `strategy status`; the replay took %.2f s", replay.rss / status.rss, replay.seconds))
    report(
      "  of which anonymous (its own memory)", String(format: "%.1f MB", replay.anonymous),
      "the rest: pages of the binary and libraries, shared by every runner")
    // The same replay notifying a webhook channel on a loopback server (curl and TLS set up).
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on(path: "/hook") { _, _ in .text("ok") }
    _ = try LiveOperations(context).addChannel(ChannelRequest(name: "hook", kind: .webhook, config: ChannelConfig(url: server.baseURL + "/hook")))
    let notifying = try childUsage(["QTOOL_HOME=\(home)", qtool, "strategy", "run", "live-bench", "--feed", "replay", "--new-account", "-q"])
    let received = server.requests.count
    let outbox = try context.database.notificationHistory(channel: "hook", status: nil, limit: 100_000)
    let statuses = Dictionary(grouping: outbox, by: { $0.0.status }).mapValues(\.count)
    let failures = Dictionary(grouping: outbox.flatMap(\.1).compactMap(\.error), by: { String($0.prefix(60)) }).mapValues(\.count)
    print(
      "    outbox after the run: \(statuses.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))"
        + (failures.isEmpty ? "" : "; failed attempts: \(failures)"))
    report(
      "runner peak RSS, webhook channel", String(format: "%.1f MB", notifying.rss),
      String(format: "target < 40 MB; %.1f MB anonymous; %d webhooks received", notifying.anonymous, received))
    _ = try LiveOperations(context).removeChannel(named: "hook")

    var stops: [Double] = []
    for _ in 0..<5 {
      let started = Pipe()
      let start = Process()
      start.executableURL = URL(fileURLWithPath: qtool)
      start.arguments = ["strategy", "start", "live-bench", "--feed", "store", "--json"]
      start.environment = ["QTOOL_HOME": home, "XDG_CONFIG_HOME": home + "/config", "HOME": home, "PATH": "/usr/bin:/bin"]
      start.standardOutput = started
      start.standardError = FileHandle.nullDevice
      try start.run()
      let output = started.fileHandleForReading.readDataToEndOfFile()
      start.waitUntilExit()
      guard let object = try JSONSerialization.jsonObject(with: output) as? [String: Any], let pid = object["pid"] as? Int else {
        print("  strategy start failed; no stop figure")
        return
      }
      usleep(300_000)
      let begin = DispatchTime.now().uptimeNanoseconds
      try spawnAndWait("/usr/bin/env", ["QTOOL_HOME=\(home)", "XDG_CONFIG_HOME=\(home)/config", qtool, "strategy", "stop", "live-bench"])
      // Detached, it was adopted by init (or a subreaper), which reaps when it gets to it: an
      // exited process (a zombie) is gone.
      while kill(pid_t(pid), 0) == 0, !Self.exited(pid_t(pid)) { usleep(1_000) }
      stops.append(Double(DispatchTime.now().uptimeNanoseconds - begin) / 1e9)
    }
    let baseline = try medianRunTime("/usr/bin/env", ["QTOOL_HOME=\(home)", qtool, "strategy", "status", "-q"], runs: 5)
    report("strategy status round trip (baseline)", ms(baseline))
    report(
      "strategy stop → runner process gone", String(format: "%.0f ms", stops.max()! * 1000),
      String(format: "worst of %d; target < 1 s; %.1f× the baseline", stops.count, stops.max()! / baseline))
  }

  /// True when `pid` has exited and waits to be reaped (state Z), or is gone.
  static func exited(_ pid: pid_t) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
    // The state follows the command's closing parenthesis.
    guard let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
  }

  /// Peak memory (MB) and wall time of a child process: its `VmHWM`, read every half
  /// millisecond until it exits. Not wait4's `ru_maxrss`: posix_spawn starts the child on this
  /// process's memory (vfork), and Linux keeps that high-water mark across the exec, so every
  /// child would report at least this benchmark's own peak.
  func childUsage(_ arguments: [String]) throws -> (rss: Double, anonymous: Double, seconds: Double) {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
    defer { argv.forEach { free($0) } }
    var pid = pid_t()
    let start = DispatchTime.now().uptimeNanoseconds
    guard posix_spawn(&pid, "/usr/bin/env", &actions, nil, argv, environ) == 0 else { throw CocoaError(.executableLoad) }
    var peakKiB = 0.0
    var anonymousKiB = 0.0
    var status: Int32 = 0
    func field(_ text: String, _ name: String) -> Double? {
      guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return nil }
      return Double(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    }
    while true {
      if let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
        peakKiB = max(peakKiB, field(text, "VmHWM") ?? 0)
        anonymousKiB = max(anonymousKiB, field(text, "RssAnon") ?? 0)
      }
      let result = waitpid(pid, &status, WNOHANG)
      if result == pid || (result < 0 && errno != EINTR) { break }
      usleep(500)
    }
    return (peakKiB / 1024, anonymousKiB / 1024, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
  }
}
