import Foundation
import QtoolCore
import Testing

/// Runs that can be told apart and read (issue 18, items 4, 9, 10 and 13), through the built
/// binary: `backtest show` prints the summary `backtest run` printed, `list` and `compare` show
/// params and sort, a run's trades go to stdout as CSV, a halt is kept, and numbers and dates
/// print one way.
@Suite struct RunDisplayTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    return qtool
  }

  func write(_ qtool: QtoolProcess, _ name: String, _ text: String) throws -> String {
    let path = qtool.home.appendingPathComponent("\(name).yaml").path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  static let sma = """
    name: sma
    universe: { symbols: [GOOG], timeframe: 1d }
    params: { fast: 10, slow: 60 }
    rules:
      entry: cross_above(sma(close, fast), sma(close, slow))
      exit: cross_below(sma(close, fast), sma(close, slow))
    sizing: { units: 10 }
    costs: { commission: 0.001, slippage_bps: 5 }
    execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
    """

  /// The run's id from the last line of its summary.
  func id(of summary: String) throws -> String {
    let line = try #require(summary.split(separator: "\n").last { $0.hasPrefix("run ") })
    return String(line.split(separator: " ")[1])
  }

  // MARK: 9. Runs told apart

  @Test func showPrintsTheSummaryTheRunPrinted() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let run = try qtool.run(["backtest", "run", spec, "--from", "2006-01-03"])
    #expect(run.status == 0, "\(run.stderr)")
    let id = try id(of: run.stdout)
    let show = try qtool.run(["backtest", "show", id])
    #expect(show.status == 0, "\(show.stderr)")
    // The same renderer: everything but the run's closing line comes back as it was printed.
    let summary = run.stdout.components(separatedBy: "\n\nrun \(id)")[0]
    #expect(show.stdout.hasPrefix(summary + "\n"), "\(show.stdout)")
    #expect(summary.hasPrefix("sma on GOOG-1d  2006-01-03 … 2013-03-01  (1802 bars)\nparams: fast=10 slow=60\n"))
    #expect(summary.contains("\ncosts: commission 0.1% slippage 5 bps\n"))
    #expect(summary.contains("\nwarm-up: 60 bars (sma(close, 60)) stored before 2006-01-03"))
    #expect(summary.contains("\n  trades "))
    #expect(show.stdout.contains("\nengine:      qtool-engine/2\n"))
    #expect(show.stdout.contains("\ntotal_return:"))

    // A registered strategy shows its version.
    let path = qtool.home.appendingPathComponent("goog-sma.yaml").path
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--symbol", "GOOG", "-o", path]).status == 0)
    let registered = try qtool.run(["backtest", "run", "goog-sma", "--json"])
    let report = try json(registered.stdout)
    #expect(report["strategy_version"] as? Int == 1)
    let shown = try qtool.run(["backtest", "show", report["id"] as! String]).stdout
    #expect(shown.hasPrefix("goog-sma v1 on GOOG-1d  2004-08-19 … 2013-03-01  (2148 bars)\n"))

    // The HTML report of a stored run: params, range and costs at the top.
    let html = qtool.home.appendingPathComponent("show.html").path
    #expect(try qtool.run(["backtest", "show", id, "--report", html]).status == 0)
    let page = try String(contentsOfFile: html, encoding: .utf8)
    #expect(page.contains("<div class=\"muted\" id=\"range\">2006-01-03 … 2013-03-01 · 1802 bars · run \(id)"))
    #expect(page.contains("<tr><th>params</th><td style=\"text-align:left\">fast=10 slow=60</td></tr>"))
    #expect(page.contains("commission 0.1% slippage 5 bps"))
    #expect(page.contains("<svg id=\"price-chart\"") && page.contains("class=\"entry\"") && page.contains("class=\"exit\""))
  }

  @Test func listFiltersSortsAndShowsParams() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let other = try write(qtool, "other", Self.sma.replacingOccurrences(of: "name: sma", with: "name: other"))
    var ids: [String: String] = [:]
    for (name, path, fast) in [("a", spec, 10), ("b", spec, 20), ("c", other, 5)] {
      let run = try qtool.run(["backtest", "run", path, "--param", "fast=\(fast)", "--json"])
      #expect(run.status == 0, "\(run.stderr)")
      ids[name] = try json(run.stdout)["id"] as? String
    }
    func list(_ arguments: [String]) throws -> [[String: Any]] {
      let result = try qtool.run(["backtest", "list"] + arguments + ["--json"])
      #expect(result.status == 0, "\(result.stderr)")
      return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [[String: Any]]
    }
    #expect(Set(try list(["--strategy", "sma"]).map { $0["id"] as! String }) == [ids["a"]!, ids["b"]!])
    #expect(try list(["--since", "2000-01-01"]).count == 3)
    #expect(try list(["--since", "1d"]).count == 3)
    #expect(try list(["--since", "2999-01-01"]).isEmpty)
    #expect(try qtool.run(["backtest", "list", "--since", "soon"]).status == 64)
    #expect(try list(["--limit", "2"]).count == 2)
    let sorted = try list(["--sort", "sharpe"])
    let sharpes = sorted.map { ($0["metrics"] as! [String: Any])["sharpe"] as! Double }
    #expect(sharpes == sharpes.sorted(by: >), "best first")
    #expect(try qtool.run(["backtest", "list", "--sort", "sharp"]).status == 64)
    let table = try qtool.run(["backtest", "list", "--strategy", "sma"]).stdout
    #expect(table.contains("fast=20 slow=60") && table.contains("GOOG-1d 2004-08-19…2013-03-01"))
  }

  @Test func compareHasAParamsRowSortsAndLabelsItsMatrix() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    var ids: [String] = []
    for fast in [10, 20, 30] {
      let run = try qtool.run(["backtest", "run", spec, "--param", "fast=\(fast)", "--json"])
      ids.append(try json(run.stdout)["id"] as! String)
    }
    let text = try qtool.run(["backtest", "compare"] + ids)
    #expect(text.status == 0, "\(text.stderr)")
    let lines = text.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let params = try #require(lines.first { $0.hasPrefix("params ") })
    #expect(params.contains("fast=10 slow=60") && params.contains("fast=20 slow=60") && params.contains("fast=30 slow=60"))
    #expect(lines.contains { $0.hasPrefix("total_return ") && $0.hasSuffix("%") }, "returns as percents")
    // The matrix: a header row naming every run, each row named by its run.
    let header = try #require(lines.firstIndex { $0.hasPrefix("RUN ") })
    #expect(lines[header].split(separator: " ").map(String.init) == ["RUN"] + ids)
    for (offset, id) in ids.enumerated() { #expect(lines[header + 1 + offset].hasPrefix(id + " ")) }

    let sorted = try json(try qtool.run(["backtest", "compare"] + ids + ["--sort", "total_return", "--json"]).stdout)
    let runs = sorted["runs"] as! [[String: Any]]
    let returns = runs.map { ($0["metrics"] as! [String: Any])["total_return"] as! Double }
    #expect(returns == returns.sorted(by: >), "best first")
    #expect((sorted["correlation"] as! [String: Any])["ids"] as? [String] == runs.map { $0["id"] as! String }, "the matrix follows the order")
    #expect((runs[0]["params"] as? [String: Double])?["slow"] == 60)
    let worst = try json(try qtool.run(["backtest", "compare"] + ids + ["--sort", "max_drawdown_duration", "--json"]).stdout)
    let durations = (worst["runs"] as! [[String: Any]]).map { ($0["metrics"] as! [String: Any])["max_drawdown_duration"] as! Double }
    #expect(durations == durations.sorted(), "lower is better")
    #expect(try qtool.run(["backtest", "compare"] + ids + ["--sort", "sharp"]).status == 64)
  }

  // MARK: 10. Trades to stdout

  @Test func showTradesWritesTheExportsCSVToStdout() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = try write(qtool, "sma", Self.sma)
    let id = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)["id"] as! String
    let csv = try qtool.run(["backtest", "show", id, "--trades", "--csv"])
    #expect(csv.status == 0, "\(csv.stderr)")
    let bundle = qtool.home.appendingPathComponent("run.tar.gz").path
    #expect(try qtool.run(["backtest", "export", id, bundle]).status == 0)
    let exported = try qtool.shell("tar xzOf '\(bundle)' \(id)/trades.csv").stdout
    #expect(csv.stdout == exported, "one writer")
    #expect(csv.stdout.hasPrefix("symbol,side,size,entry_time,entry_price,exit_time,exit_price,pnl,return,commission,reason\nGOOG,long,10.0,"))
    let rows = csv.stdout.split(separator: "\n").count - 1
    let trades =
      try JSONSerialization.jsonObject(with: Data(try qtool.run(["backtest", "show", id, "--trades", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(trades.count == rows && rows > 5)
    #expect(trades[0]["entry_time"] as? String != nil && trades[0]["symbol"] as? String == "GOOG")
    let table = try qtool.run(["backtest", "show", id, "--trades"]).stdout
    #expect(table.hasPrefix("SYMBOL  SIDE  SIZE  ENTRY ") && table.split(separator: "\n").count == rows + 1)
    #expect(try qtool.run(["backtest", "show", id, "--csv"]).status == 64)
  }

  // MARK: 4. Halts kept with the run

  @Test func aHaltIsStoredWithTheRun() throws {
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
    let id = report["id"] as! String
    let stored = try json(try qtool.run(["backtest", "show", id, "--json"]).stdout)["run"] as! [String: Any]
    #expect(stored["halted_at"] as? String == at && stored["halt_reason"] as? String == reason)
    let text = try qtool.run(["backtest", "show", id]).stdout
    #expect(text.contains("\nhalted \(at.prefix(10)): \(reason)\n"))
    let html = qtool.home.appendingPathComponent("halt.html").path
    #expect(try qtool.run(["backtest", "show", id, "--report", html]).status == 0)
    #expect(try String(contentsOfFile: html, encoding: .utf8).contains("<p class=\"neg\" id=\"halt\"><b>Halted \(at.prefix(10))</b>: "))

    let calm = try json(try qtool.run(["backtest", "run", spec, "--to", "2007-01-01", "--json"]).stdout)["id"] as! String
    let calmRun = try json(try qtool.run(["backtest", "show", calm, "--json"]).stdout)["run"] as! [String: Any]
    #expect(calmRun["halted_at"] is NSNull && calmRun["halt_reason"] is NSNull)
    #expect(!(try qtool.run(["backtest", "show", calm]).stdout.contains("\nhalted ")))
  }

  // MARK: 13. Numbers and dates

  /// Hourly bars quoted to 5 decimals, traded in 0.30000001 units.
  func hourly(_ qtool: QtoolProcess) throws {
    var csv = "timestamp,open,high,low,close,volume\n"
    let start = UTCCalendar.timestamp(year: 2024, month: 1, day: 1)
    for i in 0..<300 {
      let close = 345.95289 + 20 * sin(Double(i) / 9) + Double(i % 7) * 0.00001
      let open = close - 0.12345
      csv += "\(UTCCalendar.format(start + Int64(i) * 3_600_000, alwaysTime: true)),"
      csv += String(format: "%.5f,%.5f,%.5f,%.5f,1.5\n", open, max(open, close) + 0.5, min(open, close) - 0.5, close)
    }
    let path = qtool.home.appendingPathComponent("xyz.csv").path
    try csv.write(toFile: path, atomically: true, encoding: .utf8)
    let imported = try qtool.run(["data", "import", path, "-s", "XYZ", "-t", "1h"])
    #expect(imported.status == 0, "\(imported.stderr)")
  }

  @Test func pricesSizesAndDatesPrintOneWay() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    try hourly(qtool)
    let spec = try write(
      qtool, "xyz",
      """
      name: xyz
      universe: { symbols: [XYZ], timeframe: 1h }
      params: { n: 10, band: 0.25 }
      rules:
        entry: close < sma(close, n) - band
        exit: close > sma(close, n) + band
      sizing: { units: 0.30000001 }
      costs: { commission: 0.001, slippage_bps: 3 }
      execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
      """)
    let run = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try json(run.stdout)
    let id = report["id"] as! String
    let trades = report["trades"] as! [[String: Any]]
    #expect(trades.count > 2)
    let show = try qtool.run(["backtest", "show", id]).stdout
    #expect(show.hasPrefix("xyz on XYZ-1h  2024-01-01T00:00:00Z … 2024-01-13T11:00:00Z  (300 bars)\nparams: band=0.25 n=10\n"))
    #expect(show.contains("\n\(trades.count) trades\n"))
    let table = try qtool.run(["backtest", "show", id, "--trades"]).stdout
    let rows = table.split(separator: "\n").dropFirst().map { $0.split(separator: " ", omittingEmptySubsequences: true).map(String.init) }
    for (row, trade) in zip(rows, trades) {
      #expect(row[2] == "0.30000001", "the size as traded, not 0.3")
      // Prices at the instrument's 5 decimals, whatever slippage made of them.
      #expect(row[4] == String(format: "%.5f", trade["entry_price"] as! Double) && row[6] == String(format: "%.5f", trade["exit_price"] as! Double))
      // Intraday: every time of the column in RFC 3339, midnight ones too.
      #expect(row[3] == trade["entry_time"] as? String && row[5] == trade["exit_time"] as? String)
      #expect(row[8].hasSuffix("%"))
    }
    let html = qtool.home.appendingPathComponent("xyz.html").path
    #expect(try qtool.run(["backtest", "show", id, "--report", html]).status == 0)
    let page = try String(contentsOfFile: html, encoding: .utf8)
    #expect(page.contains("<td>0.30000001</td>") && page.contains("<td>\(String(format: "%.5f", trades[0]["entry_price"] as! Double))</td>"))
    #expect(page.range(of: #"[0-9]e[-+][0-9]"#, options: .regularExpression) == nil, "no scientific notation")
    #expect(show.range(of: #"[0-9]e[-+][0-9]"#, options: .regularExpression) == nil)
    #expect(page.contains("<div><span>win_rate</span><b>") && page.contains("<div><span>trades</span><b>\(trades.count)</b></div>"))

    // Tables of datasets: one form per column too.
    #expect(try qtool.run(["data", "list"]).stdout.contains("  2024-01-01T00:00:00Z  2024-01-13T11:00:00Z  "))
    let info = try qtool.run(["data", "info", "XYZ-1h"]).stdout
    #expect(info.contains(" 2024-01-01T00:00:00Z … 2024-01-13T11:00:00Z\n"))
    #expect(info.range(of: #"\n2024-01-13T11:00:00Z +[0-9]+\.[0-9]{5} "#, options: .regularExpression) != nil, "\(info)")

    // One trade: "1 trade".
    let one = try qtool.run(["backtest", "run", spec, "--to", "2024-01-02T12:00:00Z", "--json"])
    let oneID = try json(one.stdout)["id"] as! String
    let count = (try json(one.stdout)["trades"] as! [Any]).count
    if count == 1 { #expect(try qtool.run(["backtest", "show", oneID]).stdout.contains("\n1 trade\n")) }
    #expect(try qtool.run(["backtest", "replay", oneID]).stdout.contains("(\(DisplayFormat.plural(count, "trade")), every equity point)"))
  }

  @Test func displayFormatIsOneWay() {
    #expect(DisplayFormat.places(of: [345.95288999999997]) == 5)
    #expect(DisplayFormat.places(of: [0.30000001]) == 8)
    #expect(DisplayFormat.places(of: [100.34, 108.31, 95.96, 100.0]) == 2)
    #expect(DisplayFormat.places(of: [1.0 / 3.0]) == 8, "capped")
    #expect(DisplayFormat.fixed(0.00001234, places: 8) == "0.00001234")
    #expect(DisplayFormat.fixed(-0.0001, places: 2) == "0.00")
    #expect(DisplayFormat.param(20) == "20" && DisplayFormat.param(0.025) == "0.025" && DisplayFormat.param(1234) == "1234")
    #expect(DisplayFormat.percent(0.12345) == "12.35%" && DisplayFormat.percent(.nan) == "n/a")
    #expect(DisplayFormat.metric("trades", 3) == "3" && DisplayFormat.metric("max_drawdown", -0.25) == "-25.00%")
    #expect(DisplayFormat.metric("sharpe", 1.23456) == "1.23" && DisplayFormat.metric("sharpe", nil) == "n/a")
    #expect(DisplayFormat.plural(1, "trade") == "1 trade" && DisplayFormat.plural(2, "trade") == "2 trades")
    #expect(DisplayFormat.times([0, 86_400_000]) == ["1970-01-01", "1970-01-02"])
    #expect(DisplayFormat.times([0, 3_600_000]) == ["1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z"])
  }
}
