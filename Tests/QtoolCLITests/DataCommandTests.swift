import Foundation
import Testing

let sharedData = QtoolProcess.packageRoot.deletingLastPathComponent().appendingPathComponent("shared/data")

@Suite struct DataCommandTests {
  func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

  @Test func importListInfoExportDelete() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let goog = sharedData.appendingPathComponent("backtesting_py/GOOG.csv").path
    let imported = try qtool.run(["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d", "--json"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let report = try json(imported.stdout) as! [String: Any]
    #expect(report["dataset"] as? String == "GOOG-1d")
    #expect(report["bars_added"] as? Int == 2148)
    #expect(report["bars"] as? Int == 2148)
    #expect(report["first"] as? String == "2004-08-19T00:00:00Z")
    #expect(report["last"] as? String == "2013-03-01T00:00:00Z")

    let list = try json(try qtool.run(["data", "list", "--json"]).stdout) as! [[String: Any]]
    #expect(list.count == 1)
    #expect(list[0]["calendar"] as? String == "weekdays")
    #expect(list[0]["dataset"] as? String == "GOOG-1d")
    #expect(list[0]["bars"] as? Int == 2148)
    #expect(list[0]["gaps"] as? Int == 0)
    #expect(list[0]["first"] as? String == "2004-08-19T00:00:00Z")
    let table = try qtool.run(["data", "list"]).stdout
    #expect(
      table.hasPrefix(
        "DATASET  SOURCE  SYMBOL  TF  FIRST       LAST        BARS  GAPS  ORIGIN\nGOOG-1d  csv     GOOG    1d  2004-08-19  2013-03-01  2148     0  imported\n"
      ))

    let info = try json(try qtool.run(["data", "info", "GOOG-1d", "--json"]).stdout) as! [String: Any]
    #expect(((info["dataset"] as! [String: Any])["content_hash"] as! String).hasPrefix("sha256:"))
    #expect((info["sample"] as! [Any]).count == 10)

    let export = try qtool.run(["data", "export", "GOOG-1d", "--from", "2004-08-19", "--to", "2004-08-21"])
    #expect(
      export.stdout
        == "timestamp,open,high,low,close,volume\n2004-08-19T00:00:00Z,100.0,104.06,95.96,100.34,22351900.0\n2004-08-20T00:00:00Z,101.01,109.08,100.5,108.31,11428600.0\n"
    )
    let jsonl = try qtool.run(["data", "export", "GOOG-1d", "--format", "jsonl", "--to", "2004-08-20"])
    #expect(
      jsonl.stdout
        == "{\"time\":\"2004-08-19T00:00:00Z\",\"open\":100.0,\"high\":104.06,\"low\":95.96,\"close\":100.34,\"volume\":22351900.0}\n"
    )

    // Exported CSV imports back to the same content.
    let file = qtool.home.appendingPathComponent("goog.csv").path
    #expect(try qtool.run(["data", "export", "GOOG-1d", "-o", file]).status == 0)
    #expect(try qtool.run(["data", "import", file, "-s", "GOOG", "-t", "1d", "--name", "copy"]).status == 0)
    let copy = try json(try qtool.run(["data", "info", "copy", "--json"]).stdout) as! [String: Any]
    #expect((copy["dataset"] as! [String: Any])["content_hash"] as? String == (info["dataset"] as! [String: Any])["content_hash"] as? String)
    #expect(try qtool.run(["data", "export", "GOOG-1d", "-o", file]).status == 73)

    let deleted = try qtool.run(["data", "delete", "GOOG-1d"])
    #expect(deleted.stderr == "deleted GOOG-1d (2148 bars)\n" && deleted.stdout.isEmpty)
    let missing = try qtool.run(["data", "info", "GOOG-1d"])
    #expect(missing.status == 66)
    #expect(missing.stderr == "qtool: error: no dataset named 'GOOG-1d'; `qtool data list` shows the stored datasets\n")
    let typo = try qtool.run(["data", "info", "cpy"])
    #expect(typo.stderr.contains("(did you mean 'copy'?)"))
  }

  @Test func binanceArchivesAcrossTheTimestampSwitchVerifyClean() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let directory = sharedData.appendingPathComponent("binance_vision/data/spot/monthly/klines/BTCUSDT/1d")
    let files = (try FileManager.default.contentsOfDirectory(atPath: directory.path)).filter { $0.hasSuffix(".zip") }.sorted()
      .map { directory.appendingPathComponent($0).path }
    let result = try qtool.run(["data", "import"] + files + ["-s", "BTCUSDT", "-t", "1d", "--source-name", "binance"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.hasPrefix("imported 1795 bars into BTCUSDT-1d (1795 stored, 2021-02-01 … 2025-12-31, 0 gaps)"))
    let verify = try qtool.run(["data", "verify", "BTCUSDT-1d"])
    #expect(verify.status == 0)
    #expect(verify.stdout == "BTCUSDT-1d: ok — 1795 bars, 24x7 calendar\n")
  }

  @Test func verifyFindsGapsAndExits65() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("gappy.csv")
    try """
    timestamp,open,high,low,close,volume
    2024-01-01T00:00:00Z,1,2,0.5,1.5,10
    2024-01-01T01:00:00Z,1,2,0.5,1.5,10
    2024-01-01T05:00:00Z,1,2,0.5,1.5,10
    2024-01-01T06:00:00Z,1,2,0.5,1.5,10
    """.write(to: file, atomically: true, encoding: .utf8)
    // (A bar with high below low is refused at import now: see ImportValidationTests.)
    #expect(try qtool.run(["data", "import", file.path, "-s", "BTCUSDT", "-t", "1h"]).status == 0)
    let verify = try qtool.run(["data", "verify", "--json"])
    #expect(verify.status == 65)
    let results = try json(verify.stdout) as! [[String: Any]]
    let kinds = (results[0]["problems"] as! [[String: Any]]).map { $0["kind"] as! String }
    #expect(kinds == ["gap"])
    #expect(results[0]["ok"] as? Bool == false)
  }

  @Test func badInputIsAClearErrorAndStoresNothing() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let good = qtool.home.appendingPathComponent("good.csv")
    let bad = qtool.home.appendingPathComponent("bad.csv")
    try "date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n".write(to: good, atomically: true, encoding: .utf8)
    try "date,open,high,low,close\n2024-01-03,1,2,0.5,1.5\n2024-01-04,1,2,x,1.5\n".write(to: bad, atomically: true, encoding: .utf8)
    let result = try qtool.run(["data", "import", good.path, bad.path, "-s", "X", "-t", "1d"])
    #expect(result.status == 65)
    #expect(result.stderr == "qtool: error: \(bad.path):3: low: expected a number, got 'x'\n")
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n")
    let missing = try qtool.run(["data", "import", "/nonexistent.csv", "-s", "X", "-t", "1d"])
    #expect(missing.status == 66)
    let badMap = try qtool.run(["data", "import", good.path, "-s", "X", "-t", "1d", "--map", "opn=Open"])
    #expect(badMap.status == 64)
    #expect(badMap.stderr.hasPrefix("qtool: error: --map: unknown field 'opn'; use timestamp, open, high, low, close or volume\n"))
    let noSymbol = try qtool.run(["data", "import", good.path, "-t", "1d"])
    #expect(noSymbol.status == 64)
    #expect(noSymbol.stderr.hasPrefix("qtool: error: missing required option --symbol <symbol>\n"))
  }
}

@Suite struct PreprocessCommandTests {
  @Test func derivedDatasetWithLineageAndFeatures() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let eurusd = sharedData.appendingPathComponent("backtesting_py/EURUSD.csv").path
    #expect(try qtool.run(["data", "import", eurusd, "-s", "EURUSD", "-t", "1h"]).status == 0)
    let pipeline = qtool.home.appendingPathComponent("pipeline.json")
    try #"{"operations":[{"type":"fill_missing","method":"forward_fill","columns":["close"]},{"type":"resample","timeframe":"4h"}]}"#
      .write(to: pipeline, atomically: true, encoding: .utf8)
    let result = try qtool.run([
      "data", "preprocess", "EURUSD-1h", "--pipeline", pipeline.path, "--op", "features rsi_14=rsi(close, 14); sma_10=sma(close, 10)", "--out",
      "eurusd-4h", "--json",
    ])
    #expect(result.status == 0, "\(result.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    #expect(report["timeframe"] as? String == "4h")
    #expect(report["columns"] as? [String] == ["open", "high", "low", "close", "volume", "rsi_14", "sma_10"])
    let info = try JSONSerialization.jsonObject(with: Data(try qtool.run(["data", "info", "eurusd-4h", "--json"]).stdout.utf8)) as! [String: Any]
    let dataset = info["dataset"] as! [String: Any]
    #expect(dataset["origin"] as? String == "derived")
    #expect(dataset["parent"] as? String == "EURUSD-1h")
    let operations = (dataset["pipeline"] as? [String: Any])?["operations"] as? [[String: Any]]
    #expect(operations?.contains { $0["type"] as? String == "resample" } == true, "the lineage is a JSON object, not a string")
    #expect((info["columns"] as! [[String: Any]]).map { $0["name"] as! String }.suffix(2) == ["rsi_14", "sma_10"])
    #expect(try qtool.run(["data", "verify", "eurusd-4h"]).status == 0)
    let again = try qtool.run(["data", "preprocess", "EURUSD-1h", "--op", "dedupe", "--out", "eurusd-4h"])
    #expect(again.status == 73)
    #expect(again.stderr.contains("dataset 'eurusd-4h' already exists; replace it with --force, or choose another --out"))
    let bad = try qtool.run(["data", "preprocess", "EURUSD-1h", "--op", "features s=smaa(close, 3)", "--out", "x"])
    #expect(bad.status == 64)
    #expect(bad.stderr.contains("did you mean 'sma'?"))
    #expect(bad.stderr.contains("^"))
  }
}
