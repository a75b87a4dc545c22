import Foundation
import Testing

/// Feature columns a pipeline adds (`data preprocess --op 'features …'`) are columns like
/// close: rules read them by name, export writes them and info shows them.
@Suite struct FeatureColumnsTests {
  func json(_ text: String) throws -> [String: Any] { try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any] }

  /// GOOG imported, GOOGF-1d derived from it with rsi14 and trend.
  func prepared() throws -> QtoolProcess {
    let qtool = try QtoolProcess()
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let derived = try qtool.run([
      "data", "preprocess", "GOOG-1d", "--out", "GOOGF-1d", "--op", "features rsi14=rsi(close, 14); trend=close / sma(close, 50) - 1",
    ])
    #expect(derived.status == 0, "\(derived.stderr)")
    return qtool
  }

  func spec(_ qtool: QtoolProcess, _ name: String, symbol: String, entry: String, exit: String) throws -> String {
    let path = qtool.home.appendingPathComponent("\(name).yaml").path
    try """
    name: \(name)
    universe: { symbols: [\(symbol)], timeframe: 1d }
    rules:
      entry: \(entry)
      exit: \(exit)
    costs: { commission: 0.001 }
    """.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  @Test func rulesReadAFeatureAsTheIndicatorItWasComputedFrom() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let byName = try spec(qtool, "by-name", symbol: "GOOGF", entry: "rsi14 < 40 and trend > -0.05", exit: "rsi14 > 65")
    let inline = try spec(
      qtool, "inline", symbol: "GOOG", entry: "rsi(close, 14) < 40 and close / sma(close, 50) - 1 > -0.05", exit: "rsi(close, 14) > 65")
    for range in [[], ["--from", "2009-01-01", "--to", "2012-01-01"]] {
      let a = try qtool.run(["backtest", "run", byName, "--json"] + range)
      let b = try qtool.run(["backtest", "run", inline, "--json"] + range)
      #expect(a.status == 0 && b.status == 0, "\(a.stderr)\(b.stderr)")
      let (x, y) = (try json(a.stdout), try json(b.stdout))
      let (mx, my) = (x["metrics"] as! [String: Any], y["metrics"] as! [String: Any])
      #expect((mx["trades"] as! Int) >= 5, "a rule on a feature trades")
      #expect(mx["trades"] as? Int == my["trades"] as? Int && mx["final_equity"] as? Double == my["final_equity"] as? Double, "\(range)")
    }
    let grid = try qtool.run(["backtest", "grid", byName, "--grid", "dummy=1,2"])
    #expect(grid.status == 64, "no such param: the grid still checks its axes")
  }

  @Test func anUnknownColumnIsNamedAtItsPlaceWithTheDatasColumns() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let typo = try spec(qtool, "typo", symbol: "GOOGF", entry: "rsi14 < 40", exit: "rsi15 > 65")
    let run = try qtool.run(["backtest", "run", typo])
    #expect(run.status == 65)
    #expect(run.stderr.contains("\(typo):rules.exit:1:1: unknown name 'rsi15' — did you mean 'rsi14'?"), "\(run.stderr)")
    #expect(run.stderr.contains("the data's feature columns (rsi14, trend)"))
    // The plain dataset has no feature columns at all.
    let plain = try spec(qtool, "plain", symbol: "GOOG", entry: "rsi14 < 40", exit: "rsi14 > 65")
    let refused = try qtool.run(["backtest", "run", plain])
    #expect(refused.status == 65 && refused.stderr.contains("rules.entry:1:1: unknown name 'rsi14'"), "\(refused.stderr)")
    let runs = try JSONSerialization.jsonObject(with: Data(try qtool.run(["backtest", "list", "--json"]).stdout.utf8)) as! [Any]
    #expect(runs.isEmpty, "nothing recorded")
  }

  @Test func exportAndInfoCarryTheFeatureColumns() throws {
    let qtool = try prepared()
    defer { qtool.cleanUp() }
    let csv = try qtool.run(["data", "export", "GOOGF-1d"])
    let lines = csv.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    #expect(lines[0] == "timestamp,open,high,low,close,volume,rsi14,trend")
    #expect(lines[1].hasSuffix(",,"), "undefined during the indicators' warm-up: empty")
    let row = lines[60].split(separator: ",", omittingEmptySubsequences: false)
    #expect(row.count == 8 && Double(row[6]).map { $0 > 0 && $0 < 100 } == true && Double(row[7]) != nil)

    let jsonl = try qtool.run(["data", "export", "GOOGF-1d", "--format", "jsonl"]).stdout.split(separator: "\n")
    let first = try json(String(jsonl[0])), later = try json(String(jsonl[59]))
    #expect(first["rsi14"] is NSNull && first.keys.contains("trend"))
    #expect((later["rsi14"] as? Double).map { $0 > 0 && $0 < 100 } == true)

    let info = try json(try qtool.run(["data", "info", "GOOGF-1d", "--json"]).stdout)
    let columns = (info["columns"] as! [[String: Any]]).map { $0["name"] as! String }
    #expect(columns == ["open", "high", "low", "close", "volume", "rsi14", "trend"])
    let sample = info["sample"] as! [[String: Any]]
    let features = sample.last!["features"] as! [[String: Any]]
    #expect(features.map { $0["name"] as! String } == ["rsi14", "trend"] && features[0]["value"] is Double)
    #expect((sample[0]["features"] as! [[String: Any]])[0]["value"] is NSNull)
    let table = try qtool.run(["data", "info", "GOOGF-1d"]).stdout
    #expect(table.contains("VOLUME   RSI14   TREND") || table.contains("RSI14") && table.contains("TREND"))
  }
}
