import Foundation
import QtoolCore
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
    #expect(throws: FetchError.invalidResponse(url: "u", reason: "Stooq answered 'No data' instead of CSV")) {
      try StooqSource(baseURL: "x").batch(from: Data("No data".utf8), task: task, timeframe: Timeframe("1d")!, now: farFuture)
    }
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
}
