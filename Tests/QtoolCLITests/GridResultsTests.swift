import Foundation
import Testing

/// A grid's rows stay reachable after the run: listed, filtered, sorted, exported, charted,
/// and any row re-run as a full backtest that agrees with the grid.
@Suite struct GridResultsTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  /// A home with GOOG imported, a spec and one stored grid of 4 × 3 combinations; returns its id.
  func prepared() throws -> (QtoolProcess, spec: String, grid: String) {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec]).status == 0)
    // `backtest grid SPEC` without `run` still runs a grid: `run` is the group's default.
    let grid = try qtool.run(["backtest", "grid", spec, "--grid", "fast=5..20:5", "--grid", "slow=20,40,60", "--json"])
    #expect(grid.status == 0, "\(grid.stderr)")
    return (qtool, spec, try json(grid.stdout)["id"] as! String)
  }

  @Test func storedGridsAreListedAndTheirRowsShownFilteredAndSorted() throws {
    let (qtool, spec, id) = try prepared()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["backtest", "grid", "run", spec, "--grid", "fast=5,10", "--grid", "slow=20,40", "-q"]).status == 0)
    let list = try JSONSerialization.jsonObject(with: Data(try qtool.run(["backtest", "grid", "list", "--json"]).stdout.utf8)) as! [[String: Any]]
    #expect(list.count == 2)
    #expect(list.map { $0["combinations"] as? Int } == [4, 12], "newest first")
    #expect(list[1]["id"] as? String == id && list[1]["strategy"] as? String == "s" && list[1]["dataset"] as? String == "GOOG-1d")

    let all = try json(try qtool.run(["backtest", "grid", "show", id, "--json", "--top", "100"]).stdout)
    let rows = all["rows"] as! [[String: Any]]
    #expect(rows.count == 12 && all["matching"] as? Int == 12)
    #expect(rows.map { $0["row"] as? Int } == Array(1...12).map { Optional($0) }, "rows keep the grid's ranking")

    let filtered = try qtool.run(["backtest", "grid", "show", id, "--where", "trades > 30 and fast < 20", "--sort", "max_drawdown", "--json"])
    #expect(filtered.status == 0, "\(filtered.stderr)")
    let kept = try json(filtered.stdout)["rows"] as! [[String: Any]]
    #expect(!kept.isEmpty && kept.count < 12)
    for row in kept {
      let metrics = row["metrics"] as! [String: Any], params = row["params"] as! [String: Double]
      #expect((metrics["trades"] as! Int) > 30 && params["fast"]! < 20)
    }
    let drawdowns = kept.map { ($0["metrics"] as! [String: Any])["max_drawdown"] as! Double }
    #expect(drawdowns == drawdowns.sorted(by: >), "the shallowest drawdown is the best")
    let worst = try json(try qtool.run(["backtest", "grid", "show", id, "--sort", "max_drawdown", "--worst", "--top", "1", "--json"]).stdout)
    #expect(((worst["rows"] as! [[String: Any]])[0]["metrics"] as! [String: Any])["max_drawdown"] as? Double
      == rows.map { ($0["metrics"] as! [String: Any])["max_drawdown"] as! Double }.min())

    // The table prints counts as counts and never a negative zero.
    let table = try qtool.run(["backtest", "grid", "show", id])
    #expect(table.status == 0 && !table.stdout.contains("-0.000") && !table.stdout.contains(".000 \n"))
    #expect(table.stdout.split(separator: "\n").first.map { $0.hasPrefix("ROW  fast  slow  sharpe") } == true, "\(table.stdout)")
  }

  @Test func rowsExportAsCSVAndAsAHeatmap() throws {
    let (qtool, _, id) = try prepared()
    defer { qtool.cleanUp() }
    let csv = try qtool.run(["backtest", "grid", "show", id, "--csv", "--top", "100"])
    let lines = csv.stdout.split(separator: "\n")
    #expect(lines.count == 13 && lines[0].hasPrefix("row,fast,slow,"))
    let report = qtool.home.appendingPathComponent("grid.html").path
    #expect(try qtool.run(["backtest", "grid", "show", id, "--report", report, "-q"]).status == 0)
    let html = try String(contentsOfFile: report, encoding: .utf8)
    #expect(html.contains("<table class=\"heat\"><tr><th>slow \\ fast</th><th>5</th><th>10</th><th>15</th><th>20</th></tr>"))
    // One coloured cell per combination whose sharpe is defined (fast = slow = 20 never trades).
    #expect(html.components(separatedBy: "<td style=\"background:hsl(").count - 1 == 11)
    #expect(html.contains("title=\"fast=10 slow=20\"") && !html.contains("-0.000") && !html.contains(">47.000<"))
    #expect(try qtool.run(["backtest", "grid", "show", id, "--report", report]).status != 0, "an existing report is kept without --force")
  }

  @Test func aRowOpensAsAFullBacktestWithTheGridsNumbers() throws {
    let (qtool, _, id) = try prepared()
    defer { qtool.cleanUp() }
    let shown = try json(try qtool.run(["backtest", "grid", "show", id, "--json"]).stdout)
    let third = (shown["rows"] as! [[String: Any]])[2]
    let opened = try qtool.run(["backtest", "grid", "open", String(id.prefix(6)), "3", "--json"])
    #expect(opened.status == 0, "\(opened.stderr)")
    let run = try json(opened.stdout)
    #expect(run["params"] as? [String: Double] == third["params"] as? [String: Double])
    #expect((run["metrics"] as! [String: Any])["sharpe"] as? Double == (third["metrics"] as! [String: Any])["sharpe"] as? Double)
    #expect(try qtool.run(["backtest", "show", run["id"] as! String]).status == 0, "the row was recorded as a run")
  }

  @Test func badReferencesToGridsSayWhatExists() throws {
    let (qtool, _, id) = try prepared()
    defer { qtool.cleanUp() }
    let noRow = try qtool.run(["backtest", "grid", "open", id, "99"])
    #expect(noRow.status == 66 && noRow.stderr.contains("its rows are 1 to 12"))
    let noGrid = try qtool.run(["backtest", "grid", "show", "nosuch"])
    #expect(noGrid.status == 66 && noGrid.stderr.contains("backtest grid list"))
    #expect(try qtool.run(["backtest", "grid", "show", id, "--sort", "nosuch"]).status == 64)
    #expect(try qtool.run(["backtest", "grid", "show", id, "--where", "nosuch > 1"]).status == 64)
    #expect(try qtool.run(["backtest", "grid", "show", id, "--top", "0"]).status == 64)
  }
}
