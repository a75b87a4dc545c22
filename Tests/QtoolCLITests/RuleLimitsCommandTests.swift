import Foundation
import Testing

/// Rules that used to crash the binary (stack overflow on deep nesting, a trap on huge or
/// infinite periods) are errors with a caret, and nothing is recorded.
@Suite struct RuleLimitsCommandTests {
  func prepared() throws -> (QtoolProcess, spec: String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    return (qtool, spec)
  }

  func runCount(_ qtool: QtoolProcess) throws -> Int {
    let list = try qtool.run(["backtest", "list", "--json"])
    return (try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [Any])?.count ?? -1
  }

  func writeSpec(_ qtool: QtoolProcess, _ spec: String, replacing old: String, with new: String) throws -> String {
    let path = qtool.home.appendingPathComponent("edited-\(UUID().uuidString.prefix(8)).yaml").path
    let text = try String(contentsOfFile: spec, encoding: .utf8)
    #expect(text.contains(old))
    try text.replacingOccurrences(of: old, with: new).write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test func deeplyNestedCommandLineRulesAreUsageErrors() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let deep = String(repeating: "(", count: 5_000) + "sharpe" + String(repeating: ")", count: 5_000) + " > 0"
    let assert = try qtool.run(["backtest", "run", spec, "--assert", deep])
    #expect(assert.status == 64, "\(assert.stderr.prefix(300))")
    #expect(
      assert.stderr.hasPrefix(
        "qtool: error: assert:1:257: the rule nests more than 256 levels deep (parentheses, calls, or a chain of operators); split it into simpler rules\n"
      ))
    #expect(try runCount(qtool) == 0, "no run recorded")

    let whereDeep = String(repeating: "(", count: 5_000) + "fast" + String(repeating: ")", count: 5_000) + " < slow"
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--where", whereDeep])
    #expect(grid.status == 64)
    #expect(grid.stderr.hasPrefix("qtool: error: where:1:257: the rule nests more than 256 levels deep"))
    #expect(try runCount(qtool) == 0)

    // A condition on metrics is parsed once for every row it judges, so a metric is a column
    // there as a series is in a spec: a long flat chain is as deep as it is long and is refused
    // at the limit, at once (it took 17–22 s when each metric was a constant), before any run.
    let chain = String(repeating: "trades+", count: 18_000) + "trades > 0"
    let long = try qtool.run(["backtest", "run", spec, "--assert", chain])
    #expect(long.status == 64, "\(long.stderr.prefix(300))")
    #expect(long.stderr.hasPrefix("qtool: error: assert:1:1799: the rule nests more than 256 levels deep"))
    #expect(try runCount(qtool) == 0)
  }

  @Test func longSeriesChainInASpecIsRefusedAtTheDepthLimit() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let chain = String(repeating: "close + ", count: 20_000) + "close > 0"
    let edited = try writeSpec(qtool, spec, replacing: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: \(chain)")
    let validate = try qtool.run(["strategy", "validate", edited])
    #expect(validate.status == 65)
    #expect(validate.stderr.hasPrefix("qtool: error: \(edited):rules.entry:1:2055: the rule nests more than 256 levels deep"))
  }

  @Test func deeplyNestedSpecRuleIsBadInput() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let deep = String(repeating: "(", count: 4_500) + "close > 1" + String(repeating: ")", count: 4_500)
    let edited = try writeSpec(qtool, spec, replacing: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: \(deep)")
    let validate = try qtool.run(["strategy", "validate", edited])
    #expect(validate.status == 65)
    #expect(validate.stderr.hasPrefix("qtool: error: \(edited):rules.entry:1:257: the rule nests more than 256 levels deep"))
    #expect(validate.stderr.hasSuffix("^\n"), "with a caret under the spot")
  }

  /// `fast=inf`, `fast=1e20` and `params: {fast: 1e20}` used to pass `validate` and trap at
  /// run time; `close[1e20]` trapped in validate.
  @Test func periodsAndLagsOutOfRangeAreRefusedBeforeARun() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let infinite = try qtool.run(["backtest", "run", spec, "--param", "fast=inf"])
    #expect(infinite.status == 64 && infinite.stderr.hasPrefix("qtool: error: param fast: inf is not a finite number"), "\(infinite.stderr)")
    for value in ["1e20", "0.5", "-1"] {
      let run = try qtool.run(["backtest", "run", spec, "--param", "fast=\(value)"])
      #expect(run.status == 65, "fast=\(value): \(run.stderr.prefix(300))")
      let shown = value == "inf" ? "inf" : value == "1e20" ? "1e+20" : value
      #expect(
        run.stderr.hasPrefix(
          "qtool: error: \(spec):rules.entry:1:24: argument 2 of sma must be a whole number of bars from 1 to 1,000,000 (a literal or a param), got fast = \(shown)\n"
        ), "\(run.stderr)")
    }
    #expect(try runCount(qtool) == 0)

    let huge = try writeSpec(qtool, spec, replacing: "fast: 10", with: "fast: 1e20")
    let validate = try qtool.run(["strategy", "validate", huge])
    #expect(validate.status == 65)
    #expect(validate.stderr.contains("got fast = 1e+20"))

    let lag = try writeSpec(qtool, spec, replacing: "entry: cross_above(sma(close, fast), sma(close, slow))", with: "entry: close[1e20] > close")
    let lagged = try qtool.run(["strategy", "validate", lag])
    #expect(lagged.status == 65)
    #expect(
      lagged.stderr.hasPrefix(
        "qtool: error: \(lag):rules.entry:1:7: a lag needs a whole number of bars from 0 to 1,000,000, e.g. close[1]; got 1e20\n"))

    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,1e20"])
    #expect(grid.status == 65, "\(grid.stderr.prefix(300))")
    #expect(grid.stderr.contains("got fast = 1e+20"))
    #expect(try runCount(qtool) == 0)
  }
}
