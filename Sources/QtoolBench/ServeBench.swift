import Foundation
import QtoolCore
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// `qtool serve` on loopback: throughput with wrk (bounded: a few seconds per figure), the
/// latency of answering 202 for a backtest and its time against the CLI's, 100 SSE subscribers,
/// idle memory and the time from start to ready.
extension Bench {
  struct Server {
    var process: Process
    var port: Int
    var home: String
    var base: String { "http://127.0.0.1:\(port)" }
  }

  func serve() throws {
    print("\nserve (loopback; wrk 2 threads, 64 connections, 5 s per figure)")
    guard FileManager.default.isExecutableFile(atPath: qtool) else {
      print("  qtool not built next to the benchmark: run `make bench`")
      return
    }
    let home = scratch.appendingPathComponent("serve").path
    let environment = [
      "QTOOL_HOME": home, "XDG_CONFIG_HOME": home + "/config", "QTOOL_SERVE_RATE_DEFAULT": "100000000/min",
      "QTOOL_SERVE_RATE_AUTH": "100000/min", "QTOOL_SERVE_BCRYPT_COST": "4",
    ]
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    _ = try run(qtool, ["data", "import", root.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path, "--symbol", "GOOG", "--timeframe", "1d"], environment)
    _ = try run(qtool, ["strategy", "new", "goog-sma", "--template", "sma_crossover", "--symbol", "GOOG", "-o", home + "/goog-sma.yaml"], environment)
    let token = try run(qtool, ["auth", "token", "create", "bench", "--scopes", "*"], environment).trimmingCharacters(in: .whitespacesAndNewlines)
    // 100,000 signals, written through the store as a runner writes them (one bar's commit),
    // before the server starts: its watcher publishes only what is stored after.
    let store = try QtoolDatabase.open(path: home + "/qtool.db")
    let seeded = Date()
    let account = try benchSignalAccount(store)
    _ = try store.commitBar(benchSignals(account: account, bar: 1, ids: (0..<100_000).map { "bench-\($0)" }))
    let seedSeconds = Date().timeIntervalSince(seeded)

    // Start → /readyz 200, and the memory of the idle server.
    let started = Date()
    let server = try startServer(environment, home: home)
    defer {
      server.process.terminate()
      server.process.waitUntilExit()
    }
    // Polled over a socket of our own: a curl process per try would add its own start-up.
    while rawStatus(port: server.port, path: "/readyz") != 200, Date().timeIntervalSince(started) < 10 { usleep(1_000) }
    let ready = Date().timeIntervalSince(started)
    report("start → /readyz 200", ms(ready), "target < 500 ms (includes opening and migrating the store)")
    usleep(300_000)
    report("idle RSS", String(format: "%.1f MB", residentMB(server.process.processIdentifier)), "target < 50 MB")

    guard FileManager.default.isExecutableFile(atPath: "/usr/bin/wrk") else {
      print("  wrk is not installed (make bench installs it): throughput figures skipped")
      return
    }
    let health = try wrk(server.base + "/healthz", headers: [])
    report("GET /healthz", String(format: "%.0f req/s", health.rate), "target ≥ 25k; p99 \(health.p99)")
    let access = try accessToken(server, environment)
    let jwt = try wrk(server.base + "/api/v1/strategies", headers: ["Authorization: Bearer \(access)"])
    report("GET /api/v1/strategies with a JWT", String(format: "%.0f req/s", jwt.rate), "target ≥ 8k; \(String(format: "%.2f", jwt.rate / max(health.rate, 1)))× /healthz (the baseline); p99 \(jwt.p99)")
    let apiToken = try wrk(server.base + "/api/v1/strategies", headers: ["Authorization: Bearer \(token)"])
    report("GET /api/v1/strategies with an API token", String(format: "%.0f req/s", apiToken.rate), "\(String(format: "%.2f", apiToken.rate / max(health.rate, 1)))× /healthz; p99 \(apiToken.p99) (a store read per request)")
    let signals = try wrk(server.base + "/api/v1/signals?size=100", headers: ["Authorization: Bearer \(access)"])
    report(
      "GET /api/v1/signals?size=100 (100k stored)", String(format: "%.0f req/s", signals.rate),
      "target ≥ 3k; \(String(format: "%.2f", signals.rate / max(health.rate, 1)))× /healthz; p99 \(signals.p99); with a JWT"
        + " (stored in \(ms(seedSeconds)))")
    let signalsToken = try wrk(server.base + "/api/v1/signals?size=100", headers: ["Authorization: Bearer \(token)"])
    report(
      "  … with an API token", String(format: "%.0f req/s", signalsToken.rate),
      "\(String(format: "%.2f", signalsToken.rate / max(apiToken.rate, 1)))× GET /strategies with the token; p99 \(signalsToken.p99)")

    // POST /backtests: the 202's latency, and the job's time against the CLI's.
    var accepted: [Double] = []
    var jobSeconds: [Double] = []
    for _ in 0..<100 {
      // The time curl measured from connecting to the last byte of the 202 (not its own start-up).
      let answer = try http("POST", server.base + "/api/v1/backtests", token: token, body: #"{"strategy": "goog-sma"}"#)
      accepted.append(answer.seconds)
      guard let id = ((try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["id"] as? String
      else { continue }
      while true {
        let job = try http("GET", server.base + "/api/v1/jobs/\(id)", token: token)
        let data = (try? JSONSerialization.jsonObject(with: Data(job.body.utf8)) as? [String: Any])?["data"] as? [String: Any]
        if let status = data?["status"] as? String, status != "running" {
          jobSeconds.append(data?["seconds"] as? Double ?? 0)
          break
        }
        usleep(2_000)
      }
    }
    accepted.sort()
    report("POST /api/v1/backtests → 202", ms(accepted[Int(Double(accepted.count - 1) * 0.99)]) + " p99", "target < 20 ms (median \(ms(accepted[accepted.count / 2])))")
    var cli: [Double] = []
    for _ in 0..<11 {
      let output = try run(qtool, ["backtest", "run", "goog-sma", "--json"], environment)
      let job = ((try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])?["job_id"] as? String) ?? ""
      let shown = try run(qtool, ["jobs", "show", job, "--json"], environment)
      cli.append(((try? JSONSerialization.jsonObject(with: Data(shown.utf8)) as? [String: Any])?["seconds"] as? Double) ?? 0)
    }
    let served = jobSeconds.sorted()[jobSeconds.count / 2]
    let direct = cli.sorted()[cli.count / 2]
    report(
      "backtest job in the server vs the CLI", String(format: "%.2f×", served / max(direct, 0.001)),
      "target ≤ 1.10× (median job \(ms(served)) vs \(ms(direct)) in `backtest run`)")

    // 100 SSE subscribers: from a job's end in the store to each subscriber.
    let subscribers = (0..<100).map { _ in SSEReader(url: server.base + "/api/v1/stream/jobs", token: token) }
    usleep(500_000)
    let answer = try http("POST", server.base + "/api/v1/backtests?wait=true", token: token, body: #"{"strategy": "goog-sma"}"#)
    let jobID = ((try? JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["job_id"] as? String ?? ""
    let shown = try http("GET", server.base + "/api/v1/jobs/\(jobID)", token: token)
    let finished = ((try? JSONSerialization.jsonObject(with: Data(shown.body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["finished_at"] as? String
    let finishedAt = finished.flatMap { TimestampParser.parse($0) }.map { Double($0) / 1000 } ?? 0
    usleep(1_000_000)
    var delays = subscribers.compactMap { $0.arrival(of: "\"status\":\"completed\"", job: jobID) }.map { ($0 - finishedAt) * 1000 }
    subscribers.forEach { $0.stop() }
    delays.sort()
    if delays.isEmpty {
      report("100 SSE subscribers: end of a job → event", "no event arrived")
    } else {
      report(
        "100 SSE subscribers: end of a job → event", String(format: "%.0f ms p99", delays[Int(Double(delays.count - 1) * 0.99)]),
        "\(delays.count)/100 received; the server publishes its own jobs' ends at once, others' within a 100 ms poll")
    }
    try sseSignals(server, token: token, store: store, account: account)
  }

  /// The account the benchmark's signals belong to (a signal names its paper account).
  func benchSignalAccount(_ store: QtoolDatabase) throws -> String {
    let id = "bench-signals"
    try store.createAccount(
      PaperAccountRecord(
        id: id, strategyName: "bench-signals", strategyVersion: 1, specHash: "-", specText: "", params: "{}", capital: 10_000, timeframe: "1d",
        symbols: #"["GOOG"]"#, datasets: #"["GOOG-1d"]"#, source: nil, fromTs: nil, cash: 10_000, equity: 10_000, createdAt: 0, updatedAt: 0),
      closingOpen: true)
    return id
  }

  /// One bar's commit carrying a signal per id (as a runner commits a bar's signals).
  func benchSignals(account: String, bar: Int64, ids: [String]) -> BarCommit {
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let signals = ids.enumerated().map { index, id in
      SignalRecord(
        id: id, accountID: account, runID: nil, strategyName: "bench-signals", strategyVersion: 1, symbol: ["GOOG", "AAPL", "MSFT"][index % 3],
        timeframe: "1d", source: "bench", feed: "store", barTs: bar * 86_400_000 + Int64(index), type: index % 2 == 0 ? "BUY" : "SELL",
        action: index % 2 == 0 ? "enter_long" : "exit_long", reason: "rule", strengthRaw: Double(index % 101), strengthLevel: "strong",
        price: 100 + Double(index % 50), indicators: #"{"sma_fast": 101.5, "sma_slow": 99.25}"#, late: false, suppressed: false, createdAt: now)
    }
    return BarCommit(
      accountID: account, runID: nil, barTs: bar * 86_400_000, cash: 10_000, equity: 10_000, halted: false, positions: [], fills: [],
      signals: signals, notify: false, now: now)
  }

  /// 100 subscribers of `/api/v1/stream/signals`; 20 signals committed by this process (as a
  /// runner in a shell commits them), a random 50–150 ms apart: from each commit's return to
  /// its event at each subscriber.
  func sseSignals(_ server: Server, token: String, store: QtoolDatabase, account: String) throws {
    let subscribers = (0..<100).map { _ in SSEReader(url: server.base + "/api/v1/stream/signals", token: token) }
    usleep(1_000_000)
    var committed: [String: Double] = [:]
    for k in 0..<20 {
      let id = "bench-live-\(k)"
      _ = try store.commitBar(benchSignals(account: account, bar: 2 + Int64(k), ids: [id]))
      committed[id] = Date().timeIntervalSince1970
      usleep(useconds_t.random(in: 50_000...150_000))
    }
    usleep(1_000_000)
    var delays: [Double] = []
    for subscriber in subscribers {
      for (id, time) in committed {
        if let arrived = subscriber.arrival(line: "id: \(id)") { delays.append((arrived - time) * 1000) }
      }
    }
    subscribers.forEach { $0.stop() }
    delays.sort()
    guard !delays.isEmpty else {
      report("100 SSE subscribers: signal stored → event", "no event arrived")
      return
    }
    report(
      "100 SSE subscribers: signal stored → event", String(format: "%.1f ms p99", delays[Int(Double(delays.count - 1) * 0.99)]),
      "target < 50 ms; median \(String(format: "%.1f ms", delays[delays.count / 2])); \(delays.count)/\(100 * committed.count) received"
        + " (committed by another process)")
  }

  func startServer(_ environment: [String: String], home: String) throws -> Server {
    let portFile = home + "/port"
    try? FileManager.default.removeItem(atPath: portFile)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: qtool)
    process.arguments = ["serve", "--port", "0", "--port-file", portFile]
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    process.standardError = FileHandle.nullDevice
    try process.run()
    let deadline = Date().addingTimeInterval(10)
    var port = 0
    while port == 0, Date() < deadline, process.isRunning {
      port = Int((try? String(contentsOfFile: portFile, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
      usleep(1_000)
    }
    return Server(process: process, port: port, home: home)
  }

  func accessToken(_ server: Server, _ environment: [String: String]) throws -> String {
    let password = "bench-password"
    let add = Process()
    add.executableURL = URL(fileURLWithPath: qtool)
    add.arguments = ["auth", "user", "add", "bench", "--role", "admin", "--password-stdin"]
    add.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let input = Pipe()
    add.standardInput = input
    add.standardOutput = FileHandle.nullDevice
    try add.run()
    input.fileHandleForWriting.write(Data((password + "\n").utf8))
    try? input.fileHandleForWriting.close()
    add.waitUntilExit()
    let login = try http("POST", server.base + "/api/v1/auth/login", body: #"{"username": "bench", "password": "\#(password)"}"#)
    return ((try? JSONSerialization.jsonObject(with: Data(login.body.utf8)) as? [String: Any])?["data"] as? [String: Any])?["access_token"] as? String ?? ""
  }

  func residentMB(_ pid: Int32) -> Double {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
      let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return .nan }
    return (Double(line.split(separator: " ").dropFirst().first ?? "") ?? .nan) / 1024
  }

  /// wrk for 5 s: requests per second and the p99 latency as wrk prints it.
  func wrk(_ url: String, headers: [String]) throws -> (rate: Double, p99: String) {
    let output = try run("/usr/bin/wrk", ["-t2", "-c64", "-d5s", "--latency"] + headers.flatMap { ["-H", $0] } + [url], [:])
    let rate = output.split(separator: "\n").first { $0.hasPrefix("Requests/sec:") }.flatMap { Double($0.split(separator: " ").last ?? "") } ?? 0
    let p99 = output.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("99%") }
      .map { String($0.split(separator: " ").last ?? "") } ?? "?"
    return (rate, p99)
  }

  @discardableResult
  func run(_ path: String, _ arguments: [String], _ environment: [String: String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
  }

  /// A request through curl: the status, the body, and the seconds curl took for it (from
  /// starting to connect to the last byte).
  func http(_ method: String, _ url: String, token: String? = nil, body: String? = nil) throws -> (status: Int, body: String, seconds: Double) {
    var arguments = ["-s", "-X", method, "-w", "\n%{http_code} %{time_total}", url]
    if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
    if let body { arguments += ["-H", "Content-Type: application/json", "--data-binary", body] }
    let text = try run("/usr/bin/curl", arguments, [:])
    let newline = text.lastIndex(of: "\n") ?? text.startIndex
    let figures = text[text.index(after: newline)...].split(separator: " ")
    return (Int(figures.first ?? "") ?? 0, String(text[..<newline]), Double(figures.last ?? "") ?? .nan)
  }

  /// The status of `GET path` on 127.0.0.1:`port` over a plain socket (0 when it cannot connect).
  func rawStatus(port: Int, path: String) -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { return 0 }
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { return 0 }
    let request = Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
    guard write(socket, request, request.count) == request.count else { return 0 }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = read(socket, &buffer, buffer.count)
    guard count >= 12 else { return 0 }
    return Int(String(decoding: buffer[9..<12], as: UTF8.self)) ?? 0
  }
}

/// One SSE subscriber (curl), noting when each line arrives.
final class SSEReader: @unchecked Sendable {
  private let process = Process()
  private let lock = NSLock()
  private var lines: [(time: Double, text: String)] = []
  private var partial = ""

  init(url: String, token: String) {
    process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
    process.arguments = ["-sN", "--max-time", "30", "-H", "Authorization: Bearer \(token)", url]
    let out = Pipe()
    process.standardOutput = out
    out.fileHandleForReading.readabilityHandler = { [weak self] handle in
      let chunk = handle.availableData
      guard let self, !chunk.isEmpty else { return }
      let now = Date().timeIntervalSince1970
      self.lock.lock()
      self.partial += String(decoding: chunk, as: UTF8.self)
      while let newline = self.partial.firstIndex(of: "\n") {
        self.lines.append((now, String(self.partial[..<newline])))
        self.partial = String(self.partial[self.partial.index(after: newline)...])
      }
      self.lock.unlock()
    }
    try? process.run()
  }

  /// When the first data line about `job` containing `text` arrived.
  func arrival(of text: String, job: String) -> Double? {
    lock.lock()
    defer { lock.unlock() }
    return lines.first { $0.text.hasPrefix("data: ") && $0.text.contains(text) && $0.text.contains(job) }?.time
  }

  /// When `line` arrived (first time).
  func arrival(line: String) -> Double? {
    lock.lock()
    defer { lock.unlock() }
    return lines.first { $0.text == line }?.time
  }

  func stop() {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
  }
}
