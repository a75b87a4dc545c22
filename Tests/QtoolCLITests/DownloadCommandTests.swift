import Foundation
import QtoolData
import QtoolTestSupport
import Testing

/// `qtool data download` against a real loopback server serving recorded responses.
@Suite struct DownloadCommandTests {
  static let archiveRoot = sharedData.appendingPathComponent("binance_vision")
  static let monthly = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-"

  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func symbols(_ result: QtoolProcess.Result) throws -> [[String: Any]] { try json(result.stdout)["symbols"] as! [[String: Any]] }

  func bulk(_ qtool: QtoolProcess, _ server: LoopbackServer, _ extra: [String]) throws -> QtoolProcess.Result {
    try qtool.run(
      ["data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--retries", "3", "--json"] + extra,
      environment: ["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
  }

  @Test func bulkArchivesAcrossTheTimestampSwitchThenNothingTheSecondTime() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    let first = try bulk(qtool, server, ["--from", "2024-11-01", "--to", "2025-02-01"])
    #expect(first.status == 0, "\(first.stderr)")
    let report = try symbols(first)[0]
    #expect(report["bars_added"] as? Int == 92)
    #expect(report["status"] as? String == "downloaded")
    #expect(server.requests.filter { $0.path.hasSuffix(".CHECKSUM") }.count == 3, "every archive is checked")
    let verify = try qtool.run(["data", "verify", "BTCUSDT-1d"])
    #expect(verify.stdout == "BTCUSDT-1d: ok — 92 bars, 24x7 calendar\n")

    let requestsBefore = server.requests.count
    let second = try qtool.run(
      ["data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--to", "2025-02-01"],
      environment: ["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
    #expect(second.status == 0)
    #expect(second.stdout == "BTCUSDT-1d: up to date, nothing to download\n")
    #expect(server.requests.count == requestsBefore)
  }

  @Test func aGapInTheMiddleIsFilled() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-03.zip") { _, hit in hit == 1 ? .text("gone", status: 404) : nil }
    let first = try bulk(qtool, server, ["--from", "2024-02-01", "--to", "2024-05-01"])
    #expect(try symbols(first)[0]["bars_added"] as? Int == 59)
    #expect(first.status == 75, "a month missing in the middle is a hole until it is published")
    let gaps = try JSONSerialization.jsonObject(with: Data(try qtool.run(["data", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(gaps[0]["gaps"] as? Int == 1)
    let second = try bulk(qtool, server, ["--to", "2024-05-01"])
    let report = try symbols(second)[0]
    #expect(report["bars_added"] as? Int == 31)
    #expect(report["gaps_filled"] as? Int == 1)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(server.requests.filter { $0.path.hasSuffix(".zip") }.count == 4, "only March is fetched again")
  }

  @Test func interruptedTransferResumesWithRange() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-05.zip") { request, hit in
      guard hit == 1 else { return nil }
      var reply = server.file(request)
      reply.cutAfter = 600
      return reply
    }
    let result = try bulk(qtool, server, ["--from", "2024-05-01", "--to", "2024-06-01"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try symbols(result)[0]["bars_added"] as? Int == 31)
    #expect(server.requests.contains { $0.headers["range"] == "bytes=600-" })
  }

  @Test func badChecksumStoresNothingOfThatFileAndExits75() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-07.zip.CHECKSUM") { _, _ in .text(String(repeating: "0", count: 64) + "  BTCUSDT-1d-2024-07.zip") }
    let result = try bulk(qtool, server, ["--from", "2024-06-01", "--to", "2024-09-01"])
    #expect(result.status == 75)
    let report = try symbols(result)[0]
    #expect(report["status"] as? String == "failed")
    #expect((report["error"] as? String)?.contains("does not match its .CHECKSUM") == true)
    #expect(report["bars_added"] as? Int == 61, "June and August are stored, July is not")
  }

  /// Checksums and archives share the transfer pool: an archive that arrives before its
  /// checksum waits for it, and is still verified.
  @Test func archivesArrivingBeforeTheirChecksumsAreStillVerified() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(Self.monthly) { request, _ in
      guard request.path.hasSuffix(".CHECKSUM") else { return server.file(request) }
      var reply =
        request.path.contains("2024-07")
        ? .text(String(repeating: "0", count: 64) + "  BTCUSDT-1d-2024-07.zip") : server.file(request)
      reply.delay = 0.3
      return reply
    }
    let result = try bulk(qtool, server, ["--from", "2024-06-01", "--to", "2024-09-01", "--jobs", "4"])
    #expect(result.status == 75)
    let report = try symbols(result)[0]
    #expect((report["error"] as? String)?.contains("does not match its .CHECKSUM") == true)
    #expect(report["bars_added"] as? Int == 61, "June and August are stored, July is not")
    #expect(server.requests.filter { $0.path.hasSuffix(".CHECKSUM") }.count == 3)
  }

  @Test func truncatedArchiveIsRejected() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    let zip = try Data(contentsOf: Self.archiveRoot.appendingPathComponent(String((Self.monthly + "2024-09.zip").dropFirst())))
    let truncated = zip.prefix(zip.count / 2)  // cut inside the compressed data
    server.on(path: Self.monthly + "2024-09.zip") { _, _ in LoopbackServer.Reply(body: truncated) }
    server.on(path: Self.monthly + "2024-09.zip.CHECKSUM") { _, _ in .text(ContentHash.sha256Hex(truncated) + "  BTCUSDT-1d-2024-09.zip") }
    let result = try bulk(qtool, server, ["--from", "2024-09-01", "--to", "2024-10-01"])
    #expect(result.status != 0)
    #expect((try symbols(result)[0]["bars_added"] as? Int) == 0)
    #expect(
      try qtool.run(["data", "list", "--json"]).stdout.contains("\"row_count\" : 0")
        || (try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n"))
  }

  // MARK: Binance REST

  /// Klines like Binance's, made from the recorded response's values at the given open times.
  static func klines(_ opens: [Int64], step: Int64) -> String {
    let rows = opens.map { open in
      "[\(open),\"43519.34000000\",\"43936.00000000\",\"43171.00000000\",\"43488.71000000\",\"20.55495000\",\(open + step - 1),\"891428.42858070\",3743,\"10.91428000\",\"473782.95739920\",\"0\"]"
    }
    return "[" + rows.joined(separator: ",") + "]"
  }

  func rest(_ qtool: QtoolProcess, _ server: LoopbackServer, _ symbols: String, _ extra: [String]) throws -> QtoolProcess.Result {
    try qtool.run(
      ["data", "download", "--source", "binance", "--symbols", symbols, "-t", "1d", "--retries", "3", "--json"] + extra,
      environment: ["QTOOL_SOURCE_BINANCE_URL": server.baseURL])
  }

  @Test func recordedRestResponseIsStored() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let body = try Data(contentsOf: sharedData.appendingPathComponent("binance_rest/ccxt_binance_spot_BTCUSDT_1h_since1706628191000_limit3.json"))
    server.on("/api/v3/klines") { _, _ in LoopbackServer.Reply(headers: ["x-mbx-used-weight-1m": "2"], body: body) }
    let result = try qtool.run(
      [
        "data", "download", "--source", "binance", "--symbols", "BTCUSDT", "-t", "1h", "--from", "2024-01-30T16:00:00Z", "--to",
        "2024-01-30T19:00:00Z",
      ],
      environment: ["QTOOL_SOURCE_BINANCE_URL": server.baseURL])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.hasPrefix("BTCUSDT-1h: +3 bars (1 request,"))
    #expect(server.requests[0].target == "/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1706630400000&endTime=1706641199999&limit=1000")
    #expect(server.requests[0].headers["user-agent"]?.hasPrefix("qtool/") == true)
  }

  @Test func stillOpenCandleIsNeverStored() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    let today = Int64(Date().timeIntervalSince1970 * 1000) / day * day
    server.on("/api/v3/klines") { _, _ in .text(Self.klines([today - 2 * day, today - day, today], step: day)) }
    let from = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(today - 2 * day) / 1000))
    let result = try rest(qtool, server, "BTCUSDT", ["--from", from])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try symbols(result)[0]["bars_added"] as? Int == 2)
  }

  @Test func rateLimitedThenServed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    server.on("/api/v3/klines") { _, hit in
      hit == 1
        ? .text("{\"code\":-1003,\"msg\":\"Too many requests\"}", status: 429, headers: ["Retry-After": "1"])
        : .text(Self.klines([19_000 * day, 19_001 * day], step: day))
    }
    let result = try rest(qtool, server, "BTCUSDT", ["--from", "2022-01-08", "--to", "2022-01-10"])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try symbols(result)[0]
    #expect(report["bars_added"] as? Int == 2)
    #expect(report["retries"] as? Int == 1)
    #expect(report["requests"] as? Int == 2)
  }

  @Test func bannedExits69WithAClearMessage() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    server.on("/api/v3/klines") { _, _ in .text("{\"code\":-1003,\"msg\":\"IP banned\"}", status: 418, headers: ["Retry-After": "300"]) }
    let result = try qtool.run(
      ["data", "download", "--source", "binance", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-01", "--to", "2022-01-05"],
      environment: ["QTOOL_SOURCE_BINANCE_URL": server.baseURL])
    #expect(result.status == 69)
    #expect(result.stderr.contains("this IP is banned by the source for 300 s"))
    #expect(server.requests.count == 1)
  }

  @Test func oneBadSymbolDoesNotStopTheOthers() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    server.on("/api/v3/klines") { request, _ in
      request.query["symbol"] == "NOPE"
        ? .text("{\"code\":-1121,\"msg\":\"Invalid symbol.\"}", status: 400) : .text(Self.klines([19_000 * day, 19_001 * day], step: day))
    }
    let result = try rest(qtool, server, "BTCUSDT,NOPE,ETHUSDT", ["--from", "2022-01-08", "--to", "2022-01-10"])
    #expect(result.status == 69)
    let reports = try symbols(result)
    #expect(reports.map { $0["status"] as! String } == ["downloaded", "failed", "downloaded"])
    #expect((reports[1]["error"] as? String)?.contains("HTTP 400: {\"code\":-1121,\"msg\":\"Invalid symbol.\"}") == true)
    #expect(reports[2]["bars_added"] as? Int == 2)
  }

  @Test func proxyFailureNamesTheProxy() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let closed = try LoopbackServer()
    let proxy = closed.baseURL
    closed.stop()
    let result = try qtool.run(
      [
        "data", "download", "--source", "binance", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2024-01-01", "--to", "2024-01-05", "--retries", "1",
        "--proxy", proxy,
      ],
      environment: ["QTOOL_SOURCE_BINANCE_URL": "http://127.0.0.1:9"])
    #expect(result.status == 75)
    #expect(result.stderr.contains("via proxy \(proxy)"))
  }

  @Test func newDatasetNeedsFrom() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let result = try qtool.run(["data", "download", "--source", "binance", "--symbols", "BTCUSDT", "-t", "1d"])
    #expect(result.status == 64)
    #expect(result.stderr == "qtool: error: BTCUSDT-1d has no bars yet, so the download needs to know where its history starts; give the start date with --from\n")
  }

  // MARK: Yahoo and Stooq

  @Test func yahooBarsAndEvents() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let body = try Data(contentsOf: sharedData.appendingPathComponent("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json"))
    server.on("/v8/finance/chart/AAPL") { _, _ in LoopbackServer.Reply(body: body) }
    let result = try qtool.run(
      ["data", "download", "--source", "yahoo", "--symbols", "AAPL", "-t", "1d", "--from", "2020-08-31", "--to", "2020-11-07"],
      environment: ["QTOOL_SOURCE_YAHOO_URL": server.baseURL])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.hasPrefix("AAPL-1d: +49 bars"))
    let info = try json(try qtool.run(["data", "info", "AAPL-1d", "--json"]).stdout)
    let metadata = jsonText((info["dataset"] as! [String: Any])["metadata"])
    #expect(metadata == #"{"events":[{"date":"2020-08-31","type":"split","value":"4:1"},{"date":"2020-11-06","type":"dividend","value":"0.205"}]}"#)
  }

  @Test func stooqHTMLWithStatus200IsAnError() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    server.on("/q/d/l/") { _, _ in .text("<!DOCTYPE html><html><body>Enter your API key</body></html>") }
    let result = try qtool.run(
      ["data", "download", "--source", "stooq", "--symbols", "AAPL.US", "-t", "1d", "--from", "2024-01-01", "--to", "2024-02-01"],
      environment: ["QTOOL_SOURCE_STOOQ_URL": server.baseURL])
    #expect(result.status == 69)
    #expect(result.stderr.contains("Stooq answered an HTML page instead of CSV"))
    #expect(
      try qtool.run(["data", "list", "--json"]).stdout.contains("\"row_count\" : 0")
        || (try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n"))
  }

  // MARK: Locking and crashes

  @Test func secondDownloadWhileOneRunsExits75NamingTheHolder() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(Self.monthly) { request, _ in
      var reply = server.file(request); reply.delay = 2; return reply
    }
    try qtool.run(["db", "migrate"])
    let first = Process()
    first.executableURL = QtoolProcess.binary
    first.arguments = [
      "data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2024-01-01", "--to", "2024-02-01",
    ]
    first.environment = qtool.environment(["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
    first.standardOutput = FileHandle.nullDevice
    first.standardError = FileHandle.nullDevice
    try first.run()
    // Wait until the first holds the dataset's lease: it writes its pid into the lease file.
    let leaseFile = qtool.databasePath + ".leases/dataset%3ABTCUSDT-1d.lease"
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline, !((try? String(contentsOfFile: leaseFile, encoding: .utf8)) ?? "").contains("\"pid\":\(first.processIdentifier)") {
      Thread.sleep(forTimeInterval: 0.02)
    }
    let second = try bulk(qtool, server, ["--from", "2024-01-01", "--to", "2024-02-01", "--json"])
    first.waitUntilExit()
    #expect(second.status == 75)
    #expect(second.stderr.contains("dataset BTCUSDT-1d is being written by another process (pid \(first.processIdentifier) on "))
    #expect(second.stderr.contains("retry when it finishes, or wait for it with --wait"))
    let error = try errorObject(second.stderr)
    #expect(error["code"] as? String == "lease_held")
    #expect(error["category"] as? String == "conflict")
    let holder = (error["details"] as? [String: Any])?["holder"] as? [String: Any]
    #expect(holder?["pid"] as? Int == Int(first.processIdentifier))
    #expect((holder?["job_id"] as? String)?.hasPrefix("j") == true)
    #expect(first.terminationStatus == 0)
  }

  /// Downloads of different datasets run side by side, in two processes.
  @Test func downloadsOfDifferentDatasetsRunAtOnce() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    // Every archive takes a second: two downloads one after the other would take two.
    server.on(Self.monthly) { request, _ in
      var reply = server.file(request); reply.delay = 1; return reply
    }
    server.on("/data/spot/monthly/klines/ETHUSDT/1d/") { request, _ in
      var mapped = request
      mapped.target = request.target.replacingOccurrences(of: "ETHUSDT", with: "BTCUSDT")
      var reply = server.file(mapped)
      reply.delay = 1
      return reply
    }
    try qtool.run(["db", "migrate"])
    func start(_ symbol: String) throws -> Process {
      let process = Process()
      process.executableURL = QtoolProcess.binary
      process.arguments = [
        "data", "download", "--source", "binance-bulk", "--symbols", symbol, "-t", "1d", "--from", "2024-01-01", "--to", "2024-02-01",
      ]
      process.environment = qtool.environment(["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
      process.standardOutput = FileHandle.nullDevice
      process.standardError = FileHandle.nullDevice
      try process.run()
      return process
    }
    let (btc, eth) = (try start("BTCUSDT"), try start("ETHUSDT"))
    btc.waitUntilExit()
    eth.waitUntilExit()
    #expect(btc.terminationStatus == 0)
    #expect(eth.terminationStatus == 0)
    let jobs = try JSONSerialization.jsonObject(with: Data(try qtool.run(["jobs", "list", "--kind", "download", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(jobs.count == 2)
    #expect(jobs.allSatisfy { $0["status"] as? String == "completed" })
    // Each started before the other finished.
    let times = jobs.map { ($0["started_at"] as! String, $0["finished_at"] as! String) }
    #expect(times[0].0 < times[1].1 && times[1].0 < times[0].1, "\(times)")
    let list = try qtool.run(["data", "list", "--json"]).stdout
    #expect(list.contains("BTCUSDT-1d") && list.contains("ETHUSDT-1d"))
  }

  @Test func killDashNineMidRunLeavesWholeChunksAndTheNextRunFinishes() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(Self.monthly) { request, _ in
      var reply = server.file(request)
      if !request.path.hasSuffix(".CHECKSUM") { reply.delay = 0.4 }
      return reply
    }
    try qtool.run(["db", "migrate"])
    let process = Process()
    process.executableURL = QtoolProcess.binary
    process.arguments = [
      "data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2023-01-01", "--to", "2024-01-01", "--jobs", "1",
    ]
    process.environment = qtool.environment(["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    // Kill once at least one month is stored (polling the store, not guessing a time), while
    // later months are still on their way.
    let deadline = Date().addingTimeInterval(20)
    while Date() < deadline {
      let list = try qtool.run(["data", "list", "--json"]).stdout
      if list.contains("\"bars\" : 31") || list.contains("\"bars\" : 59") { break }
      Thread.sleep(forTimeInterval: 0.05)
    }
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()

    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["data", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    let stored = list.first?["bars"] as? Int ?? 0
    #expect(stored > 0 && stored < 365, "killed part-way: \(stored) bars")
    #expect([31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334].contains(stored), "whole months only: \(stored)")
    let resumed = try bulk(qtool, server, ["--from", "2023-01-01", "--to", "2024-01-01"])
    #expect(resumed.status == 0, "\(resumed.stderr)")
    #expect(try symbols(resumed)[0]["bars_added"] as? Int == 365 - stored)
    #expect(try qtool.run(["data", "verify"]).status == 0)
  }

  // MARK: csv

  @Test func csvSourceByURLAndByPath() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let goog = try Data(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv"))
    server.on(path: "/files/GOOG.csv") { _, _ in LoopbackServer.Reply(body: goog) }
    let byURL = try qtool.run([
      "data", "download", "--source", "csv", "--symbols", "GOOG", "-t", "1d", "--url", server.baseURL + "/files/{symbol}.csv", "--from", "2010-01-01",
      "--to", "2011-01-01", "--json",
    ])
    #expect(byURL.status == 0, "\(byURL.stderr)")
    #expect(try symbols(byURL)[0]["bars_added"] as? Int == 252)
    let local = qtool.home.appendingPathComponent("MSFT.csv")
    try "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.6,10\n".write(to: local, atomically: true, encoding: .utf8)
    let byPath = try qtool.run([
      "data", "download", "--source", "csv", "--symbols", "MSFT", "-t", "1d", "--url", qtool.home.path + "/{symbol}.csv", "--from", "2024-01-01",
      "--json",
    ])
    #expect(byPath.status == 0, "\(byPath.stderr)")
    #expect(try symbols(byPath)[0]["bars_added"] as? Int == 2)
    let noURL = try qtool.run(["data", "download", "--source", "csv", "--symbols", "X", "-t", "1d", "--from", "2024-01-01"])
    #expect(noURL.status == 64)
    #expect(noURL.stderr.contains("the csv source needs the location of its file; give a URL or path with --url; {symbol} in it"))
  }
}
