import Foundation
import QtoolCore
import Testing

@Suite struct BacktestCommandTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    return qtool
  }

  @Test func newRunListShowDelete() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("goog-sma.yaml").path
    let created = try qtool.run(["strategy", "new", "goog-sma", "--symbol", "GOOG", "-o", spec])
    #expect(created.status == 0, "\(created.stderr)")
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--symbol", "GOOG", "-o", spec]).status == 73, "never overwrites")
    #expect(try qtool.run(["strategy", "validate", spec]).stdout == "\(spec): valid (goog-sma)\n")

    let run = try qtool.run(["backtest", "run", "goog-sma", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try json(run.stdout)
    let metrics = report["metrics"] as! [String: Any]
    #expect(Set(metrics.keys) == Set(Metrics.names))
    #expect((metrics["trades"] as! Int) > 10)
    let id = report["id"] as! String
    let text = try qtool.run(["backtest", "run", spec])
    #expect(text.stdout.contains("goog-sma v1 on GOOG-1d  2004-08-19 … 2013-03-01  (2148 bars)"))
    #expect(text.stdout.contains("equity  ▁"))

    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["backtest", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 2)
    let show = try json(try qtool.run(["backtest", "show", String(id.prefix(6)), "--json"]).stdout)
    #expect((show["run"] as! [String: Any])["id"] as? String == id)
    #expect((show["trades"] as! [Any]).count == metrics["trades"] as! Int)
    #expect(try qtool.run(["backtest", "delete", id]).stderr == "deleted run \(id)\n")
    #expect(try qtool.run(["backtest", "show", id]).status == 66)
  }

  /// A run over a whole dataset takes the catalog's content hash (kept after the first run);
  /// the fingerprint must be the one computed from the bars.
  @Test func fingerprintIsTheSameWithTheCatalogsHash() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("goog-sma.yaml").path
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--symbol", "GOOG", "-o", spec]).status == 0)
    func fingerprint(_ extra: [String] = []) throws -> String {
      let run = try qtool.run(["backtest", "run", "goog-sma", "--json"] + extra)
      #expect(run.status == 0, "\(run.stderr)")
      return try json(run.stdout)["fingerprint"] as! String
    }
    let first = try fingerprint()
    #expect(try fingerprint() == first)
    // A slice is hashed on its own, never given the whole dataset's hash.
    #expect(try fingerprint(["--from", "2005-01-01"]) != first)
  }

  @Test func assertIsACIGate() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let pass = try qtool.run(["backtest", "run", spec, "--assert", "trades > 5 and total_return > 0"])
    #expect(pass.status == 0, "\(pass.stderr)")
    let fail = try qtool.run(["backtest", "run", spec, "--assert", "trades > 5 and sharpe > 3", "--assert", "max_drawdown > -0.01"])
    #expect(fail.status == 2)
    #expect(fail.stderr.contains("qtool: assertion failed: sharpe > 3 (sharpe = "))
    #expect(fail.stderr.contains("qtool: assertion failed: max_drawdown > -0.01 (max_drawdown = -"))
    #expect(!fail.stderr.contains("trades > 5"))
    let typo = try qtool.run(["backtest", "run", spec, "--assert", "sharp > 1"])
    #expect(typo.status == 64, "an assertion is part of the command line")
    #expect(typo.stderr.contains("unknown metric 'sharp' — did you mean 'sharpe'?"))
  }

  @Test func paramsOverridesAndErrors() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let run = try json(try qtool.run(["backtest", "run", spec, "--param", "fast=5", "--param", "slow=15", "--json"]).stdout)
    #expect(run["params"] as? [String: Double] == ["fast": 5, "slow": 15])
    let unknown = try qtool.run(["backtest", "run", spec, "--param", "fats=5"])
    #expect(unknown.status == 64, "an unknown param is a usage error")
    #expect(unknown.stderr.contains("the strategy has no param 'fats' — did you mean 'fast'?"))
    let capital = try qtool.run(["backtest", "run", spec, "--capital", "-5"])
    #expect(capital.status == 64)
    #expect(capital.stderr.hasPrefix("qtool: error: --capital: must be positive, got -5\n"))
    let missing = try qtool.run(["backtest", "run", spec, "--dataset", "NOPE-1d"])
    #expect(missing.status == 66)
    try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "sizing:", with: "sizng:").write(
      toFile: spec, atomically: true, encoding: .utf8)
    let typo = try qtool.run(["strategy", "validate", spec])
    #expect(typo.status == 65)
    #expect(typo.stderr.contains("unknown key 'sizng' — did you mean 'sizing'?"))
    // A name that is no price, param or function is a column the stored data does not have:
    // validate said "valid" and the run refused it.
    try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "sizng:", with: "sizing:")
      .replacingOccurrences(of: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: clsoe > 1")
      .write(toFile: spec, atomically: true, encoding: .utf8)
    let column = try qtool.run(["strategy", "validate", spec])
    #expect(column.status == 65 && column.stderr.contains("clsoe") && column.stderr.contains("close"), "\(column.stderr)")
  }

  @Test func gappyDataIsRefusedUnlessAllowed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("gappy.csv")
    var text = "timestamp,open,high,low,close,volume\n"
    for day in 0..<200 where !(50..<60).contains(day) {
      let price = 100 + Double(day % 17)
      text += "\(1_600_000_000 / 86_400 * 86_400 + day * 86_400),\(price),\(price + 1),\(price - 1),\(price),1\n"
    }
    try text.write(to: file, atomically: true, encoding: .utf8)
    try qtool.run(["data", "import", file.path, "-s", "BTCUSDT", "-t", "1d"])
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "BTCUSDT", "-o", spec])
    let refused = try qtool.run(["backtest", "run", spec])
    #expect(refused.status == 65)
    #expect(refused.stderr.contains("BTCUSDT-1d has 1 gap in that range"))
    #expect(try qtool.run(["backtest", "run", spec, "--allow-gaps"]).status == 0)
  }

  @Test func htmlReportHasItsCharts() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let path = qtool.home.appendingPathComponent("report.html").path
    #expect(try qtool.run(["backtest", "run", spec, "--report", path]).status == 0)
    let html = try String(contentsOfFile: path, encoding: .utf8)
    for marker in [
      "<svg id=\"equity-chart\"", "data-label=\"buy &amp; hold\"", "<svg id=\"drawdown-chart\"", "<table id=\"monthly\"", "<table id=\"trades\"",
      "<div class=\"metrics\"",
    ] {
      #expect(html.contains(marker), "\(marker)")
    }
    #expect(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained")
  }

  @Test func metricsHelpDocumentsEveryMetric() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let help = try qtool.run(["help", "metrics"]).stdout
    for name in Metrics.names { #expect(help.contains("\n  \(name) "), "\(name) is not documented") }
    #expect(Metrics.definitions.map(\.0) == Metrics.names)
  }

  @Test func replayCompareAndGrid() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let a = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)["id"] as! String
    let b = try json(try qtool.run(["backtest", "run", spec, "--param", "fast=20", "--json"]).stdout)["id"] as! String
    let replay = try qtool.run(["backtest", "replay", a])
    #expect(replay.status == 0, "\(replay.stderr)")
    #expect(replay.stdout.hasPrefix("\(a): identical ("))

    let comparison = try json(try qtool.run(["backtest", "compare", a, b, "--json"]).stdout)
    let correlation = comparison["correlation"] as! [String: Any]
    #expect(correlation["ids"] as? [String] == (comparison["runs"] as! [[String: Any]]).map { $0["id"] as! String }, "the matrix is labelled")
    let matrix = correlation["matrix"] as! [[Double]]
    #expect(matrix[0][0] == 1 && matrix[1][1] == 1)
    #expect(matrix[0][1] == matrix[1][0] && matrix[0][1] > 0 && matrix[0][1] < 1)
    #expect(try qtool.run(["backtest", "compare", a]).status == 64)
    let overlay = qtool.home.appendingPathComponent("compare.html").path
    #expect(try qtool.run(["backtest", "compare", a, b, "--report", overlay]).status == 0)
    let html = try String(contentsOfFile: overlay, encoding: .utf8)
    #expect(html.contains("<svg id=\"equity-overlay\"") && html.contains("data-label=\"\(a)\"") && html.contains("data-label=\"\(b)\""))
    let directory = qtool.home.appendingPathComponent("export").path
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory]).status == 0)
    let exported = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    #expect(exported == ["datasets.json", "equity.csv", "manifest.json", "metrics.json", "settings.json", "spec.yaml", "trades.csv"])

    let grid = try qtool.run([
      "backtest", "grid", spec, "--grid", "fast=5..15:5", "--grid", "slow=10,20,30", "--where", "fast < slow", "--top", "3", "--json",
    ])
    #expect(grid.status == 0, "\(grid.stderr)")
    let report = try json(grid.stdout)
    #expect(report["combinations"] as? Int == 7)
    let results = report["results"] as! [[String: Any]]
    #expect(results.count == 3)
    let sharpes = results.map { ($0["metrics"] as! [String: Any])["sharpe"] as! Double }
    #expect(sharpes == sharpes.sorted(by: >), "best first")
    // The grid's numbers are the same engine's: the best combination run alone agrees.
    let best = results[0]["params"] as! [String: Double]
    let alone = try json(
      try qtool.run(["backtest", "run", spec, "--param", "fast=\(best["fast"]!)", "--param", "slow=\(best["slow"]!)", "--json"]).stdout)
    #expect((alone["metrics"] as! [String: Any])["sharpe"] as? Double == sharpes[0])
    let bad = try qtool.run(["backtest", "grid", spec, "--grid", "fats=1..3"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("did you mean 'fast'?"))
  }

  @Test func checkFindsNoLookAheadInACleanStrategy() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "breakout", "-o", spec])
    let result = try qtool.run(["backtest", "check", spec])
    #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
    #expect(result.stdout == "clean: no decision changed at 10 cut points\nwarm-up: the rules need 20 bars before a decision (highest(close, 20))\n")
  }

  @Test func exportWritesABundle() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let id = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)["id"] as! String
    let bundle = qtool.home.appendingPathComponent("run.tar.gz").path
    #expect(try qtool.run(["backtest", "export", id, bundle]).status == 0)
    let listing = try qtool.shell("tar tzf '\(bundle)'")
    #expect(
      listing.stdout.split(separator: "\n").sorted()
        == ["manifest.json", "spec.yaml", "settings.json", "datasets.json", "metrics.json", "trades.csv", "equity.csv"].map { "\(id)/\($0)" }.sorted()
        .map { Substring($0) })
    let equity = try qtool.shell("tar xzOf '\(bundle)' \(id)/equity.csv | wc -l")
    #expect(equity.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "2149")
    #expect(try qtool.run(["backtest", "export", id, bundle]).status == 73)
  }

  /// The report opened in a real browser: headless Chromium parses it and draws the charts.
  @Test func reportRendersInHeadlessChromium() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let report = qtool.home.appendingPathComponent("report.html").path
    #expect(try qtool.run(["backtest", "run", spec, "--report", report]).status == 0)
    let profile = qtool.home.appendingPathComponent("chromium").path
    let flags = "--headless --no-sandbox --disable-gpu --user-data-dir='\(profile)'"
    let dom = try qtool.shell("chromium \(flags) --dump-dom 'file://\(report)' 2>/dev/null")
    #expect(dom.status == 0, "is Chromium installed? `make test` installs it")
    for marker in [
      "<svg id=\"equity-chart\"", "<svg id=\"drawdown-chart\"", "<polyline class=\"series\"", "<table id=\"monthly\"", "<table id=\"trades\"",
    ] {
      #expect(dom.stdout.contains(marker), "\(marker) is not in the rendered DOM")
    }
    let png = qtool.home.appendingPathComponent("report.png").path
    _ = try qtool.shell("chromium \(flags) --window-size=1200,1400 --screenshot='\(png)' 'file://\(report)' 2>/dev/null")
    let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
    #expect((size ?? 0) > 20_000, "the screenshot should show charts, got \(size ?? 0) bytes")
  }

  @Test func everyTemplateIsValidAndRuns() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    for template in ["sma_crossover", "ema_crossover", "rsi_reversion", "bollinger_reversion", "macd", "breakout", "buy_and_hold"] {
      let spec = qtool.home.appendingPathComponent("\(template).yaml").path
      let created = try qtool.run([
        "strategy", "new", template.replacingOccurrences(of: "_", with: "-"), "--template", template, "--symbol", "GOOG", "-o", spec,
      ])
      #expect(created.status == 0, "\(template): \(created.stderr)")
      let run = try qtool.run(["backtest", "run", spec, "--json"])
      #expect(run.status == 0, "\(template): \(run.stderr)")
    }
    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["strategy", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 7)
  }

  @Test func walkForwardMeasuresOutOfSample() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let result = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "slow=20,40", "--walk-forward", "2y/1y", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try json(result.stdout)
    let windows = report["windows"] as! [[String: Any]]
    #expect(windows.count == 6, "GOOG 2004-08 .. 2013-03: six 1-year tests after 2-year trains")
    #expect(windows[0]["test"] as? [String: String] == ["first": "2006-08-01T00:00:00Z", "last": "2007-07-31T00:00:00Z"])
    let compounded = windows.map { 1 + (($0["out_of_sample"] as! [String: Any])["total_return"] as! Double) }.reduce(1, *) - 1
    #expect(abs(compounded - (report["out_of_sample_return"] as! Double)) < 1e-12)
    #expect(try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--walk-forward", "20y/1y"]).status == 64)
  }

  @Test func momentumPortfolioOverSeveralDatasets() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let btc = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-BTCUSDT-1d.csv.gz").path
    try qtool.run(["data", "import", btc, "-s", "BTCUSDT", "-t", "1d"])
    let spec = qtool.home.appendingPathComponent("m.yaml").path
    #expect(try qtool.run(["strategy", "new", "m", "--template", "momentum", "--symbol", "GOOG,BTCUSDT", "-o", spec]).status == 0)
    // GOOG (2004-2013) and BTCUSDT (2021-2025) share no bars.
    let disjoint = try qtool.run(["backtest", "run", spec, "--allow-gaps"])
    #expect(disjoint.status == 66)
    #expect(disjoint.stderr.contains("GOOG-1d, BTCUSDT-1d share fewer than 2 bars"))
    let aapl = sharedData.appendingPathComponent("stooq/aapl_us_d.csv").path
    try qtool.run(["data", "import", aapl, "-s", "AAPL", "-t", "1d", "--source-name", "stooq"])
    try String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "[GOOG, BTCUSDT]", with: "[GOOG, AAPL]").write(
      toFile: spec, atomically: true, encoding: .utf8)
    let run = try qtool.run(["backtest", "run", spec, "--allow-gaps", "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let report = try json(run.stdout)
    #expect(report["dataset"] as? String == "GOOG-1d+AAPL-1d")
    #expect((report["metrics"] as! [String: Any])["trades"] as! Int > 10)
    #expect(try qtool.run(["backtest", "replay", report["id"] as! String]).status == 0)
  }

  @Test func namedBenchmarkDrivesBetaAndAlpha() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let aapl = sharedData.appendingPathComponent("stooq/aapl_us_d.csv").path
    try qtool.run(["data", "import", aapl, "-s", "AAPL", "-t", "1d", "--source-name", "stooq"])
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    let own = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)["metrics"] as! [String: Any]
    try (String(contentsOfFile: spec, encoding: .utf8) + "benchmark: AAPL\n").write(toFile: spec, atomically: true, encoding: .utf8)
    let against = try json(try qtool.run(["backtest", "run", spec, "--json"]).stdout)["metrics"] as! [String: Any]
    #expect(own["beta"] as! Double != against["beta"] as! Double, "beta is measured against AAPL now")
    #expect(own["final_equity"] as! Double == against["final_equity"] as! Double, "the strategy itself is unchanged")
    try (String(contentsOfFile: spec, encoding: .utf8).replacingOccurrences(of: "benchmark: AAPL", with: "benchmark: NOPE")).write(
      toFile: spec, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["backtest", "run", spec]).status == 66)
  }
}
