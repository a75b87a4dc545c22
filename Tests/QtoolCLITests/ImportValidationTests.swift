import Foundation
import Testing

/// Import refuses bars no market trades at and timeframes that do not fit the bars, and stores
/// nothing of such a file; verify reports the same things about what is stored.
@Suite struct ImportValidationTests {
  func write(_ qtool: QtoolProcess, _ name: String, _ rows: [String]) throws -> String {
    let file = qtool.home.appendingPathComponent(name)
    try ("timestamp,open,high,low,close,volume\n" + rows.joined(separator: "\n") + "\n").write(to: file, atomically: true, encoding: .utf8)
    return file.path
  }

  func daily(_ count: Int, start: Int = 1) -> [String] {
    (0..<count).map { String(format: "2024-01-%02dT00:00:00Z,10,11,9,10.5,100", start + $0) }
  }

  @Test func impossiblePricesAreRefusedWithTheirRow() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for (row, reason) in [
      ("2024-01-03,0,11,9,10.5,100", "open is 0; prices must be above zero"), ("2024-01-03,10,11,-9,10.5,100", "low is -9; prices must be above zero"),
      ("2024-01-03,10,inf,9,10.5,100", "high is inf"),
      ("2024-01-03,10,11,9,10.5,-5", "volume -5 is negative"), ("2024-01-03,10,9,11,10.5,100", "high 9 is below low 11"),
    ] {
      let file = try write(qtool, "bad.csv", ["2024-01-01,10,11,9,10.5,100", "2024-01-02,10,11,9,10.5,100", row])
      let result = try qtool.run(["data", "import", file, "-s", "BAD", "-t", "1d", "--json"])
      #expect(result.status == 65, "\(row): \(result.stderr)")
      #expect(result.stderr.contains("\(file), row 3 (2024-01-03): \(reason)"), "\(result.stderr)")
      #expect(result.stderr.contains("nothing was imported"))
      #expect(try errorObject(result.stderr)["category"] as? String == "invalid_input")
    }
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n", "nothing stored")
    // NaN and empty fields mark a missing value: the row is left out, and said so, never stored.
    let missing = try write(qtool, "nan.csv", ["2024-01-01,10,11,9,10.5,100", "2024-01-02,10,11,9,10.5,100", "2024-01-03,10,11,9,NaN,100"])
    let skipped = try qtool.run(["data", "import", missing, "-s", "NAN", "-t", "1d", "--calendar", "24x7"])
    #expect(skipped.status == 0)
    #expect(skipped.stderr.contains("1 row without a price or volume (empty, null or NaN) was left out, not stored"), "\(skipped.stderr)")
    #expect(try jsonArray(try qtool.run(["data", "list", "--json"]).stdout)[0]["bars"] as? Int == 2)
  }

  /// A missing volume is a missing value, not 0: the row is left out and the summary and the
  /// JSON say so; a file without a volume column stores volume 0.
  @Test func missingVolumeIsLeftOutAndReported() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write(
      qtool, "vol.csv", ["2024-01-01,10,11,9,10.5,100", "2024-01-02,10,11,9,10.5,", "2024-01-03,10,11,9,10.5,null", "2024-01-04,10,11,9,10.5,7"])
    let text = try qtool.run(["data", "import", file, "-s", "VOL", "-t", "1d", "--calendar", "24x7"])
    #expect(text.status == 0, "\(text.stderr)")
    #expect(text.stderr.contains("2 rows without a price or volume (empty, null or NaN) were left out, not stored"), "\(text.stderr)")
    let exported = try qtool.run(["data", "export", "VOL-1d", "-o", "-"])
    #expect(!exported.stdout.contains("2024-01-02"), "\(exported.stdout)")
    #expect(!exported.stdout.contains(",0\n"), "no volume of 0 was made up: \(exported.stdout)")
    let json = try qtool.run(["data", "import", file, "-s", "VOL2", "-t", "1d", "--calendar", "24x7", "--json"])
    let files = try jsonObject(json.stdout)["files"] as? [[String: Any]]
    #expect(files?.first?["skipped_rows"] as? Int == 2)
    #expect(try jsonObject(json.stdout)["rows_read"] as? Int == 2)
    let noVolume = qtool.home.appendingPathComponent("novol.csv")
    try "timestamp,open,high,low,close\n2024-01-01,10,11,9,10.5\n2024-01-02,10,11,9,10.5\n".write(to: noVolume, atomically: true, encoding: .utf8)
    let plain = try qtool.run(["data", "import", noVolume.path, "-s", "NOVOL", "-t", "1d", "--calendar", "24x7", "--json"])
    #expect(try jsonObject(plain.stdout)["rows_read"] as? Int == 2, "\(plain.stderr)")
  }

  @Test func nonPositivePricesWhenAllowed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write(qtool, "spread.csv", ["2024-01-01,-1,0.5,-2,-0.5,100", "2024-01-02,-0.5,1,-1,0.25,100", "2024-01-03,0.25,1,0,0.5,100"])
    let refused = try qtool.run(["data", "import", file, "-s", "SPREAD", "-t", "1d", "--calendar", "24x7"])
    #expect(refused.status == 65)
    #expect(refused.stderr.contains("allow it with --allow-nonpositive"))
    #expect(try qtool.run(["data", "import", file, "-s", "SPREAD", "-t", "1d", "--calendar", "24x7", "--allow-nonpositive"]).status == 0)
    #expect(try qtool.run(["data", "verify", "SPREAD-1d"]).status == 0, "verify knows the dataset allows them")
    let nan = try write(qtool, "nan.csv", ["2024-01-04,nan,1,0,0.5,100"])
    #expect(try qtool.run(["data", "import", nan, "-s", "SPREAD", "-t", "1d", "--allow-nonpositive"]).status == 65, "never NaN")
  }

  @Test func hourlyBarsAsDailyAreRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let good = try write(qtool, "d.csv", daily(5))
    #expect(try qtool.run(["data", "import", good, "-s", "G", "-t", "1d", "--calendar", "24x7"]).status == 0)
    let hourly = try write(qtool, "h.csv", (0..<24).map { String(format: "2024-01-10T%02d:00:00Z,10,11,9,10.5,100", $0) })
    let result = try qtool.run(["data", "import", hourly, "-s", "G", "-t", "1d"])
    #expect(result.status == 65)
    #expect(result.stderr.contains("the bars are 1 hour apart, not 1d bars"), "\(result.stderr)")
    #expect(result.stderr.contains("--force-timeframe"))
    #expect(try jsonArray(try qtool.run(["data", "list", "--json"]).stdout)[0]["bars"] as? Int == 5, "the dataset is as it was")
  }

  @Test func twoHourlyBarsAsDailyAreRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let two = try write(qtool, "two.csv", ["2024-01-10T00:00:00Z,10,11,9,10.5,100", "2024-01-10T01:00:00Z,10,11,9,10.5,100"])
    let result = try qtool.run(["data", "import", two, "-s", "TWO", "-t", "1d", "--calendar", "24x7"])
    #expect(result.status == 65, "\(result.stderr)")
    #expect(result.stderr.contains("the bars are 1 hour apart, not 1d bars"), "\(result.stderr)")
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n", "nothing stored")
    // Two daily bars over a long weekend are daily bars.
    let weekend = try write(qtool, "weekend.csv", ["2024-03-29,10,11,9,10.5,100", "2024-04-02,10,11,9,10.5,100"])
    let daily = try qtool.run(["data", "import", weekend, "-s", "WKND", "-t", "1d"])
    #expect(daily.status == 0, "\(daily.stderr)")
  }

  @Test func dailyBarsAsWeeklyOrMonthlyAreRefused() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write(qtool, "d.csv", daily(20))
    for timeframe in ["1w", "1M"] {
      let result = try qtool.run(["data", "import", file, "-s", "D", "-t", timeframe])
      #expect(result.status == 65, "\(timeframe)")
      #expect(result.stderr.contains("the bars are 1 day apart, not \(timeframe) bars (as \(timeframe) was given)"), "\(result.stderr)")
    }
    let weeks: [String] = ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"].map { "\($0),10,11,9,10.5,100" }
    let weekly = try write(qtool, "w.csv", weeks)
    #expect(try qtool.run(["data", "import", weekly, "-s", "W", "-t", "1d"]).status == 65, "weekly bars are not daily either")
    // Forced: stored, and verify says what is wrong with it.
    #expect(try qtool.run(["data", "import", file, "-s", "D", "-t", "1w", "--force-timeframe"]).status == 0)
    let verify = try qtool.run(["data", "verify", "D-1w", "--json"])
    #expect(verify.status == 65)
    #expect(verify.stdout.contains("\"spacing\""))
    #expect(verify.stdout.contains("1 day apart, not 1w bars"))
  }
}
