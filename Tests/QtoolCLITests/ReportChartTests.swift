import Foundation
import Testing

/// The HTML report tells runs apart and shows where each trade happened.
@Suite struct ReportChartTests {
  @Test func theReportShowsSettingsAndEveryTradeOnThePriceChart() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "--template", "sma_crossover", "-o", spec]).status == 0)
    let report = qtool.home.appendingPathComponent("r.html").path
    let run = try qtool.run(["backtest", "run", spec, "--param", "fast=12", "--report", report, "--json"])
    #expect(run.status == 0, "\(run.stderr)")
    let trades = ((try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any])["trades"] as! [Any]).count
    let html = try String(contentsOfFile: report, encoding: .utf8)
    #expect(html.contains("<tr><th>params</th><td style=\"text-align:left\">fast=12 slow=30</td></tr>"))
    #expect(html.contains("<tr><th>costs</th><td style=\"text-align:left\">commission 0.1% slippage 0 bps</td></tr>"))
    #expect(html.contains("<svg id=\"price-chart\"") && html.contains("data-scale=\"log\""), "GOOG went from 100 to 800: log scale")
    #expect(trades > 10)
    #expect(html.components(separatedBy: "<polygon class=\"entry\"").count - 1 == trades, "one entry marker per trade")
    #expect(html.components(separatedBy: "<circle class=\"exit\"").count - 1 == trades, "one exit marker per trade")
    let ticks = (2005...2013).filter { html.contains(">\($0)</text>") }
    #expect(ticks.count >= 6, "date ticks by year: \(ticks)")
    #expect(!html.contains("e+"), "no scientific notation")
  }
}
