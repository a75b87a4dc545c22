import Foundation
import QtoolCore
import Testing

/// Results that can be trusted, through the built binary: warm-up before --from, undefined
/// metrics, portfolio symbols and common ranges, halts, dated imports with offsets, and fills
/// that follow the calendar.
@Suite struct BacktestResultsTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    return qtool
  }

  /// A spec file in the scratch home.
  func write(_ qtool: QtoolProcess, _ name: String, _ text: String) throws -> String {
    let path = qtool.home.appendingPathComponent("\(name).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  /// SMA 10/60 on GOOG with fixed units, so trades do not depend on the equity before them.
  static let sma = """
    name: sma
    universe: { symbols: [GOOG], timeframe: 1d }
    params: { fast: 10, slow: 60 }
    rules:
      entry: cross_above(sma(close, fast), sma(close, slow))
      exit: cross_below(sma(close, fast), sma(close, slow))
    sizing: { units: 10 }
    costs: { commission: 0.001 }
    execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
    """

  /// The date of an ISO-8601 time from a report.
  static func day(_ time: Any?) -> String { UTCCalendar.format(ms(time)) }
  static func ms(_ time: Any?) -> Int64 { TimestampParser.parse(time as! String)! }

  // MARK: 1. Warm-up

  @Test func fromTradesAsTheFullHistoryRunWithItsIndicatorsWarm() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let full = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)
    let fullTrades = full["trades"] as! [[String: Any]]
    // Flat at 2010-02-01: the full run's trade from 2009-03-25 closed on 2010-01-26.
    let cut = UTCCalendar.timestamp(year: 2010, month: 2, day: 1)
    #expect(!fullTrades.contains { Self.ms($0["entry_time"]) < cut && Self.ms($0["exit_time"]) >= cut })
    let after = fullTrades.filter { Self.ms($0["entry_time"]) >= cut }
    #expect(Self.day(after.first?["entry_time"]) == "2010-03-18")

    let result = try qtool.run(["backtest", "run", spec, "--from", "2010-02-01", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let warmed = try json(result.stdout)
    let warmedTrades = warmed["trades"] as! [[String: Any]]
    let keys = ["entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl", "commission", "side", "reason", "symbol"]
    #expect(warmedTrades.count == after.count)
    for (ours, theirs) in zip(warmedTrades, after) {
      for key in keys { #expect("\(ours[key]!)" == "\(theirs[key]!)", "\(key) of the trade entered \(Self.day(theirs["entry_time"]))") }
    }
    let warmup = warmed["warmup"] as! [String: Any]
    #expect(warmup["bars"] as? Int == 60 && warmup["loaded"] as? Int == 60 && warmup["expression"] as? String == "sma(close, 60)")
    #expect(warmup["from"] as? String == "2009-11-03T00:00:00Z" && warmup["decisions_from"] as? String == "2010-02-01T00:00:00Z")
    // Metrics and the curve cover the traded bars only.
    #expect(warmed["first"] as? String == "2010-02-01T00:00:00Z")
    let metrics = warmed["metrics"] as! [String: Any]
    let bars = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv"), encoding: .utf8)
      .split(separator: "\n").dropFirst().filter { $0 >= "2010-02-01" }
    #expect(warmed["bars"] as? Int == bars.count)
    let closes = bars.map { Double($0.split(separator: ",")[4])! }
    #expect(metrics["buy_and_hold_return"] as? Double == closes.last! / closes.first! - 1)
    #expect(metrics["start_equity"] as? Double == 10000)

    // Cold, as before: the first trade is missed.
    let cold = try json(try qtool.run(["backtest", "run", spec, "--from", "2010-02-01", "--no-warmup", "--json"]).stdout)
    #expect(Self.day((cold["trades"] as! [[String: Any]]).first?["entry_time"]) != "2010-03-18")
    #expect((cold["warmup"] as! [String: Any])["enabled"] as? Bool == false)

    // The issue's cut, 2010-01-04, inside the full run's trade: the warmed run still enters on 2010-03-18.
    let january = try json(try qtool.run(["backtest", "run", spec, "--from", "2010-01-04", "--json"]).stdout)
    #expect(Self.day((january["trades"] as! [[String: Any]]).first?["entry_time"]) == "2010-03-18")

    let text = try qtool.run(["backtest", "run", spec, "--from", "2010-02-01"]).stdout
    #expect(text.contains("warm-up: 60 bars (sma(close, 60)) stored before 2010-02-01, from 2009-11-03; trading from 2010-02-01\n"))
    // A replay reruns with the same warm-up.
    #expect(try qtool.run(["backtest", "replay", warmed["id"] as! String]).stdout.hasPrefix("\(warmed["id"]!): identical"))
  }

  @Test func tooLittleHistoryBeforeFromSaysHowManyBarsAreMissing() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    // GOOG starts 2004-08-19: nine bars before 2004-09-01.
    let short = try qtool.run(["backtest", "run", spec, "--from", "2004-09-01", "--json"])
    #expect(short.status == 65)
    let error = try errorObject(short.stderr)
    #expect(error["code"] as? String == "warmup_too_short")
    #expect(
      error["message"] as? String
        == "the rules need 60 bars before 2004-09-01 to warm up (sma(close, 60)), but GOOG-1d has 9: 51 bars missing")
    #expect((error["details"] as! [String: Any])["missing"] as? Int == 51)
    #expect((error["hint"] as? String)?.contains("--no-warmup") == true)
    #expect(try qtool.run(["backtest", "run", spec, "--from", "2004-09-01", "--no-warmup"]).status == 0)
    // At or before the first stored bar there is nothing to warm up on: the run starts with the data.
    let early = try json(try qtool.run(["backtest", "run", spec, "--from", "2000-01-01", "--json"]).stdout)
    #expect(
      early["first"] as? String == "2004-08-19T00:00:00Z"
        && (early["warmup"] as! [String: Any])["decisions_from"] as? String == "2004-11-12T00:00:00Z")
  }

  /// Walk-forward windows warm up on the bars before them: fewer test windows sit out, and each
  /// test window measures what `backtest run --from --to` measures.
  @Test func walkForwardWindowsWarmUp() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    func windows(_ extra: [String]) throws -> [[String: Any]] {
      let result = try qtool.run(["backtest", "grid", spec, "--grid", "fast=10", "--grid", "slow=60", "--walk-forward", "2y/6m", "--json"] + extra)
      #expect(result.status == 0, "\(result.stderr)")
      return try json(result.stdout)["windows"] as! [[String: Any]]
    }
    func idle(_ windows: [[String: Any]]) -> Int { windows.filter { ($0["out_of_sample"] as! [String: Any])["trades"] as? Int == 0 }.count }
    let warm = try windows([])
    let cold = try windows(["--no-warmup"])
    #expect(warm.count == 13 && cold.count == 13)
    #expect(idle(cold) == 8, "cold, most test windows spend their first 60 bars blind")
    #expect(idle(warm) == 1, "only the window inside the full run's 2009-03..2010-01 trade is idle")
    for window in [warm[3], warm[8]] {
      let test = window["test"] as! [String: String]
      let end = UTCCalendar.format(TimestampParser.parse(test["last"]!)! + 86_400_000)
      let alone = try json(try qtool.run(["backtest", "run", spec, "--from", String(test["first"]!.prefix(10)), "--to", end, "--json"]).stdout)
      let ours = window["out_of_sample"] as! [String: Any]
      let theirs = alone["metrics"] as! [String: Any]
      #expect(ours["total_return"] as? Double == theirs["total_return"] as? Double && ours["trades"] as? Int == theirs["trades"] as? Int)
    }
  }

  /// A grid with --from warms every combination up; each equals its own run.
  @Test func gridFromWarmsEveryCombinationUp() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let result = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "slow=30,60", "--from", "2010-02-01", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let grid = try json(result.stdout)
    #expect(grid["warmup_bars"] as? Int == 60)
    for entry in grid["results"] as! [[String: Any]] {
      let parameters = entry["params"] as! [String: Double]
      let alone = try json(
        try qtool.run([
          "backtest", "run", spec, "--from", "2010-02-01", "--param", "fast=\(parameters["fast"]!)", "--param", "slow=\(parameters["slow"]!)",
          "--json",
        ]).stdout)
      let (ours, theirs) = (entry["metrics"] as! [String: Any], alone["metrics"] as! [String: Any])
      #expect(ours["sharpe"] as? Double == theirs["sharpe"] as? Double, "\(parameters)")
      #expect(ours["trades"] as? Int == theirs["trades"] as? Int)
    }
  }

  // MARK: 2 and 13. Undefined and infinite metrics

  @Test func aStrategyThatNeverTradesFailsItsGateSayingWhy() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(
      qtool, "never",
      Self.sma.replacingOccurrences(of: "name: sma", with: "name: never")
        .replacingOccurrences(of: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: close < 0"))
    let run = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let metrics = try json(run.stdout)["metrics"] as! [String: Any]
    #expect(metrics["trades"] as? Int == 0)
    for name in ["sharpe", "sortino", "calmar", "win_rate", "profit_factor", "sqn", "expectancy"] { #expect(metrics[name] is NSNull, "\(name)") }
    let gate = try qtool.run(["backtest", "run", spec, "--assert", "sharpe >= 0"])
    #expect(gate.status == 2)
    #expect(gate.stderr.contains("qtool: assertion failed: sharpe >= 0 (sharpe is undefined: 0 trades)\n"))
    let summary = try qtool.run(["backtest", "run", spec]).stdout
    #expect(summary.contains("  sharpe                  n/a    sortino             n/a\n"))
    #expect(summary.contains("  trades                    0    win rate            n/a\n"))
    let id = try json(run.stdout)["id"] as! String
    #expect(try qtool.run(["backtest", "show", id]).stdout.contains("\nsharpe:                 n/a\n"))
    #expect(try qtool.run(["help", "metrics"]).stdout.contains("null in JSON and n/a in tables, never 0"))
  }

  @Test func infiniteMetricsCompareAsIEEESays() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    // Bought on the second bar and held: one winning trade, no losing one.
    let spec = try write(
      qtool, "hold",
      Self.sma.replacingOccurrences(of: "name: sma", with: "name: hold")
        .replacingOccurrences(of: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: close > 0")
        .replacingOccurrences(of: "  exit: cross_below(sma(close, fast), sma(close, slow))\n", with: ""))
    let run = try qtool.run(["backtest", "run", spec, "--assert", "profit_factor > 2", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    #expect((try json(run.stdout)["metrics"] as! [String: Any])["profit_factor"] is NSNull, "JSON has no infinity")
    let below = try qtool.run(["backtest", "run", spec, "--assert", "profit_factor < 100"])
    #expect(below.status == 2)
    #expect(below.stderr.contains("qtool: assertion failed: profit_factor < 100 (profit_factor = inf)\n"))
    #expect(try qtool.run(["backtest", "run", spec]).stdout.contains("  profit factor           inf"))
  }

  @Test func aLookBackLongerThanTheDataIsAnError() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let long = try write(qtool, "long", Self.sma.replacingOccurrences(of: "slow: 60", with: "slow: 5000"))
    for command in [
      ["backtest", "run", spec, "--param", "slow=5000"], ["backtest", "check", long],
      ["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "slow=50,5000"],
    ] {
      let result = try qtool.run(command + ["--json"])
      #expect(result.status == 65, "\(command[1]): \(result.stderr)")
      let error = try errorObject(result.stderr)
      #expect(error["code"] as? String == "lookback_exceeds_data")
      #expect(
        error["message"] as? String
          == "the rules need 5000 bars of history before their first decision (sma(close, 5000)), but GOOG-1d has 2148 bars in that range, so they would never decide"
      )
    }
    let check = try qtool.run(["backtest", "check", spec])
    #expect(check.stdout.hasSuffix("warm-up: the rules need 60 bars before a decision (sma(close, 60))\n"))
  }

  // MARK: 3. Portfolios

  @Test func portfolioTradesNameTheirSymbolAndRunOverTheCommonRange() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    for (file, symbol) in [("stooq/aapl_us_d.csv", "AAPL"), ("extra/stooq_csv/msft_us_d.csv", "MSFT")] {
      #expect(
        try qtool.run(["data", "import", sharedData.appendingPathComponent(file).path, "-s", symbol, "-t", "1d", "--source-name", "stooq"]).status
          == 0)
    }
    let spec = qtool.home.appendingPathComponent("m.yaml").path
    #expect(try qtool.run(["strategy", "new", "m", "--template", "momentum", "--symbol", "AAPL,MSFT,GOOG", "-o", spec]).status == 0)
    // AAPL and MSFT lack 2001-09-11..14; GOOG starts in 2004, so the common range has no gap.
    let run = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try json(run.stdout)
    #expect(report["first"] as? String == "2004-08-19T00:00:00Z")
    let trades = report["trades"] as! [[String: Any]]
    #expect(Set(trades.map { $0["symbol"] as! String }) == ["AAPL", "MSFT", "GOOG"])
    let contributions = report["contributions"] as! [[String: Any]]
    #expect(contributions.map { $0["symbol"] as! String } == ["AAPL", "MSFT", "GOOG"])
    for item in contributions {
      let own = trades.filter { $0["symbol"] as? String == item["symbol"] as? String }
      #expect(item["trades"] as? Int == own.count)
      #expect(abs((item["pnl"] as! Double) - own.reduce(0) { $0 + ($1["pnl"] as! Double) }) < 1e-9)
    }
    let text = try qtool.run(["backtest", "run", spec]).stdout
    #expect(text.contains("  by symbol      trades   won          pnl   contribution\n  AAPL "))
    let id = report["id"] as! String
    #expect(try qtool.run(["backtest", "show", id]).stdout.contains("SYMBOL  SIDE"))
    let bundle = qtool.home.appendingPathComponent("run.tar.gz").path
    #expect(try qtool.run(["backtest", "export", id, bundle]).status == 0)
    let csv = try qtool.shell("tar xzOf '\(bundle)' \(id)/trades.csv").stdout.split(separator: "\n")
    #expect(csv[0].hasPrefix("symbol,side,size,"))
    #expect(Set(csv.dropFirst().map { String($0.split(separator: ",")[0]) }) == ["AAPL", "MSFT", "GOOG"])
    let html = qtool.home.appendingPathComponent("m.html").path
    #expect(try qtool.run(["backtest", "run", spec, "--report", html]).status == 0)
    let page = try String(contentsOfFile: html, encoding: .utf8)
    #expect(page.contains("<table id=\"contributions\">") && page.contains("<th>#</th><th>symbol</th>") && page.contains("<td>MSFT</td>"))

    // Without GOOG the common range reaches back to 1986 and holds the gap.
    try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "[AAPL, MSFT, GOOG]", with: "[AAPL, MSFT]").write(
      toFile: spec, atomically: true, encoding: .utf8)
    let refused = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(refused.status == 65)
    let error = try errorObject(refused.stderr)
    #expect(error["code"] as? String == "dataset_has_gaps")
    // A portfolio runs on SYMBOL-TIMEFRAME, so the fitting remedy is to start after the gap, warm-up included.
    #expect(error["hint"] as? String == "start after the last one with --from 2001-10-16; or run anyway with --allow-gaps")
    #expect(try qtool.run(["backtest", "run", spec, "--from", "2001-10-16"]).status == 0)
  }

  // MARK: 4. Halts

  @Test func aDrawdownHaltSaysWhenAndWhy() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(
      qtool, "halt",
      Self.sma.replacingOccurrences(of: "name: sma", with: "name: halt")
        .replacingOccurrences(of: "sizing: { units: 10 }", with: "sizing: { fraction: 1 }\nrisk: { max_drawdown_halt: 0.2 }")
        .replacingOccurrences(of: "slow: 60", with: "slow: 30"))
    let report = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)
    let at = try #require(report["halted_at"] as? String)
    let reason = try #require(report["halt_reason"] as? String)
    #expect(reason.hasPrefix("equity fell 2") && reason.contains("past risk.max_drawdown_halt (20%)"))
    let trades = report["trades"] as! [[String: Any]]
    #expect(trades.last?["reason"] as? String == "halt" && trades.last?["exit_time"] as? String == at)
    let day = String(at.prefix(10))
    let text = try qtool.run(["backtest", "run", spec]).stdout
    #expect(text.contains("\nhalted \(day): \(reason)\n"))
    let html = qtool.home.appendingPathComponent("h.html").path
    #expect(try qtool.run(["backtest", "run", spec, "--report", html]).status == 0)
    #expect(try String(contentsOfFile: html, encoding: .utf8).contains("<p class=\"neg\" id=\"halt\"><b>Halted \(day)</b>: "))
    let calm = try json(try qtool.run(["backtest", "run", spec, "--to", "2007-01-01", "--json"]).stdout)
    #expect(calm["halted_at"] == nil && calm["halt_reason"] == nil, "no halt before 2007")
  }

  // MARK: 5. Daily bars with a UTC offset

  @Test func dailyBarsWithAnOffsetKeepTheirDate() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("offset.csv")
    try """
    date,open,high,low,close,volume
    2020-01-02T00:00:00+01:00,1,2,0.5,1.5,10
    2020-01-03T00:00:00+01:00,1,2,0.5,1.5,10
    2020-01-06T00:00:00+01:00,1,2,0.5,1.5,10
    2020-01-07 00:00:00-05:00,1,2,0.5,1.5,10

    """.write(to: file, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1d"]).status == 0)
    let daily = try qtool.run(["data", "export", "X-1d"]).stdout.split(separator: "\n").dropFirst().map { String($0.prefix(20)) }
    #expect(daily == ["2020-01-02T00:00:00Z", "2020-01-03T00:00:00Z", "2020-01-06T00:00:00Z", "2020-01-07T00:00:00Z"])
    #expect(try qtool.run(["data", "verify", "X-1d"]).status == 0)
    // Intraday bars are instants: converted to UTC as before. (Daily bars called 1h are refused
    // for their spacing unless forced.)
    #expect(try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1h"]).status == 65)
    #expect(try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1h", "--force-timeframe"]).status == 0)
    let hourly = try qtool.run(["data", "export", "X-1h"]).stdout.split(separator: "\n").dropFirst().map { String($0.prefix(20)) }
    #expect(hourly == ["2020-01-01T23:00:00Z", "2020-01-02T23:00:00Z", "2020-01-05T23:00:00Z", "2020-01-07T05:00:00Z"])
  }

  // MARK: 6. fill_missing and the calendar

  @Test func fillMissingLeavesMarketHolidaysAlone() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    func fill(_ operation: String, into name: String) throws -> [String: Any] {
      let result = try qtool.run(["data", "preprocess", "GOOG-1d", "--op", operation, "--out", name, "--json"])
      #expect(result.status == 0, "\(result.stderr)")
      return try json(result.stdout)
    }
    let plain = try fill("fill_missing", into: "G")
    #expect(plain["bars"] as? Int == 2148, "GOOG has no gap, only its 79 market holidays")
    #expect(
      ((plain["steps"] as! [[String: Any]])[0]["summary"] as? String)
        == "0 missing bars inserted, 0 values filled (forward_fill); 79 weekdays without bars left alone as market holidays (holidays=true fills them)"
    )
    #expect(try fill("fill_missing holidays=true", into: "H")["bars"] as? Int == 2227)
    let help = try qtool.run(["data", "preprocess", "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
    #expect(help.contains("a run of 1 or 2 weekdays without bars is a market holiday, left alone unless holidays=true"))

    // The gap error suggests what fits: this imported dataset can be filled into a new one.
    let gappy = qtool.home.appendingPathComponent("gappy.csv")
    let rows = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv"), encoding: .utf8)
      .split(separator: "\n").filter { !($0.hasPrefix("2006-03-1") || $0.hasPrefix("2006-03-2")) }
    try (rows.joined(separator: "\n") + "\n").write(to: gappy, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", gappy.path, "-s", "GAPPY", "-t", "1d"]).status == 0)
    let spec = try write(qtool, "gappy", Self.sma.replacingOccurrences(of: "[GOOG]", with: "[GAPPY]"))
    let refused = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(refused.status == 65)
    #expect(
      try errorObject(refused.stderr)["hint"] as? String
        == "fill them by the dataset's calendar with `qtool data preprocess GAPPY-1d --op fill_missing --out GAPPY-1d-filled` and run on it with --dataset GAPPY-1d-filled; start after the last one with --from 2006-06-26; or run anyway with --allow-gaps"
    )
    #expect(try qtool.run(["data", "preprocess", "GAPPY-1d", "--op", "fill_missing", "--out", "GAPPY-1d-filled"]).status == 0)
    #expect(try qtool.run(["backtest", "run", spec, "--dataset", "GAPPY-1d-filled"]).status == 0, "the suggestion works")
  }
}
