import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import QtoolTestSupport
import Testing

/// "Downloads a cron job can trust": `qtool data download` against a loopback server that
/// replays the recorded responses of `../shared/data/` and then breaks them, one fault per
/// handler (`Fault`). Each test checks the exit code, the message, and that the store holds
/// exactly what the source sent, or nothing. Numbers in the names are the issue's items.
@Suite struct DownloadTrustTests {
  static let archiveRoot = sharedData.appendingPathComponent("binance_vision")
  static let monthly = "/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-"
  /// Small limits, so every fault ends in a second or two.
  static let fast = [
    "QTOOL_DOWNLOAD_RETRY_AFTER_CAP": "1", "QTOOL_DOWNLOAD_STALL_TIMEOUT": "1", "QTOOL_DOWNLOAD_MIN_SPEED": "100",
    "QTOOL_DOWNLOAD_FILE_TIMEOUT": "3",
  ]

  // MARK: Helpers

  func run(_ qtool: QtoolProcess, _ source: String, _ server: LoopbackServer, _ arguments: [String], env: [String: String] = [:]) throws
    -> QtoolProcess.Result
  {
    var environment = Self.fast
    environment[SourceCatalogName.variable(source)] = server.baseURL
    for (key, value) in env { environment[key] = value }
    return try qtool.run(["data", "download", "--source", source, "--retries", "2"] + arguments, environment: environment)
  }

  func bulk(_ qtool: QtoolProcess, _ server: LoopbackServer, _ arguments: [String], env: [String: String] = [:]) throws -> QtoolProcess.Result {
    try run(qtool, "binance-bulk", server, ["--symbols", "BTCUSDT", "-t", "1d"] + arguments, env: env)
  }

  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }
  func report(_ result: QtoolProcess.Result) throws -> [String: Any] { (try json(result.stdout)["symbols"] as! [[String: Any]])[0] }

  /// The stored bars of `dataset`, `time → [open, high, low, close, volume]` as exported.
  func stored(_ qtool: QtoolProcess, _ dataset: String) throws -> [String: [String]] {
    let export = try qtool.run(["data", "export", dataset])
    guard export.status == 0 else { return [:] }
    var bars: [String: [String]] = [:]
    for line in export.stdout.split(separator: "\n").dropFirst() {
      let fields = line.split(separator: ",").map(String.init)
      bars[fields[0]] = Array(fields[1...])
    }
    return bars
  }

  func datasets(_ qtool: QtoolProcess) throws -> [[String: Any]] {
    try JSONSerialization.jsonObject(with: Data(try qtool.run(["data", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
  }

  /// The rows of a recorded monthly archive's CSV, as fields.
  func archiveRows(_ server: LoopbackServer, _ month: String) throws -> (name: String, rows: [[String]]) {
    let (name, text) = try server.recordedCSV(Self.monthly + month + ".zip")
    return (name, text.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) })
  }

  /// Writes archive rows (ms, o, h, l, c, v, …) into the store as they are, bypassing every
  /// check: what a store written by an older qtool may hold.
  func plantBars(_ qtool: QtoolProcess, name: String, source: String, symbol: String, rows: [[String]]) throws {
    var series = BarSeries()
    for row in rows {
      series.append(
        timestamp: Int64(row[0])!, open: Double(row[1])!, high: Double(row[2])!, low: Double(row[3])!, close: Double(row[4])!,
        volume: Double(row[5])!)
    }
    let database = try QtoolDatabase.open(path: qtool.databasePath)
    try database.write { db in
      _ = try QtoolDatabase.storeBars(
        db,
        into: DatasetDefinition(name: name, source: source, symbol: symbol, timeframe: Timeframe("1d")!, calendar: .allDays, origin: "imported"),
        series, at: 0)
    }
  }

  func csv(_ rows: [[String]]) -> String { rows.map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n" }

  /// What an archive row looks like once stored and exported.
  func expected(_ row: [String]) -> (String, [String]) {
    let ms = Int64(row[0])!
    let time = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    return (time, row[1...5].map { "\(Double($0)!)" })
  }

  func assertStoredExactly(_ qtool: QtoolProcess, _ rows: [[String]], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let bars = try stored(qtool, "BTCUSDT-1d")
    #expect(bars.count == rows.count, "stored \(bars.count) bars, the source sent \(rows.count)", sourceLocation: sourceLocation)
    for row in rows {
      let (time, values) = expected(row)
      #expect(bars[time] == values, "\(time)", sourceLocation: sourceLocation)
    }
  }

  // MARK: 1. A body cut short is fetched again, then fails

  @Test func item1_stooqBodyCutShortIsFetchedAgainThenFails() throws {
    let csv = try Data(contentsOf: sharedData.appendingPathComponent("stooq/aapl_us_d.csv"))
    let path = "/q/d/l/"
    let arguments = ["--symbols", "AAPL.US", "-t", "1d", "--from", "2026-01-20", "--to", "2026-02-04"]
    // Cut once: the second answer is whole, and the last day's volume is the one sent.
    let once = try QtoolProcess()
    defer { once.cleanUp() }
    let server = try LoopbackServer()
    server.on(path, Fault.cutCloseDelimited(csv, dropLast: 4, times: 1))
    let healed = try run(once, "stooq", server, arguments)
    #expect(healed.status == 0, "\(healed.stderr)")
    #expect(try stored(once, "AAPL.US-1d")["2026-02-03T00:00:00Z"] == ["269.2", "271.875", "267.61", "269.48", "64394655.0"])
    #expect(try stored(once, "AAPL.US-1d").count == 11)
    #expect(server.requests.count == 2)
    // Cut every time: a temporary failure, nothing stored.
    let always = try QtoolProcess()
    defer { always.cleanUp() }
    let broken = try LoopbackServer()
    broken.on(path, Fault.cutCloseDelimited(csv, dropLast: 4))
    let failed = try run(always, "stooq", broken, arguments)
    #expect(failed.status == 75)
    #expect(failed.stderr.contains("the body ended early, its last line has no line break"), "\(failed.stderr)")
    #expect(failed.stderr.contains("the last line reads '2026-02-03,269.2,271.875,267.61,269.48,64394'"))
    #expect(try datasets(always).isEmpty, "nothing of a truncated transfer is stored")
  }

  @Test func item1_jsonBodyCutShortIsNotParsed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let body = try Data(contentsOf: sharedData.appendingPathComponent("binance_rest/ccxt_binance_spot_BTCUSDT_1h_since1706628191000_limit3.json"))
    let server = try LoopbackServer()
    server.on("/api/v3/klines", Fault.cutCloseDelimited(body, dropLast: 3))
    let result = try run(
      qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1h", "--from", "2024-01-30T16:00:00Z", "--to", "2024-01-30T19:00:00Z"])
    #expect(result.status == 75)
    #expect(result.stderr.contains("the JSON does not end with its closing ']'"), "\(result.stderr)")
    #expect(try datasets(qtool).isEmpty)
  }

  // MARK: 2. No archive without its checksum

  @Test func item2_archiveWhoseChecksumCannotBeFetchedIsNotStored() throws {
    for (name, fault) in [("404", Fault.status(404, "<Error><Code>NoSuchKey</Code></Error>")), ("500", Fault.status(500, "busy"))] {
      let qtool = try QtoolProcess()
      defer { qtool.cleanUp() }
      let server = try LoopbackServer(root: Self.archiveRoot)
      let (entry, rows) = try archiveRows(server, "2024-06")
      let inflated = rows.map { row in [row[0]] + row[1...4].map { "\(Double($0)! * 100)" } + row[5...] }
      let zip = StoredZip.make(name: entry, data: Data(csv(inflated).utf8))
      server.on(path: Self.monthly + "2024-06.zip") { _, _ in LoopbackServer.Reply(body: zip) }
      server.on(path: Self.monthly + "2024-06.zip.CHECKSUM", fault)
      let result = try bulk(qtool, server, ["--from", "2024-06-01", "--to", "2024-07-01"])
      #expect(result.status == 75, "checksum \(name): \(result.stderr)")
      #expect(result.stderr.contains("its checksum BTCUSDT-1d-2024-06.zip.CHECKSUM could not be fetched (HTTP \(name))"), "\(result.stderr)")
      #expect(result.stderr.contains("qtool: hint: run again later, or store it unverified with --no-verify"))
      #expect(try datasets(qtool).isEmpty, "prices × 100 are not stored")
    }
  }

  @Test func item2_noVerifyStoresAndRecordsUnverifiedMonthsUntilVerified() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-06.zip.CHECKSUM") { _, hit in hit == 1 ? .text("gone", status: 404) : nil }
    let result = try bulk(qtool, server, ["--from", "2024-06-01", "--to", "2024-07-01", "--no-verify", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try report(result)["unverified_files"] as? [String] == ["BTCUSDT-1d-2024-06.zip"])
    try assertStoredExactly(qtool, try archiveRows(server, "2024-06").rows)
    let info = try json(try qtool.run(["data", "info", "BTCUSDT-1d", "--json"]).stdout)
    let metadata = (info["dataset"] as! [String: Any])["metadata"] as! [String: Any]
    let unverified = (metadata["download"] as! [String: Any])["unverified"] as! [[String: Any]]
    #expect(unverified.map { $0["file"] as! String } == ["BTCUSDT-1d-2024-06.zip"])
    #expect(unverified[0]["from"] as? String == "2024-06-01")
    // Refetched with its checksum available: verified, no longer recorded as unverified.
    let again = try bulk(qtool, server, ["--from", "2024-06-01", "--to", "2024-07-01", "--full"])
    #expect(again.status == 0, "\(again.stderr)")
    let after = try json(try qtool.run(["data", "info", "BTCUSDT-1d", "--json"]).stdout)
    #expect(jsonText((after["dataset"] as! [String: Any])["metadata"])?.contains("unverified") != true)
  }

  // MARK: 3. Missing values are missing

  func yahooBody(_ mutate: (inout [String: Any]) -> Void) throws -> Data {
    var root = try json(String(decoding: try Data(contentsOf: sharedData.appendingPathComponent("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json")), as: UTF8.self))
    var chart = root["chart"] as! [String: Any]
    var result = (chart["result"] as! [[String: Any]])[0]
    var indicators = result["indicators"] as! [String: Any]
    var quote = (indicators["quote"] as! [[String: Any]])[0]
    mutate(&quote)
    indicators["quote"] = [quote]
    result["indicators"] = indicators
    chart["result"] = [result]
    root["chart"] = chart
    return try JSONSerialization.data(withJSONObject: root)
  }

  func yahoo(_ qtool: QtoolProcess, _ body: Data, _ extra: [String] = []) throws -> QtoolProcess.Result {
    let server = try LoopbackServer()
    server.on("/v8/finance/chart/AAPL") { _, _ in LoopbackServer.Reply(body: body) }
    return try run(qtool, "yahoo", server, ["--symbols", "AAPL", "-t", "1d", "--from", "2020-08-31", "--to", "2020-11-07"] + extra)
  }

  @Test func item3_yahooNullVolumeIsLeftOutNeverZero() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let body = try yahooBody { quote in
      var volume = quote["volume"] as! [Any]
      volume[2] = NSNull()
      quote["volume"] = volume
    }
    let result = try yahoo(qtool, body)
    #expect(result.status == 75, "a bar the source could not give is a hole")
    #expect(result.stdout.contains("+48 bars"), "\(result.stdout)")
    #expect(result.stdout.contains("1 row without values left out"))
    #expect(result.stderr.contains("qtool: error: AAPL-1d: 1 weekday missing from 2020-09-02 to 2020-09-03"), "\(result.stderr)")
    #expect(result.stderr.contains("row 3 (2020-09-02): volume is null; the bar was left out"))
    let bars = try stored(qtool, "AAPL-1d")
    #expect(bars.count == 48)
    #expect(bars["2020-09-02T00:00:00Z"] == nil)
    #expect(!bars.values.contains { $0[4] == "0.0" }, "no invented zero volume")
  }

  // MARK: 4. Duplicates

  @Test func item4_identicalDuplicatesAreCountedConflictingOnesRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    let (entry, rows) = try archiveRows(server, "2024-03")
    server.serveArchive(path: Self.monthly + "2024-03.zip", name: entry, csv: csv(rows + [rows[4]]))
    let same = try bulk(qtool, server, ["--from", "2024-03-01", "--to", "2024-04-01", "--json"])
    #expect(same.status == 0, "\(same.stderr)")
    #expect(try report(same)["duplicates_dropped"] as? Int == 1)
    #expect(try report(same)["bars_added"] as? Int == 31)
    try assertStoredExactly(qtool, rows)

    let conflicting = try QtoolProcess()
    defer { conflicting.cleanUp() }
    var other = rows[4]
    other[4] = other[1]  // close = open: a valid row, but not the one sent first
    server.serveArchive(path: Self.monthly + "2024-03.zip", name: entry, csv: csv(rows + [other]))
    let result = try bulk(conflicting, server, ["--from", "2024-03-01", "--to", "2024-04-01"])
    #expect(result.status == 65)
    #expect(
      result.stderr.contains(
        "BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv:32 (2024-03-05): line 5 and line 32 both open at 2024-03-05T00:00:00Z with different values (close 63724.01 vs 68245.71)"
      ), "\(result.stderr)")
    #expect(result.stderr.contains("nothing from that file was stored"))
    #expect(try datasets(conflicting).isEmpty)
  }

  @Test func item4_conflictingRowsInARestPageAreRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    let page = DownloadCommandTests.klines([19_000 * day, 19_001 * day], step: day)
    let repeated = DownloadCommandTests.klines([19_000 * day], step: day).replacingOccurrences(of: "43488.71", with: "43400.00")
    let conflicting = String(page.dropLast()) + "," + String(repeated.dropFirst())
    server.on("/api/v3/klines") { _, _ in .text(conflicting) }
    let result = try run(qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"])
    #expect(result.status == 65)
    #expect(result.stderr.contains("row 1 and row 3 both open at 2022-01-08T00:00:00Z with different values (close 43488.71 vs 43400)"), "\(result.stderr)")
    #expect(try datasets(qtool).isEmpty)
  }

  // MARK: 5. One validation for every way bars come in

  @Test(arguments: [
    ("hourly rows in a 1d archive", 6, "opens at 2024-03-05T01:00:00Z, not on the 1d grid"),
    ("inf", 8, "close is inf"),
    ("high below low", 10, "high 1 is below low"),
    ("zero price", 12, "open is 0; prices must be above zero"),
    ("negative price", 14, "low is -5"),
  ])
  func item5_badRowsRefuseTheirFileNamingFileAndLine(fault: String, line: Int, text: String) throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    var (entry, rows) = try archiveRows(server, "2024-03")
    var row = rows[line - 1]
    switch fault {
    case "hourly rows in a 1d archive":
      var hourly = rows[line - 2]
      hourly[0] = String(Int64(hourly[0])! + 3_600_000)
      rows.insert(hourly, at: line - 1)
      row = rows[line - 1]
    case "inf": row[4] = "inf"
    case "high below low": row[2] = "1"
    case "zero price": row[1] = "0"
    default: row[3] = "-5"
    }
    rows[line - 1] = row
    server.serveArchive(path: Self.monthly + "2024-03.zip", name: entry, csv: csv(rows))
    let result = try bulk(qtool, server, ["--from", "2024-02-01", "--to", "2024-05-01"])
    #expect(result.status == 65, "\(fault): \(result.stderr)")
    #expect(result.stderr.contains("BTCUSDT-1d-2024-03.zip: \(entry):\(line) ("), "\(fault): \(result.stderr)")
    #expect(result.stderr.contains(text), "\(fault): \(result.stderr)")
    let bars = try stored(qtool, "BTCUSDT-1d")
    #expect(bars.count == 29 + 30, "February and April only: nothing from the bad file")
    #expect(!bars.keys.contains { $0.hasPrefix("2024-03") })
  }

  @Test func item5_nanInARestPageIsRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    let page = DownloadCommandTests.klines([19_000 * day, 19_001 * day], step: day).replacingOccurrences(of: "\"43171.00000000\"", with: "\"NaN\"")
    server.on("/api/v3/klines") { _, _ in .text(page) }
    let result = try run(qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"])
    #expect(result.status == 65)
    #expect(result.stderr.contains("row 1 (2022-01-08): low is nan, not a number a market trades at"), "\(result.stderr)")
    #expect(try datasets(qtool).isEmpty)
  }

  // MARK: 6. Repair

  @Test func item6_verifyNamesTheMonthAndARefetchSaysWhatItChanged() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    let (_, rows) = try archiveRows(server, "2024-03")
    // Bad bars stored before this check existed: two replaced values and an hourly row.
    var bad = rows
    bad[2][2] = "1"  // high below low
    bad[9][4] = "\(Double(bad[9][4])! * 100)"
    bad[9][2] = "\(Double(bad[9][4])! * 2)"
    var hourly = rows[14]
    hourly[0] = String(Int64(hourly[0])! + 3_600_000)
    bad.append(hourly)
    // Import refuses such bars now, so they are written into the store directly.
    try plantBars(qtool, name: "BTCUSDT-1d", source: "binance-bulk", symbol: "BTCUSDT", rows: bad)
    let verify = try qtool.run(["data", "verify", "BTCUSDT-1d"])
    #expect(verify.status == 65)
    #expect(
      verify.stdout.contains(
        "refetch 2024-03: qtool data download --source binance-bulk --symbols BTCUSDT -t 1d --from 2024-03-01 --to 2024-04-01 --full"),
      "\(verify.stdout)")
    let normal = try bulk(qtool, server, ["--to", "2024-04-01"])
    #expect(normal.status == 0)
    #expect(normal.stdout == "BTCUSDT-1d: up to date, nothing to download\n")
    let refetch = try bulk(qtool, server, ["--from", "2024-03-01", "--to", "2024-04-01", "--full"])
    #expect(refetch.status == 0, "\(refetch.stderr)")
    #expect(refetch.stdout.hasPrefix("BTCUSDT-1d: +0 bars, 2 replaced, 1 removed ("), "\(refetch.stdout)")
    try assertStoredExactly(qtool, rows)
    #expect(try qtool.run(["data", "verify", "BTCUSDT-1d"]).status == 0)
  }

  // MARK: 7. A hole in the middle fails every run the same way until accepted

  @Test func item7_aMissingMonthFailsEveryRunUntilAccepted() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-03.zip", Fault.status(404, "<Error><Code>NoSuchKey</Code></Error>"))
    let hole =
      "qtool: error: BTCUSDT-1d: 31 bars missing from 2024-03-01 to 2024-04-01 (BTCUSDT-1d-2024-03.zip not published (HTTP 404) while later files are); the source may still publish them: run again later, or accept the hole with --accept-missing 2024-03\n"
    let first = try bulk(qtool, server, ["--from", "2024-02-01", "--to", "2024-05-01"])
    #expect(first.status == 75)
    #expect(first.stderr.contains(hole), "\(first.stderr)")
    #expect(first.stdout.hasPrefix("BTCUSDT-1d: +59 bars, 1 hole left (see stderr)"))
    let second = try bulk(qtool, server, ["--to", "2024-05-01"])
    #expect(second.status == 75, "the same on the next run")
    #expect(second.stderr.contains(hole), "\(second.stderr)")
    let accepted = try bulk(qtool, server, ["--to", "2024-05-01", "--accept-missing", "2024-03"])
    #expect(accepted.status == 0, "\(accepted.stderr)")
    #expect(!accepted.stderr.contains("error"))
    let zipsBefore = server.requests.filter { $0.path.hasSuffix("2024-03.zip") }.count
    let later = try bulk(qtool, server, ["--to", "2024-05-01"])
    #expect(later.status == 0, "the accepted hole is recorded in the dataset")
    #expect(server.requests.filter { $0.path.hasSuffix("2024-03.zip") }.count == zipsBefore, "and not asked for again")
    let info = try json(try qtool.run(["data", "info", "BTCUSDT-1d", "--json"]).stdout)
    #expect(jsonText((info["dataset"] as! [String: Any])["metadata"])?.contains(#""accepted":[{"from":"2024-03-01","to":"2024-04-01"}]"#) == true)
  }

  // MARK: 8. Capped pages

  @Test func item8_pagingFollowsTheLastTimestampWhateverThePageSize() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let hour: Int64 = 3_600_000
    let start: Int64 = 1_640_995_200_000  // 2022-01-01
    server.on("/api/v3/klines", Fault.capPages(500, step: hour, until: start + 1500 * hour) { DownloadCommandTests.klines($0, step: hour) })
    let result = try run(
      qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1h", "--from", "2022-01-01", "--to", "2022-03-04T12:00:00Z", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try report(result)["bars_added"] as? Int == 1500)
    #expect(
      Set(server.requests.map { $0.query["startTime"]! }) == Set([start, start + 500 * hour, start + 1000 * hour].map(String.init)),
      "each 1,000-bar page, and the rest of the first after its capped answer")
    #expect(try qtool.run(["data", "verify", "BTCUSDT-1h"]).status == 0, "no 500-bar gap")
  }

  // MARK: 9. Dropped rows are counted, and their gap is a hole

  @Test func item9_anEmptyFieldInAnArchiveRowIsCountedAndItsGapIsAHole() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    var (entry, rows) = try archiveRows(server, "2024-03")
    rows[6][4] = ""
    server.serveArchive(path: Self.monthly + "2024-03.zip", name: entry, csv: csv(rows))
    let result = try bulk(qtool, server, ["--from", "2024-03-01", "--to", "2024-04-01", "--json"])
    #expect(result.status == 75)
    #expect(try report(result)["rows_dropped"] as? Int == 1)
    #expect(try report(result)["dropped"] as? [String] == ["BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv:7: close is empty; the row was left out"])
    #expect(result.stderr.contains("qtool: error: BTCUSDT-1d: 1 bar missing from 2024-03-07 to 2024-03-08"), "\(result.stderr)")
    var kept = rows
    kept.remove(at: 6)
    try assertStoredExactly(qtool, kept)
  }

  // MARK: 10. Nothing usable is an error, and creates nothing

  @Test func item10_noBarsWhereBarsWereExpectedExits69AndCreatesNothing() throws {
    let day: Int64 = 86_400_000
    let cases: [(String, String, LoopbackServer.Handler, String)] = [
      ("binance", "/api/v3/klines", { _, _ in .text("[]") }, "binance sent no BTCUSDT 1d bars from 2024-01-01 to 2024-01-05"),
      (
        "binance", "/api/v3/klines", { _, _ in .text(DownloadCommandTests.klines([19_000 * day, 19_001 * day], step: day)) },
        "its answer held bars from 2022-01-08 to 2022-01-09, outside the requested window"
      ),
      ("yahoo", "/v8/finance/chart/", { _, _ in .text(#"{"chart":{"result":null,"error":null}}"#) }, "(Yahoo answered result: null)"),
    ]
    for (source, path, handler, text) in cases {
      let qtool = try QtoolProcess()
      defer { qtool.cleanUp() }
      let server = try LoopbackServer()
      server.on(path, handler)
      let symbol = source == "yahoo" ? "AAPL" : "BTCUSDT"
      let result = try run(qtool, source, server, ["--symbols", symbol, "-t", "1d", "--from", "2024-01-01", "--to", "2024-01-05"])
      #expect(result.status == 69, "\(source): \(result.stderr)")
      #expect(result.stderr.contains(text), "\(result.stderr)")
      #expect(result.stderr.contains("check the symbol and the dates; nothing was stored"))
      #expect(try datasets(qtool).isEmpty, "no empty dataset")
    }
  }

  // MARK: 11. The second night

  @Test func item11_historyBeforeTheFirstArchiveTheSecondNight() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    let arguments = ["--from", "2021-01-01", "--to", "2026-01-01", "--jobs", "8"]
    let first = try bulk(qtool, server, arguments)
    #expect(first.status == 0, "\(first.stderr)")
    #expect(first.stdout.hasPrefix("BTCUSDT-1d: +1795 bars"), "\(first.stdout)")
    #expect(first.stderr.contains("binance-bulk has no BTCUSDT 1d bars before 2021-02-01"))
    let requests = server.requests.count
    let second = try bulk(qtool, server, arguments)
    #expect(second.status == 0, "\(second.stderr)")
    #expect(second.stdout == "BTCUSDT-1d: up to date, nothing to download\n")
    #expect(server.requests.count == requests)
  }

  // MARK: 12–14. Never hang, never hold unbounded memory

  @Test func item12_retryAfterIsCappedAndAnnounced() throws {
    let day: Int64 = 86_400_000
    let page = Data(DownloadCommandTests.klines([19_000 * day, 19_001 * day], step: day).utf8)
    let arguments = ["--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"]
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let day86400 = try LoopbackServer()
    day86400.on("/api/v3/klines", Fault.retryAfter("86400", then: page))
    let started = Date()
    let capped = try run(qtool, "binance", day86400, arguments)
    #expect(Date().timeIntervalSince(started) < 5)
    #expect(capped.status == 75)
    #expect(capped.stderr.contains("asked to wait 86400 s, longer than the 1 s qtool waits (download.retry_after_cap)"), "\(capped.stderr)")
    for value in ["inf", "nan"] {
      let server = try LoopbackServer()
      server.on("/api/v3/klines", Fault.retryAfter(value, then: page))
      let result = try run(qtool, "binance", server, arguments + ["--full"])
      #expect(result.status == 0, "Retry-After: \(value) counts as absent: \(result.stderr)")
    }
    let announced = try LoopbackServer()
    announced.on("/api/v3/klines", Fault.retryAfter("1", then: page))
    let waited = try run(qtool, "binance", announced, arguments + ["--full"])
    #expect(waited.status == 0)
    #expect(waited.stderr.contains("waiting 1 s: \(announced.baseURL)/api/v3/klines?"), "\(waited.stderr)")
  }

  @Test func item13_aTrickleIsAStallAndAFileHasADeadline() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let body = try Data(contentsOf: sharedData.appendingPathComponent("binance_rest/ccxt_binance_spot_BTCUSDT_1h_since1706628191000_limit3.json"))
    let arguments = ["--symbols", "BTCUSDT", "-t", "1h", "--from", "2024-01-30T16:00:00Z", "--to", "2024-01-30T19:00:00Z", "--retries", "1"]
    let trickle = try LoopbackServer()
    trickle.on("/api/v3/klines", Fault.trickle(body, bytes: 1, interval: 0.3))
    var started = Date()
    let stalled = try run(qtool, "binance", trickle, arguments)
    #expect(Date().timeIntervalSince(started) < 5)
    #expect(stalled.status == 75)
    #expect(stalled.stderr.contains("the transfer was slower than 100 bytes/s for 1 s"), "\(stalled.stderr)")
    let slow = try LoopbackServer()
    slow.on("/api/v3/klines", Fault.trickle(body, bytes: 150, interval: 0.5))
    started = Date()
    let late = try run(qtool, "binance", slow, arguments, env: ["QTOOL_DOWNLOAD_FILE_TIMEOUT": "1"])
    #expect(Date().timeIntervalSince(started) < 5)
    #expect(late.status == 75)
    #expect(late.stderr.contains("the transfer took longer than the 1 s allowed per file"), "\(late.stderr)")
    #expect(try datasets(qtool).isEmpty)
  }

  @Test func item14_aReplyLargerThanAllowedIsRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    server.on("/api/v3/klines", Fault.oversized(bytes: 8 << 20, closeDelimited: true))
    let result = try run(
      qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"],
      env: ["QTOOL_DOWNLOAD_MAX_RESPONSE_MIB": "1"])
    #expect(result.status == 69)
    #expect(result.stderr.contains("the response is larger than the 1 MiB allowed for one response"), "\(result.stderr)")
    #expect(server.requests.count == 1, "not asked again")
  }

  // MARK: 15. No crash on a malformed answer

  @Test func item15_yahooArraysOfUnequalLengthAreAnError() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let body = try yahooBody { quote in quote["volume"] = Array((quote["volume"] as! [Any]).dropLast(5)) }
    let result = try yahoo(qtool, body)
    #expect(result.status == 69, "\(result.stderr)")
    #expect(result.stderr.contains("Yahoo's arrays differ in length (timestamp 49, open 49, high 49, low 49, close 49, volume 44)"))
    #expect(try datasets(qtool).isEmpty)
  }

  // MARK: 16. Exit codes and messages

  @Test func item16_stooqDailyLimitIsTemporary() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    server.on("/q/d/l/") { _, _ in .text("Exceeded the daily hits limit") }
    let result = try run(qtool, "stooq", server, ["--symbols", "AAPL.US", "-t", "1d", "--from", "2026-01-20", "--to", "2026-02-04"])
    #expect(result.status == 75)
    #expect(result.stderr.contains("its daily limit of requests is used up"), "\(result.stderr)")
    #expect(result.stderr.contains("qtool: hint: run again later"), "\(result.stderr)")
  }

  @Test func item16_redirectsOffHTTPAndLoopsArePermanentAndNamed() throws {
    for (target, text) in [
      ("file:///etc/passwd", "redirected to file:///etc/passwd, which is not an http or https URL; not followed"),
      ("gopher://127.0.0.1:70/x", "redirected to gopher://127.0.0.1:70/x, which is not an http or https URL"),
      ("/api/v3/klines?again", "more than 5 redirects (the last to /api/v3/klines?again); a redirect loop"),
    ] {
      let qtool = try QtoolProcess()
      defer { qtool.cleanUp() }
      let server = try LoopbackServer()
      server.on("/api/v3/klines", Fault.redirect(to: target))
      let result = try run(qtool, "binance", server, ["--symbols", "BTCUSDT", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"])
      #expect(result.status == 69, "\(target): \(result.stderr)")
      #expect(result.stderr.contains(text), "\(result.stderr)")
      #expect(server.requests.count <= 6, "not retried")
    }
  }

  @Test func item16_corruptGzipIsOneCodeAndOneSentenceInEverySource() throws {
    let sentence = "the response is damaged: its gzip content cannot be decompressed"
    let stooq = try Data(contentsOf: sharedData.appendingPathComponent("stooq/aapl_us_d.csv"))
    let zip = try Data(contentsOf: Self.archiveRoot.appendingPathComponent(String((Self.monthly + "2024-03.zip").dropFirst())))
    let cases: [(source: String, path: String, body: Data, arguments: [String])] = [
      ("binance", "/api/v3/klines", Data(DownloadCommandTests.klines([19_000 * 86_400_000], step: 86_400_000).utf8), ["--symbols", "BTCUSDT", "--from", "2022-01-08", "--to", "2022-01-09"]),
      ("binance-bulk", Self.monthly, zip, ["--symbols", "BTCUSDT", "--from", "2024-03-01", "--to", "2024-04-01"]),
      ("yahoo", "/v8/finance/chart/", try Data(contentsOf: sharedData.appendingPathComponent("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json")), ["--symbols", "AAPL", "--from", "2020-08-31", "--to", "2020-11-07"]),
      ("stooq", "/q/d/l/", stooq, ["--symbols", "AAPL.US", "--from", "2026-01-20", "--to", "2026-02-04"]),
      ("csv", "/files/", stooq, ["--symbols", "AAPL", "--from", "2026-01-20", "--to", "2026-02-04", "--url", "URL/files/{symbol}.csv"]),
    ]
    for (source, path, body, arguments) in cases {
      let qtool = try QtoolProcess()
      defer { qtool.cleanUp() }
      let server = try LoopbackServer(root: Self.archiveRoot)
      server.on(path) { request, hit in
        request.path.hasSuffix(".CHECKSUM") ? server.file(request) : Fault.corruptGzip(body)(request, hit)
      }
      let result = try run(qtool, source, server, arguments.map { $0.replacingOccurrences(of: "URL/", with: server.baseURL + "/") } + ["-t", "1d"])
      #expect(result.status == 75, "\(source): \(result.stderr)")
      #expect(result.stderr.contains(sentence), "\(source): \(result.stderr)")
      #expect(try datasets(qtool).isEmpty)
    }
  }

  @Test func item16_optionsThatDoNotApplyAreRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for (extra, text) in [
      (["--source", "binance-bulk", "--adjusted"], "applies only to the yahoo source, not to binance-bulk; leave out --adjusted"),
      (["--source", "binance-bulk", "--url", "http://x/{symbol}.csv"], "applies only to the csv source, not to binance-bulk; leave out --url"),
      (["--source", "binance", "--no-verify"], "applies only to the binance-bulk source, not to binance; leave out --no-verify"),
      (["--source", "stooq", "--map", "close=Adj Close"], "applies only to the csv source, not to stooq; leave out the CSV layout options (--map"),
    ] {
      let result = try qtool.run(["data", "download", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2024-01-01"] + extra)
      #expect(result.status == 64, "\(extra)")
      #expect(result.stderr.hasPrefix("qtool: error: "), "\(result.stderr)")
      #expect(result.stderr.contains(text), "\(result.stderr)")
    }
    let bad = try qtool.run(["data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--accept-missing", "March"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("--accept-missing: expected 2024-03, 2024-03-05 or FROM..TO, got 'March'"))
  }

  // MARK: 17. Failures on stderr, always

  @Test func item17_failuresGoToStderrEvenWithQuietAndJSON() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer()
    let day: Int64 = 86_400_000
    server.on("/api/v3/klines") { request, _ in
      request.query["symbol"] == "NOPE"
        ? .text("{\"code\":-1121,\"msg\":\"Invalid symbol.\"}", status: 400) : .text(DownloadCommandTests.klines([19_000 * day, 19_001 * day], step: day))
    }
    let arguments = ["--symbols", "BTCUSDT,NOPE", "-t", "1d", "--from", "2022-01-08", "--to", "2022-01-10"]
    let quiet = try run(qtool, "binance", server, arguments + ["--quiet"])
    #expect(quiet.status == 69)
    #expect(quiet.stdout.hasPrefix("BTCUSDT-1d: +2 bars (1 request,"), "\(quiet.stdout)")
    #expect(quiet.stdout.contains("NOPE-1d: +0 bars, failed (see stderr)"), "\(quiet.stdout)")
    #expect(!quiet.stdout.contains("HTTP 400"), "the failure itself is on stderr")
    #expect(quiet.stderr.hasPrefix("qtool: error: NOPE-1d: \(server.baseURL)/api/v3/klines?symbol=NOPE"), "\(quiet.stderr)")
    #expect(quiet.stderr.contains("answered HTTP 400: {\"code\":-1121,\"msg\":\"Invalid symbol.\"}"))
    let json = try run(qtool, "binance", server, arguments + ["--json", "--full"])
    #expect(json.status == 69)
    #expect(json.stderr.contains("qtool: error: NOPE-1d:"))
    let symbols = try self.json(json.stdout)["symbols"] as! [[String: Any]]
    #expect(symbols[1]["status"] as? String == "failed")
    #expect(symbols[1]["exit_code"] as? Int == 69)
    #expect(symbols[0]["exit_code"] as? Int == 0)
  }

  // MARK: 18. Say what arrived

  @Test func item18_aChecksumMismatchSaysWhatArrived() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.on(path: Self.monthly + "2024-03.zip", Fault.htmlPage())
    let html = try bulk(qtool, server, ["--from", "2024-03-01", "--to", "2024-04-01"])
    #expect(html.status == 75)
    #expect(html.stderr.contains("does not match its .CHECKSUM"), "\(html.stderr)")
    let page = Fault.htmlPage()(LoopbackServer.Request(method: "GET", target: "/", headers: [:]), 1)!.body
    #expect(html.stderr.contains("what arrived was an HTML page (\(page.count) bytes), not the archive"), "\(html.stderr)")

    let cut = try LoopbackServer(root: Self.archiveRoot)
    let zip = try Data(contentsOf: Self.archiveRoot.appendingPathComponent(String((Self.monthly + "2024-03.zip").dropFirst())))
    cut.on(path: Self.monthly + "2024-03.zip") { _, _ in LoopbackServer.Reply(body: zip.prefix(zip.count - 40)) }
    let truncated = try bulk(qtool, cut, ["--from", "2024-03-01", "--to", "2024-04-01"])
    #expect(truncated.status == 75)
    #expect(truncated.stderr.contains("the zip archive has no end record (\(zip.count - 40) bytes arrived)"), "\(truncated.stderr)")
    #expect(try datasets(qtool).isEmpty)
  }

  @Test func item18_anEmptyArchiveDoesNotSuggestMap() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let server = try LoopbackServer(root: Self.archiveRoot)
    server.serveArchive(path: Self.monthly + "2024-03.zip", name: "BTCUSDT-1d-2024-03.csv", csv: "")
    let result = try bulk(qtool, server, ["--from", "2024-03-01", "--to", "2024-04-01"])
    #expect(result.status == 69)
    #expect(result.stderr.contains("BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv is empty: no bars in it"), "\(result.stderr)")
    #expect(!result.stderr.contains("--map"))
  }
}

/// `QTOOL_SOURCE_BINANCE_BULK_URL` for `binance-bulk`.
enum SourceCatalogName {
  static func variable(_ source: String) -> String { "QTOOL_SOURCE_" + source.uppercased().replacingOccurrences(of: "-", with: "_") + "_URL" }
}
