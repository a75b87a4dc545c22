import Foundation
import Testing

/// A ratio over zero is infinite (profit_factor with no losing trade, sortino with no losing
/// bar, calmar with no drawdown); the store writes it as JSON null. Every text rendering of the
/// same run shows what `backtest run` showed, whether it reads the run from memory or the store.
@Suite(.timeLimit(.minutes(5))) struct StoredInfiniteMetricsTests {
  /// A steadily rising series and a strategy that takes 2% each time: every trade wins.
  func prepared() throws -> (QtoolProcess, String) {
    let qtool = try QtoolProcess()
    var csv = "timestamp,open,high,low,close,volume\n"
    for i in 0..<120 {
      let price = 100 * pow(1.01, Double(i))
      csv += String(format: "%d,%.4f,%.4f,%.4f,%.4f,1000\n", 1_577_836_800 + i * 86_400, price, price * 1.005, price * 0.999, price * 1.004)
    }
    let file = qtool.home.appendingPathComponent("up.csv")
    try csv.write(to: file, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", file.path, "-s", "UP", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("up.yaml")
    try """
    name: up
    universe: { symbols: [UP], timeframe: 1d }
    params: { floor: 0 }
    rules:
      entry: close > floor
      exit: close < 0
    sizing: { fraction: 1.0 }
    costs: { commission: 0, slippage_bps: 0 }
    risk: { take_profit: 0.02 }
    execution: { fill: next_open, units: fractional, close_at_end: true, capital: 10000 }
    """.write(to: spec, atomically: true, encoding: .utf8)
    return (qtool, spec.path)
  }

  /// The value shown after `label` on a line of a text rendering.
  func shown(_ text: String, _ label: String) -> [String] {
    text.split(separator: "\n").compactMap { line -> String? in
      guard let range = line.range(of: label + " ") else { return nil }
      return line[range.upperBound...].split(separator: " ").first.map(String.init)
    }
  }

  @Test func runAndStoreShowTheSameInfinities() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let run = try qtool.run(["backtest", "run", spec])
    #expect(run.status == 0, "\(run.stderr)")
    #expect(shown(run.stdout, "profit factor") == ["inf"], "\(run.stdout)")
    #expect(shown(run.stdout, "sortino") == ["inf"] && shown(run.stdout, "calmar") == ["inf"], "\(run.stdout)")
    let id = try #require(try jsonArray(try qtool.run(["backtest", "list", "--json"]).stdout).first?["id"] as? String)
    let show = try qtool.run(["backtest", "show", id])
    #expect(show.status == 0, "\(show.stderr)")
    for label in ["profit factor", "sortino", "calmar"] {
      #expect(shown(show.stdout, label) == shown(run.stdout, label), "\(label): \(show.stdout)")
    }
    for line in show.stdout.split(separator: "\n") where ["profit", "sortino", "calmar"].contains(where: line.contains) {
      #expect(!line.contains("n/a"), "\(line)")
    }
    // --assert on an infinite profit factor holds for a run; a stored run's metrics read the same.
    #expect(try qtool.run(["backtest", "run", spec, "--assert", "profit_factor > 1.5", "-q"]).status == 0)
    let detail = try qtool.run(["backtest", "show", id, "--json"])
    #expect(detail.stdout.contains("\"profit_factor\" : null"), "JSON still writes null: \(detail.stdout.prefix(600))")
    // backtest compare (text) shows it as run did; list --json leaves it out, as before.
    let listed = try jsonArray(try qtool.run(["backtest", "list", "--json"]).stdout)
    #expect(listed.count == 2 && listed.allSatisfy { ($0["metrics"] as? [String: Any])?["profit_factor"] == nil })
    let compare = try qtool.run(["backtest", "compare"] + listed.map { $0["id"] as! String })
    #expect(compare.status == 0, "\(compare.stderr)")
    #expect(shown(compare.stdout, "profit_factor").first == "inf", "\(compare.stdout)")
  }

  @Test func storedGridsShowInfinityAsTheLocalGridRanksIt() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "floor=0,1000", "--rank", "profit_factor", "--json"])
    #expect(grid.status == 0, "\(grid.stderr)")
    let id = try #require(try jsonObject(grid.stdout)["id"] as? String)
    // floor=0 trades (all wins: inf), floor=1000 never does (n/a): inf ranks first.
    let show = try qtool.run(["backtest", "grid", "show", id])
    #expect(show.status == 0, "\(show.stderr)")
    let lines = show.stdout.split(separator: "\n").map(String.init)
    let first = try #require(lines.first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("1 ") })
    #expect(first.contains("inf"), "\(show.stdout)")
    #expect(!first.contains("n/a"), "\(show.stdout)")
    // --where on it holds as --assert does.
    let kept = try qtool.run(["backtest", "grid", "show", id, "--where", "profit_factor > 1.5", "--json"])
    #expect(kept.status == 0, "\(kept.stderr)")
    #expect((try jsonObject(kept.stdout)["matching"] as? Int) == 1, "\(kept.stdout)")
    #expect(kept.stdout.contains("\"profit_factor\" : null"), "JSON still writes null")
    // The grid's HTML report too.
    let html = qtool.home.appendingPathComponent("grid.html").path
    #expect(try qtool.run(["backtest", "grid", "show", id, "--report", html, "-q"]).status == 0)
    let text = try String(contentsOfFile: html, encoding: .utf8)
    #expect(text.contains("<td>inf</td>"), "\(text.suffix(800))")
  }
}
