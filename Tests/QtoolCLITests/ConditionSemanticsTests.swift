import Foundation
import Testing

/// `--assert`, `grid --where` and `grid show --where` judge what a user wrote as the rules
/// language reads it, and never pass on a number nobody measured.
@Suite struct ConditionSemanticsTests {
  func prepared(_ yaml: String? = nil) throws -> (QtoolProcess, spec: String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    if let yaml {
      try yaml.write(toFile: spec, atomically: true, encoding: .utf8)
    } else {
      #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    }
    return (qtool, spec)
  }

  static func spec(params: String, entry: String, exit: String) -> String {
    """
    name: s
    universe: { symbols: [GOOG], timeframe: 1d }
    params: { \(params) }
    rules:
      entry: \(entry)
      exit: \(exit)
    sizing: { fraction: 1.0 }
    costs: { commission: 0.001, slippage_bps: 0 }
    execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
    """
  }

  /// A strategy that never trades has no sharpe: a gate must not pass on it by `not` or by
  /// the order of max's arguments.
  @Test func anUndefinedMetricFailsTheGateWhicheverWayItIsWritten() throws {
    let (qtool, spec) = try prepared(Self.spec(params: "fast: 10", entry: "false", exit: "close < sma(close, fast)"))
    defer { qtool.cleanUp() }
    for gate in ["not (sharpe > 1)", "not sharpe == 1", "max(1, sharpe) >= 1", "max(sharpe, 1) >= 1", "min(0, win_rate) <= 0", "sharpe != 1"] {
      let run = try qtool.run(["backtest", "run", spec, "--assert", gate, "--quiet"])
      #expect(run.status == 2, "\(gate): \(run.stderr)")
      #expect(run.stderr.contains("undefined: 0 trades"), "\(gate): \(run.stderr)")
    }
    // Unknown-or-true is true: the clause does not hang on the undefined metric.
    #expect(try qtool.run(["backtest", "run", spec, "--assert", "sharpe > 1 or trades == 0", "--quiet"]).status == 0)
    #expect(try qtool.run(["backtest", "run", spec, "--assert", "not (sharpe > 1 and trades > 0)", "--quiet"]).status == 0)
  }

  /// `or` binds looser than `and`: the gate holds although its first `and` operand fails.
  @Test func aGateKeepsTheLanguagesPrecedence() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["backtest", "run", spec, "--assert", "trades > 100000 and trades > 0 or trades > 0", "--quiet"]).status == 0)
    let failed = try qtool.run(["backtest", "run", spec, "--assert", "trades > 0 && trades > 100000", "--quiet"])
    #expect(failed.status == 2)
    #expect(failed.stderr.hasPrefix("qtool: assertion failed: trades > 100000 (trades = 33)\n"), "only the failing clause, as written; a count as a whole number")
  }

  /// A range of decimal steps holds the decimals written (0.3, not 0.30000000000000004), so
  /// `--where 'k == 0.3'` finds it, in the run and among the stored rows.
  @Test func aDecimalAxisHoldsTheValuesWritten() throws {
    let (qtool, spec) = try prepared(
      Self.spec(params: "k: 1.0, slow: 30", entry: "close > sma(close, slow) * k", exit: "close < sma(close, slow)"))
    defer { qtool.cleanUp() }
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "k=0.1..0.5:0.1", "--grid", "slow=30,40", "--where", "k == 0.3", "--json"])
    #expect(grid.status == 0, "\(grid.stderr)")
    let report = try jsonObject(grid.stdout)
    #expect(report["combinations"] as? Int == 2)
    let id = try #require(report["id"] as? String)
    let all = try jsonObject(try qtool.run(["backtest", "grid", "show", id, "--top", "100", "--json"]).stdout)
    let ks = (all["rows"] as! [[String: Any]]).map { ($0["params"] as! [String: Double])["k"]! }
    #expect(ks == [0.3, 0.3])
    let every = try jsonObject(try qtool.run(["backtest", "grid", spec, "--grid", "k=0.1..0.5:0.1", "--top", "100", "--json"]).stdout)
    let values = Set((every["results"] as! [[String: Any]]).map { ($0["params"] as! [String: Double])["k"]! })
    #expect(values == [0.1, 0.2, 0.3, 0.4, 0.5])
    // Written with exponents, the same decimals.
    let exponents = try jsonObject(try qtool.run(["backtest", "grid", spec, "--grid", "k=1.5e-1..3.5e-1:5e-2", "--top", "100", "--json"]).stdout)
    #expect(Set((exponents["results"] as! [[String: Any]]).map { ($0["params"] as! [String: Double])["k"]! }) == [0.15, 0.2, 0.25, 0.3, 0.35])
    // Axes that cannot be run as written are usage errors: infinite ends, a count past any
    // integer (both stopped the process), a value twice (it ran the same combination twice).
    for axis in ["k=0.1..inf:1", "k=-inf..0:1", "k=0..1e300:1e-300", "k=1e16..10000000000000004:0.5", "k=0.5,0.5"] {
      let refused = try qtool.run(["backtest", "grid", spec, "--grid", axis])
      #expect(refused.status == 64, "\(axis): \(refused.status) \(refused.stderr)")
    }
  }

  /// A param named like a metric cannot be told from it among a grid's rows: refused, with a
  /// caret, rather than silently read as the metric.
  @Test func aNameThatIsBothParamAndMetricIsRefusedInGridShow() throws {
    let (qtool, spec) = try prepared(
      Self.spec(params: "trades: 30, fast: 10", entry: "cross_above(sma(close, fast), sma(close, trades))", exit: "close < sma(close, trades)"))
    defer { qtool.cleanUp() }
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--grid", "trades=20,30", "--where", "fast < trades", "--json"])
    #expect(grid.status == 0, "\(grid.stderr)")
    let id = try #require(try jsonObject(grid.stdout)["id"] as? String)
    let show = try qtool.run(["backtest", "grid", "show", id, "--where", "sharpe > 0 and trades == 30"])
    #expect(show.status == 64)
    #expect(show.stderr.hasPrefix("qtool: error: where:1:16: 'trades' is both a param of this grid and a metric"), "\(show.stderr)")
    #expect(try qtool.run(["backtest", "grid", "show", id, "--where", "fast == 5"]).status == 0)
  }

  /// A `--where` that cannot be read is refused before the grid's job is recorded, as a bad
  /// `--assert` is.
  @Test func aRefusedWhereRecordsNoJob() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    for condition in ["fast >", "fats < slow", "sma(fast, 3) > 1"] {
      let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5,10", "--where", condition])
      #expect(grid.status == 64, "\(condition): \(grid.stderr)")
    }
    let jobs = try jsonArray(try qtool.run(["jobs", "list", "--json"]).stdout)
    #expect(jobs.map { $0["kind"] as? String } == ["import"], "\(jobs)")
  }

  /// An error's caret sits under the spot on a terminal: CRLF ends a line, a tab stays a tab.
  @Test func errorsPointAtTheSpotAcrossCRLFAndTabs() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let crlf = try qtool.run(["backtest", "run", spec, "--assert", "trades == 33 and\r\n\r\nfoo > 1"])
    #expect(crlf.status == 64)
    #expect(crlf.stderr.hasPrefix("qtool: error: assert:3:1: unknown metric 'foo'"), "\(crlf.stderr)")
    let tab = try qtool.run(["backtest", "run", spec, "--assert", "\ttrades = 33"])
    #expect(tab.status == 64)
    #expect(tab.stderr.contains("\n  \ttrades = 33\n  \t       ^"), "\(tab.stderr)")
  }
}
