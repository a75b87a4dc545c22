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
      #expect(result.stderr.contains("params.\(name): a param cannot be named like \(what)"), "\(result.stderr)")
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
}
