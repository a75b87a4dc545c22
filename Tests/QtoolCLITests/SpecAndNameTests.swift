import Foundation
import QtoolEngine
import Testing

/// Names, params, costs and grids that would have run nonsense or crashed are refused with a
/// message that states the rule.
@Suite struct SpecAndNameTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    return qtool
  }

  /// Every template gives a sensible backtest on bundled GOOG: several trades, not always in
  /// the market (buy-and-hold, by design, holds throughout).
  @Test(arguments: StrategyTemplates.names.filter { $0 != "momentum" })
  func everyTemplateTradesSensibly(template: String) throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("\(template).yaml").path
    #expect(try qtool.run(["strategy", "new", "t", "--template", template, "--symbol", "GOOG", "-o", spec]).status == 0)
    #expect(try qtool.run(["strategy", "validate", spec]).status == 0)
    let run = try qtool.run(["backtest", "run", spec, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let metrics = try jsonObject(run.stdout)["metrics"] as! [String: Any]
    let trades = metrics["trades"] as! Int
    let exposure = metrics["exposure"] as! Double
    if template == "buy_and_hold" {
      #expect(trades == 1 && exposure > 0.9)
    } else {
      #expect(trades >= 5, "\(template): \(trades) trades")
      #expect(exposure < 0.9, "\(template): exposure \(exposure)")
    }
  }

  @Test func paramsNamedLikeColumnsOrFunctionsAreRefused() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    for (name, what) in [("low", "the price column 'low'"), ("sma", "the function 'sma'")] {
      let spec = qtool.home.appendingPathComponent("\(name).yaml")
      try """
      name: shadow
      universe: { symbols: [GOOG], timeframe: 1d }
      params: { \(name): 30 }
      rules:
        entry: rsi(close, 14) < 30
      """.write(to: spec, atomically: true, encoding: .utf8)
      let result = try qtool.run(["strategy", "validate", spec.path])
      #expect(result.status == 65)
      #expect(result.stderr.contains("\(spec.path):3:16: params.\(name) cannot be a param's name: it reads as \(what)"), "\(result.stderr)")
    }
  }

  @Test func costsOutOfRangeAreRefused() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    for bps in ["-500", "20000"] {
      let spec = qtool.home.appendingPathComponent("c.yaml")
      try """
      name: costs
      universe: { symbols: [GOOG], timeframe: 1d }
      rules: { entry: close > 0 }
      costs: { commission: 0.001, slippage_bps: \(bps) }
      """.write(to: spec, atomically: true, encoding: .utf8)
      let result = try qtool.run(["backtest", "run", spec.path])
      #expect(result.status == 65, "\(bps)")
      #expect(result.stderr.contains("costs.slippage_bps must be from 0 to 1000"), "\(result.stderr)")
    }
  }

  @Test func namesAreIdentifiers() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let slash = try qtool.run(["data", "import", Self.goog, "-s", "BTC/USDT", "-t", "1d"])
    #expect(slash.status == 64)
    #expect(slash.stderr.contains("'BTC/USDT' is not a valid symbol name: use letters, digits and . _ - ^ ="), "\(slash.stderr)")
    #expect(slash.stderr.contains("did you mean 'BTCUSDT'?"))
    let escape = try qtool.run(["data", "import", Self.goog, "-s", "X\u{1B}[31mRED", "-t", "1d"])
    #expect(escape.status == 64)
    #expect(!escape.stderr.contains("\u{1B}"), "control characters are never echoed")
    #expect(try qtool.run(["data", "import", Self.goog, "-s", String(repeating: "A", count: 5_000), "-t", "1d"]).status == 64)
    let evil = try qtool.run(["strategy", "new", "../../evil", "--symbol", "GOOG"])
    #expect(evil.status == 64)
    #expect(!FileManager.default.fileExists(atPath: qtool.home.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("evil.yaml").path))
    #expect(try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "dedupe", "--out", ".hidden"]).status == 64)
    for good in ["BRK.B", "^GSPC", "EURUSD=X"] {
      #expect(try qtool.run(["data", "import", Self.goog, "-s", good, "-t", "1d"]).status == 0, "\(good)")
    }
    // A source name is a name like the others: at most 64 of the same characters.
    for bad in [String(repeating: "s", count: 65), "my source", "a\u{1B}[31m", ".hidden"] {
      let result = try qtool.run(["data", "import", Self.goog, "-s", "SRC", "-t", "1d", "--source-name", bad])
      #expect(result.status == 64, "\(bad): \(result.stderr)")
      #expect(result.stderr.contains("is not a valid source name: use letters, digits and . _ - ^ = (at most 64"), "\(result.stderr)")
      #expect(!result.stderr.contains("\u{1B}"))
    }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "SRC", "-t", "1d", "--source-name", String(repeating: "s", count: 64)]).status == 0)
  }

  /// A repeatable KEY=VALUE option given one KEY twice is refused naming the key: which value
  /// was meant cannot be known (single-valued options take the last, by convention).
  @Test func aKeyGivenTwiceIsRefused() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-q"]).status == 0)
    let param = try qtool.run(["backtest", "run", "s", "--param", "fast=5", "--param", "slow=40", "--param", "fast=7"])
    #expect(param.status == 64, "\(param.stderr)")
    #expect(param.stderr.contains("--param fast is given twice ('fast=5' and 'fast=7')"), "\(param.stderr)")
    #expect(try qtool.run(["backtest", "list", "--json"]).stdout == "[\n\n]\n", "nothing ran")
    let map = try qtool.run(["data", "import", Self.goog, "-s", "M", "-t", "1d", "--map", "close=Close", "--map", "CLOSE=Open"])
    #expect(map.status == 64 && map.stderr.contains("--map close is given twice"), "\(map.stderr)")
    #expect(try qtool.run(["backtest", "run", "s", "--param", "fast=5", "--param", "slow=40", "-q"]).status == 0, "distinct keys are fine")
    // A single-valued option given twice takes the last, as documented.
    let twice = try qtool.run(["backtest", "run", "s", "--capital", "5000", "--capital", "20000", "--json"])
    #expect(twice.status == 0, "\(twice.stderr)")
    #expect(twice.stdout.contains("20000"), "the last --capital wins")
  }

  @Test func preprocessDoesNotOverwriteImportedDataByAccident() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let result = try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "dedupe", "--out", "GOOG-1d-copy"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "MSFT", "-t", "1d"]).status == 0)
    let replace = try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "dedupe", "--out", "MSFT-1d", "-f"])
    #expect(replace.status == 73)
    #expect(replace.stderr.contains("dataset 'MSFT-1d' holds imported bars, which preprocessing cannot make again"), "\(replace.stderr)")
    #expect(replace.stderr.contains("--replace-original"))
    #expect(try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "dedupe", "--out", "GOOG-1d-copy", "-f"]).status == 0, "a derived one is replaced")
    #expect(try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "dedupe", "--out", "MSFT-1d", "--replace-original"]).status == 0)
  }

  /// A dataset normalised with statistics of its whole range lets every bar see the future.
  @Test func checkFlagsLookAheadInTheData() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let normalized = try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "normalize method=min_max columns=close", "--out", "goog-norm"])
    #expect(normalized.status == 0, "\(normalized.stderr)")
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    #expect(try qtool.run(["backtest", "check", spec]).status == 0, "the original data is clean")
    let check = try qtool.run(["backtest", "check", spec, "--dataset", "goog-norm", "--json"])
    #expect(check.status == 1)
    let report = try jsonObject(check.stdout)
    #expect(report["clean"] as? Bool == false)
    #expect((report["data"] as? [String])?.first?.hasPrefix("goog-norm: normalize (min_max) scaled every bar with statistics of the whole range") == true)
  }

  @Test func gridsThatCannotRunAreRefusedBeforeAllocating() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("g.yaml").path
    #expect(try qtool.run(["strategy", "new", "g", "--symbol", "GOOG", "-o", spec]).status == 0)
    let twice = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "fast=20,30"])
    #expect(twice.status == 64)
    #expect(twice.stderr.contains("the param 'fast' is given two ranges of values"))
    let huge = try qtool.run(["backtest", "grid", spec, "--grid", "fast=1..100000:1", "--grid", "slow=1..100000:1", "--json"])
    #expect(huge.status == 64)
    #expect(huge.stderr.contains("the grid has 10000000000 combinations (before any condition), more than the limit of 1000000"))
    #expect(try errorObject(huge.stderr)["code"] as? String == "invalid_argument")
    let inf = try qtool.run(["backtest", "run", spec, "--param", "fast=inf"])
    #expect(inf.status == 64)
  }

  @Test func specErrorsPointAtTheValue() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("p.yaml")
    try """
    name: pct
    universe: { symbols: [GOOG], timeframe: 1d }
    rules:
      entry: close > 0
    costs:
      commission: 1%
    """.write(to: spec, atomically: true, encoding: .utf8)
    let result = try qtool.run(["strategy", "validate", spec.path])
    #expect(result.status == 65)
    #expect(result.stderr.contains("\(spec.path):6:15: 'costs.commission' must be a number ('1%')"), "\(result.stderr)")
    try """
    name: stop
    universe: { symbols: [GOOG], timeframe: 1d }
    rules:
      entry: close > 0
    risk: { stop_loss: 5 }
    """.write(to: spec, atomically: true, encoding: .utf8)
    let stop = try qtool.run(["strategy", "validate", spec.path])
    #expect(stop.status == 65)
    // A value out of its range is said where it is written, as its author wrote it (5, not 5.0).
    #expect(stop.stderr.contains("\(spec.path):5:20: risk.stop_loss must be a fraction between 0 and 1, e.g. 0.05 for 5%; got 5"), "\(stop.stderr)")
    try """
    name: levels
    universe: { symbols: [GOOG], timeframe: 1d }
    rules:
      entry: close > 0
    sizing: { fraction: 1.5 }
    signals:
      strong: 80
    """.write(to: spec, atomically: true, encoding: .utf8)
    let fraction = try qtool.run(["strategy", "validate", spec.path])
    #expect(fraction.status == 65)
    #expect(fraction.stderr.contains("\(spec.path):5:21: sizing.fraction must be above 0 and at most 1"), "\(fraction.stderr)")
    try String(contentsOf: spec, encoding: .utf8).replacingOccurrences(of: "1.5", with: "0.5").replacingOccurrences(of: "80", with: "180").write(to: spec, atomically: true, encoding: .utf8)
    let strong = try qtool.run(["strategy", "validate", spec.path])
    #expect(strong.stderr.contains("\(spec.path):7:11: signals.strong must be from 0 to 100, got 180"), "\(strong.stderr)")
  }

  @Test func rangesAndArgumentsAreUsageErrors() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    let inverted = try qtool.run(["backtest", "run", "s", "--from", "2012-01-01", "--to", "2011-01-01", "--json"])
    #expect(inverted.status == 64)
    #expect(inverted.stderr.contains("--from must come before --to"))
    #expect(try errorObject(inverted.stderr)["code"] as? String == "empty_range")
    #expect(try qtool.run(["data", "export", "GOOG-1d", "--from", "2012-01-01", "--to", "2012-01-01"]).status == 64)
    let export = try qtool.run(["backtest", "export", "r123"])
    #expect(export.status == 64)
    #expect(export.stderr.hasPrefix("qtool: error: missing required argument <file>"), "\(export.stderr)")
  }

  @Test func strategyDiffAndDelete() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    #expect(try qtool.run(["backtest", "run", "s"]).status == 0)
    let text = try String(contentsOfFile: spec, encoding: .utf8)
    try text.replacingOccurrences(of: "fast: 10", with: "fast: 12").write(toFile: spec, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["strategy", "validate", "s"]).status == 0, "registers v2")
    let diff = try qtool.run(["strategy", "diff", "s", "1", "2"])
    #expect(diff.status == 1, "the versions differ")
    #expect(diff.stdout.contains("\n-  fast: 10\n+  fast: 12\n"), "\(diff.stdout)")
    #expect(try qtool.run(["strategy", "diff", "s", "1", "1"]).status == 0)
    #expect(try qtool.run(["strategy", "diff", "s", "1", "9"]).status == 66)
    let deleted = try qtool.run(["strategy", "delete", "s", "--json"])
    #expect(deleted.status == 0)
    #expect((try jsonObject(deleted.stdout)["deleted"] as? [String: Any])?["strategy"] as? String == "s")
    #expect(try qtool.run(["strategy", "show", "s"]).status == 66)
    #expect(try jsonArray(try qtool.run(["backtest", "list", "--json"]).stdout).count == 1, "recorded runs keep their spec")
  }
}
