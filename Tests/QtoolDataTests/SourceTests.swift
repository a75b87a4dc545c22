import Foundation
import QtoolCore
import QtoolTestSupport
import Testing

@testable import QtoolData

func recorded(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: SharedData.path(path))) }

let farFuture: Int64 = 4_000_000_000_000

@Suite struct SourceTests {
  @Test func binanceKlinesAndTheStillOpenCandle() throws {
    let source = BinanceSource(baseURL: "http://x")
    let body = try recorded("binance_rest/ccxt_binance_spot_BTCUSDT_1h_since1706628191000_limit3.json")
    let task = SourceTask(request: HTTPRequest(url: "http://x"), window: 0..<farFuture)
    let all = try source.batch(from: body, task: task, timeframe: Timeframe("1h")!, now: farFuture).series
    #expect(all.timestamps == [1_706_630_400_000, 1_706_634_000_000, 1_706_637_600_000])
    #expect(all.close == [43488.71, 43374.80, 43361.11])
    // At a moment inside the last hour, its candle is still open and must not be stored.
    let during = try source.batch(from: body, task: task, timeframe: Timeframe("1h")!, now: 1_706_637_600_000 + 1_800_000).series
    #expect(during.count == 2)
  }

  @Test func binanceRequestsArePagedByThousandBars() throws {
    let tasks = try BinanceSource(baseURL: "http://b").tasks(
      symbol: "BTCUSDT", timeframe: Timeframe("1h")!, windows: [0..<(2500 * 3_600_000)], now: farFuture)
    #expect(tasks.count == 3)
    #expect(tasks[0].request.url == "http://b/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=0&endTime=3599999999&limit=1000")
    #expect(tasks[2].window == (2000 * 3_600_000)..<(2500 * 3_600_000))
    #expect(throws: SourceError.self) { try BinanceSource(baseURL: "x").tasks(symbol: "X", timeframe: Timeframe("7m")!, windows: [0..<1], now: 1) }
  }

  @Test func binanceErrorBody() {
    let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<1)
    #expect(throws: FetchError.invalidResponse(url: "u", reason: "Binance error -1121: Invalid symbol.")) {
      try BinanceSource(baseURL: "x").batch(
        from: Data(#"{"code":-1121,"msg":"Invalid symbol."}"#.utf8), task: task, timeframe: Timeframe("1h")!, now: 1)
    }
  }

  @Test func bulkPlansMonthlyFilesThenDailyOnes() throws {
    let now = UTCCalendar.timestamp(year: 2025, month: 3, day: 4) + 3_600_000
    let tasks = try BinanceBulkSource(baseURL: "http://v").tasks(
      symbol: "BTCUSDT", timeframe: Timeframe("1d")!, windows: [UTCCalendar.timestamp(year: 2025, month: 1, day: 15)..<now], now: now)
    #expect(
      tasks.map { URL(string: $0.request.url)!.lastPathComponent } == [
        "BTCUSDT-1d-2025-01.zip", "BTCUSDT-1d-2025-02.zip", "BTCUSDT-1d-2025-03-01.zip", "BTCUSDT-1d-2025-03-02.zip", "BTCUSDT-1d-2025-03-03.zip",
      ])
    #expect(tasks[0].request.url == "http://v/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2025-01.zip")
    #expect(tasks[0].checksumURL == tasks[0].request.url + ".CHECKSUM")
    #expect(tasks[2].request.url == "http://v/data/spot/daily/klines/BTCUSDT/1d/BTCUSDT-1d-2025-03-01.zip")
  }

  @Test func bulkReadsSpotAndFuturesArchives() throws {
    let source = BinanceBulkSource(baseURL: "x")
    let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<farFuture)
    let spot = try source.batch(
      from: try recorded("binance_vision/daily_1h/spot-klines-BTCUSDT-1h-2024-10-28.zip"), task: task, timeframe: Timeframe("1h")!, now: farFuture)
    let futures = try source.batch(
      from: try recorded("binance_vision/daily_1h/futures-um-klines-BTCUSDT-1h-2024-10-28.zip"), task: task, timeframe: Timeframe("1h")!,
      now: farFuture)
    #expect(spot.series.count == 24)
    #expect(futures.series.count == 24, "the futures header row is not a bar")
    #expect(futures.series.timestamps[0] == 1_730_073_600_000)
  }

  @Test func yahooDailyBarsEventsAndAdjustment() throws {
    let body = try recorded("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json")
    let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<farFuture)
    let batch = try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.count == 49)
    #expect(batch.series.timestamps[0] == UTCCalendar.timestamp(year: 2020, month: 8, day: 31), "keyed by exchange date across the DST shift")
    #expect(batch.series.timestamps.allSatisfy { $0 % 86_400_000 == 0 })
    #expect(
      batch.events == [
        MarketEvent(type: "split", date: "2020-08-31", value: "4:1"), MarketEvent(type: "dividend", date: "2020-11-06", value: "0.205"),
      ])
    let adjusted = try YahooSource(baseURL: "x", adjusted: true).batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(adjusted.series.close[0] < batch.series.close[0], "dividend-adjusted closes before the dividend are lower")
  }

  @Test func yahooEmptyResultAndError() throws {
    let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<farFuture)
    let empty = try recorded("yahoo/chart-AAPL-2025-02-01-to-2025-02-02-includePrePost-false-interval-1m.body.json")
    #expect(try YahooSource(baseURL: "x").batch(from: empty, task: task, timeframe: Timeframe("1m")!, now: farFuture).series.isEmpty)
    let error = Data(#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#.utf8)
    #expect(throws: FetchError.invalidResponse(url: "u", reason: "Yahoo: Not Found: No data found, symbol may be delisted")) {
      try YahooSource(baseURL: "x").batch(from: error, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    }
  }

  @Test func stooqCSVAndItsTextErrors() throws {
    let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<farFuture)
    let csv = try recorded("stooq/aapl_us_d.csv")
    #expect(try StooqSource(baseURL: "x").batch(from: csv, task: task, timeframe: Timeframe("1d")!, now: farFuture).series.count == 10432)
    // 'No data' is an answer without bars (a holiday, or an unknown symbol): judged by the download.
    let none = try StooqSource(baseURL: "x").batch(from: Data("No data".utf8), task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(none.series.isEmpty)
    #expect(none.emptyReason == "Stooq answered 'No data'")
    #expect(throws: FetchError.temporarilyRefused(url: "u", reason: "Stooq answered 'Exceeded the daily hits limit': its daily limit of requests is used up")) {
      try StooqSource(baseURL: "x").batch(from: Data("Exceeded the daily hits limit".utf8), task: task, timeframe: Timeframe("1d")!, now: farFuture)
    }
    #expect(FetchError.temporarilyRefused(url: "u", reason: "r").exitStatus == .temporaryFailure)
    #expect(throws: FetchError.invalidResponse(url: "u", reason: "Stooq answered an HTML page instead of CSV")) {
      try StooqSource(baseURL: "x").batch(
        from: Data("<!DOCTYPE html><html>Get an API key</html>".utf8), task: task, timeframe: Timeframe("1d")!, now: farFuture)
    }
  }

  @Test func binanceWeightPacing() {
    let source = BinanceSource(baseURL: "x")
    let busy = HTTPResponse(status: 200, headers: ["x-mbx-used-weight-1m": "5999"], body: Data())
    let quiet = HTTPResponse(status: 200, headers: ["x-mbx-used-weight-1m": "40"], body: Data())
    let pause = source.pacing(busy)
    #expect(pause != nil && pause! > 0 && pause! <= 61, "waits for the next minute's weight")
    #expect(source.pacing(quiet) == nil)
  }

  // MARK: Only what the source sent (download-trust 1, 3–5, 9, 15)

  let task = SourceTask(request: HTTPRequest(url: "u"), window: 0..<farFuture)

  func yahoo(_ mutate: (inout [String: Any]) -> Void) throws -> Data {
    var root = try JSONSerialization.jsonObject(with: try recorded("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json")) as! [String: Any]
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

  @Test func yahooNullVolumeIsNeverZero() throws {
    let body = try yahoo { quote in
      var volume = quote["volume"] as! [Any]
      volume[2] = NSNull()
      quote["volume"] = volume
    }
    let batch = try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.count == 48, "the bar without a volume is left out, not stored with 0")
    #expect(!batch.series.volume.contains(0))
    #expect(batch.dropped.count == 1)
    #expect(batch.dropped[0].timestamp == UTCCalendar.timestamp(year: 2020, month: 9, day: 2))
    #expect(batch.dropped[0].description == "u, row 3 (2020-09-02): volume is null; the bar was left out")
  }

  @Test func stooqEmptyVolumeIsLeftOutAndReportedByLine() throws {
    let body = Data("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,100\n2024-01-03,1,2,0.5,1.5,\n2024-01-04,1,2,0.5,1.5,200\n".utf8)
    let batch = try StooqSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.volume == [100, 200], "the bar without a volume is left out, not stored with 0")
    #expect(batch.dropped.map(\.description) == ["u:3: volume is empty; the row was left out"])
    #expect(batch.dropped[0].timestamp == UTCCalendar.timestamp(year: 2024, month: 1, day: 3))
  }

  @Test func binanceNullValuesAreLeftOutAndReported() throws {
    let body = Data(
      "[[0,\"1\",\"2\",\"0.5\",\"1.5\",\"10\"],[3600000,\"1\",\"2\",\"0.5\",\"1.5\",null],[7200000,null,\"2\",\"0.5\",\"1.5\",\"3\"],[10800000,\"1\",\"2\",\"0.5\",\"1.5\",\"4\"]]"
        .utf8)
    let batch = try BinanceSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1h")!, now: farFuture)
    #expect(batch.series.timestamps == [0, 10_800_000])
    #expect(batch.series.volume == [10, 4])
    #expect(
      batch.dropped.map(\.description) == [
        "u, row 2 (1970-01-01T01:00:00Z): volume is null; the bar was left out", "u, row 3 (1970-01-01T02:00:00Z): open is null; the bar was left out",
      ])
  }

  @Test func yahooStringCloseIsLeftOutAndCounted() throws {
    let body = try yahoo { quote in
      var close = quote["close"] as! [Any]
      close[5] = "129.04"
      quote["close"] = close
    }
    let batch = try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.count == 48)
    #expect(batch.dropped.map(\.reason) == ["close is the string '129.04', not a number; the bar was left out"])
  }

  @Test func yahooArraysOfUnequalLengthAreAnErrorNotACrash() throws {
    let body = try yahoo { quote in quote["close"] = Array((quote["close"] as! [Any]).dropLast(3)) }
    #expect(throws: FetchError.self) { try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture) }
    do {
      _ = try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    } catch {
      #expect("\(error)".contains("Yahoo's arrays differ in length (timestamp 49, open 49, high 49, low 49, close 46, volume 49)"))
    }
  }

  @Test func yahooResultNullIsNoBars() throws {
    let body = Data(#"{"chart":{"result":null,"error":null}}"#.utf8)
    let batch = try YahooSource(baseURL: "x").batch(from: body, task: task, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.isEmpty)
    #expect(batch.emptyReason == "Yahoo answered result: null")
  }

  @Test func binanceNaNAndInfinitePricesRefuseTheResponse() throws {
    let body = try recorded("binance_rest/ccxt_binance_spot_BTCUSDT_1h_since1706628191000_limit3.json")
    for bad in ["\"NaN\"", "\"inf\"", "\"0\"", "\"-1\""] {
      var text = String(decoding: body, as: UTF8.self)
      text = text.replacingOccurrences(of: "\"43374.80000000\"", with: bad)
      #expect(throws: IngestError.self, "\(bad)") {
        try BinanceSource(baseURL: "x").batch(from: Data(text.utf8), task: task, timeframe: Timeframe("1h")!, now: farFuture)
      }
    }
  }

  @Test func binanceDuplicatesIdenticalDroppedConflictingRefused() throws {
    let row = #"[1706630400000,"43519.34","43936.00","43171.00","43488.71","20.5",1706633999999,"891428.4",3743,"10.9","473782.9","0"]"#
    let other = #"[1706630400000,"43519.34","43936.00","43171.00","43500.00","20.5",1706633999999,"891428.4",3743,"10.9","473782.9","0"]"#
    let same = try BinanceSource(baseURL: "x").batch(from: Data("[\(row),\(row)]".utf8), task: task, timeframe: Timeframe("1h")!, now: farFuture)
    #expect(same.series.count == 1)
    #expect(same.duplicates == 1)
    do {
      _ = try BinanceSource(baseURL: "x").batch(from: Data("[\(row),\(other)]".utf8), task: task, timeframe: Timeframe("1h")!, now: farFuture)
      Issue.record("conflicting rows must be refused")
    } catch let error as IngestError {
      #expect(error.description == "u, row 2 (2024-01-30T16:00:00Z): row 1 and row 2 both open at 2024-01-30T16:00:00Z with different values (close 43488.71 vs 43500); nothing from that file was stored")
      #expect(error.exitStatus == .dataError)
    }
  }

  @Test func bulkArchiveRowsAreNamedByLine() throws {
    let zip = try recorded("binance_vision/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-03.zip")
    let entry = try ArchiveReader.entries(data: zip, label: "x")[0]
    var lines = String(decoding: entry.data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var fields = lines[4].split(separator: ",").map(String.init)
    fields[2] = "1"  // high below low on line 5
    lines[4] = fields.joined(separator: ",")
    let bulkTask = SourceTask(request: HTTPRequest(url: "http://v/x/BTCUSDT-1d-2024-03.zip"), window: 0..<farFuture)
    do {
      _ = try BinanceBulkSource(baseURL: "x").batch(
        from: StoredZip.make(name: entry.name, data: Data(lines.joined(separator: "\n").utf8)), task: bulkTask, timeframe: Timeframe("1d")!,
        now: farFuture)
      Issue.record("a bad row refuses the archive")
    } catch let error as IngestError {
      #expect("\(error)".hasPrefix("BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv:5 (2024-03-05): high 1 is below low"), "\(error)")
    }
    // A NaN close on line 7: the row is left out and reported by its line.
    var nan = String(decoding: entry.data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var row = nan[6].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    row[4] = "NaN"
    nan[6] = row.joined(separator: ",")
    let batch = try BinanceBulkSource(baseURL: "x").batch(
      from: StoredZip.make(name: entry.name, data: Data(nan.joined(separator: "\n").utf8)), task: bulkTask, timeframe: Timeframe("1d")!, now: farFuture)
    #expect(batch.series.count == 30)
    #expect(batch.dropped.map(\.description) == ["BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv:7: close is 'NaN'; the row was left out"])
  }

  @Test func bulkEmptyArchiveDoesNotSuggestMap() throws {
    let bulkTask = SourceTask(request: HTTPRequest(url: "http://v/x/BTCUSDT-1d-2024-03.zip"), window: 0..<farFuture)
    do {
      _ = try BinanceBulkSource(baseURL: "x").batch(
        from: StoredZip.make(name: "BTCUSDT-1d-2024-03.csv", data: Data()), task: bulkTask, timeframe: Timeframe("1d")!, now: farFuture)
      Issue.record("an empty archive is an error")
    } catch {
      #expect("\(error)".contains("BTCUSDT-1d-2024-03.csv is empty"), "\(error)")
      #expect(!"\(error)".contains("--map"))
    }
  }

  @Test func bodiesThatDoNotEndWhereTheirFormatEnds() throws {
    func response(_ text: String) -> HTTPResponse { HTTPResponse(status: 200, headers: [:], body: Data(text.utf8)) }
    let stooq = StooqSource(baseURL: "x")
    #expect(stooq.incompleteness(of: response("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,83103341\n"), task: task) == nil)
    #expect(
      stooq.incompleteness(of: response("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,83103"), task: task)
        == "its last line has no line break (60 bytes arrived, the last line reads '2024-01-02,1,2,0.5,1.5,83103')")
    #expect(stooq.incompleteness(of: response("No data"), task: task) == nil, "an error text is judged by batch")
    let binance = BinanceSource(baseURL: "x")
    #expect(binance.incompleteness(of: response("[[1,\"2\"],[3,\"4\"]]\n"), task: task) == nil)
    #expect(binance.incompleteness(of: response("[[1,\"2\"],[3,\"4\""), task: task)?.hasPrefix("the JSON does not end with its closing ']'") == true)
    #expect(YahooSource(baseURL: "x").incompleteness(of: response("{\"chart\":{"), task: task) != nil)
    let zip = try recorded("binance_vision/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-2024-03.zip")
    let bulk = BinanceBulkSource(baseURL: "x")
    #expect(bulk.incompleteness(of: HTTPResponse(status: 200, headers: [:], body: zip), task: task) == nil)
    #expect(bulk.incompleteness(of: HTTPResponse(status: 200, headers: [:], body: zip.dropLast(30)), task: task) != nil)
  }

  @Test func binanceFollowsTheLastTimestampPastACappedPage() throws {
    let source = BinanceSource(baseURL: "http://b")
    let hour: Int64 = 3_600_000
    var page = try source.tasks(symbol: "BTCUSDT", timeframe: Timeframe("1h")!, windows: [0..<(1000 * hour)], now: farFuture)[0]
    let rows = (0..<500).map { "[\($0 * Int(hour)),\"1\",\"2\",\"0.5\",\"1.5\",\"1\"]" }.joined(separator: ",")
    let next = source.nextPage(
      after: HTTPResponse(status: 200, headers: [:], body: Data("[\(rows)]".utf8)), task: page, timeframe: Timeframe("1h")!, now: farFuture)
    #expect(next?.window == (500 * hour)..<(1000 * hour))
    #expect(next?.request.url == "http://b/api/v3/klines?symbol=BTCUSDT&interval=1h&startTime=1800000000&endTime=3599999999&limit=1000")
    page.window = (500 * hour)..<(1000 * hour)
    #expect(source.nextPage(after: HTTPResponse(status: 200, headers: [:], body: Data("[]".utf8)), task: page, timeframe: Timeframe("1h")!, now: farFuture) == nil)
  }
}
