import Foundation
import QtoolCore
import Testing

/// The hardening issue's last cases: a fill that would build a hundred million bars, a run id
/// that matches several runs, escape sequences from a file echoed to the terminal, and exit codes
/// documented where users read them.
@Suite struct EchoAndLimitTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  /// Minute bars and one far in the future, as a mistyped year would give.
  static let strayYear = """
    timestamp,open,high,low,close,volume
    2024-01-01T00:00:00Z,10,11,9,10,1
    2024-01-01T00:01:00Z,10,11,9,10,1
    2024-01-01T00:02:00Z,10,11,9,10,1
    2024-01-01T00:03:00Z,10,11,9,10,1
    2024-01-01T00:04:00Z,10,11,9,10,1
    2024-01-01T00:05:00Z,10,11,9,10,1
    2199-01-01T00:00:00Z,10,11,9,10,1

    """

  @Test func fillMissingRefusesToBuildMoreBarsThanItsLimit() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("stray.csv")
    try Self.strayYear.write(to: file, atomically: true, encoding: .utf8)
    let imported = try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1m", "--calendar", "24x7"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let fill = try qtool.run(["data", "preprocess", "X-1m", "--op", "fill_missing", "--out", "x-filled"])
    #expect(fill.status == 64, "\(fill.stderr)")
    #expect(fill.stderr.contains("fill_missing: would insert more than 2000000 bars"), "\(fill.stderr)")
    #expect(fill.stderr.contains("the gap from 2024-01-01T00:05:00Z to 2199-01-01T00:00:00Z"), "\(fill.stderr)")
    #expect(fill.stderr.contains("max_bars=N"))
    let list = try qtool.run(["data", "list", "--json"])
    #expect(!list.stdout.contains("x-filled"), "nothing was stored")

    // The limit is the user's to set, both ways.
    let small = try qtool.run(["data", "preprocess", "X-1m", "--op", "fill_missing max_bars=3", "--out", "x-filled"])
    #expect(small.status == 64)
    #expect(small.stderr.contains("would insert more than 3 bars"), "\(small.stderr)")
    #expect(try qtool.run(["data", "preprocess", "X-1m", "--op", "fill_missing max_bars=-1", "--out", "x-filled"]).status == 64)
  }

  @Test func aFillWithinTheLimitStillFills() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("gap.csv")
    try """
    timestamp,open,high,low,close,volume
    2024-01-01T00:00:00Z,10,11,9,10,1
    2024-01-01T00:01:00Z,10,11,9,10,1
    2024-01-01T00:05:00Z,12,13,11,12,1

    """.write(to: file, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1m", "--calendar", "24x7"]).status == 0)
    let fill = try qtool.run(["data", "preprocess", "X-1m", "--op", "fill_missing max_bars=3", "--out", "x-filled", "--json"])
    #expect(fill.status == 0, "\(fill.stderr)")
    #expect(fill.stdout.contains("3 missing bars inserted"), "\(fill.stdout)")
  }

  @Test func anAmbiguousRunIdListsTheRunsItMatches() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    var ids: [String] = []
    // Run ids are random: keep running until two share a first character.
    while Set(ids.map(\.first)).count == ids.count, ids.count < 40 {
      let run = try qtool.run(["backtest", "run", spec, "--json"])
      #expect(run.status == 0, "\(run.stderr)")
      ids.append(try jsonObject(run.stdout)["id"] as! String)
    }
    let prefix = String(ids.last!.first!)
    let sharing = ids.filter { $0.hasPrefix(prefix) }
    #expect(sharing.count >= 2)
    let show = try qtool.run(["backtest", "show", prefix, "--json"])
    #expect(show.status == 64, "ambiguous is the user's to fix, not a missing run: \(show.stderr)")
    #expect(show.stderr.contains("'\(prefix)' matches \(sharing.count) runs: "), "\(show.stderr)")
    for id in sharing.prefix(5) { #expect(show.stderr.contains(id)) }
    #expect(show.stderr.contains("give more characters of the id"))
    let error = try jsonObject(show.stderr.split(separator: "\n").last.map(String.init) ?? "")["error"] as! [String: Any]
    #expect(error["code"] as? String == "run_id_ambiguous")
    #expect(try qtool.run(["backtest", "show", ids.last!]).status == 0, "the whole id still opens it")
    #expect(try qtool.run(["backtest", "show", "%"]).status == 66, "a LIKE wildcard is taken literally")
  }

  @Test func escapeSequencesFromFilesAreShownNotSent() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = qtool.home.appendingPathComponent("evil.csv")
    try "timestamp,open,high,low,close,volume\n2024-01-01,1\u{1B}]0;owned\u{07},2,1,1,1\n\u{1B}[2J\u{202E}x,1,1,1,1,1\n"
      .write(to: file, atomically: true, encoding: .utf8)
    let result = try qtool.run(["data", "import", file.path, "-s", "X", "-t", "1d"])
    #expect(result.status == 65)
    #expect(!result.stderr.unicodeScalars.contains { $0.value == 0x1B || $0.value == 0x07 || $0.value == 0x202E }, "\(result.stderr)")
    #expect(result.stderr.contains("\\x1b"), "what was there is still visible: \(result.stderr)")
    let spec = qtool.home.appendingPathComponent("s.yaml")
    try "name: s\nuniverse: { symbols: [GOOG], timeframe: 1d }\nrules:\n  entry: close > \u{1B}[31msma\n".write(to: spec, atomically: true, encoding: .utf8)
    let validate = try qtool.run(["strategy", "validate", spec.path])
    #expect(validate.status != 0)
    #expect(!validate.stderr.unicodeScalars.contains { $0.value == 0x1B }, "\(validate.stderr)")
  }

  /// What `help exit-codes` and the README say is what the code has.
  @Test func exitCodesAreDocumentedAsTheyAre() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let help = try qtool.run(["help", "exit-codes"]).stdout
    let readme = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    let line = readme.components(separatedBy: "- Exit codes:").dropFirst().first?.components(separatedBy: "\n- ").first ?? ""
    let documented = Set(line.split { !$0.isNumber }.compactMap { Int32($0) })
    #expect(documented == Set(ExitStatus.allCases.map(\.rawValue)), "README's exit codes: \(documented.sorted())")
    for status in ExitStatus.allCases {
      #expect(help.contains("  \(status.rawValue)".padding(toLength: 7, withPad: " ", startingAt: 0) + status.meaning), "\(status)")
    }
    #expect(help.contains("an archive that does not match its .CHECKSUM"))
    // Every error category with its exit code, none cut short by the column.
    for category in ErrorCategory.allCases {
      #expect(help.contains("  \(category.rawValue) ") && help.contains(category.rawValue + " ") , "\(category.rawValue)")
    }
  }

  /// A capital near Double's limit overflowed at the first fill: no trades, 0 % return, exit 0.
  @Test func anAstronomicalCapitalIsRefusedNotRunFlat() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d"]).status == 0)
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--template", "sma_crossover", "--symbol", "GOOG", "-o", "goog-sma.yaml"]).status == 0)
    let backtest = try qtool.run(["backtest", "run", "goog-sma", "--capital", "1e308"])
    #expect(backtest.status == 65)
    #expect(backtest.stderr.contains("capital must be above 0 and at most 1e15"), "\(backtest.stderr)")
    let live = try qtool.run(["strategy", "run", "goog-sma", "--feed", "replay", "--capital", "1e16"])
    #expect(live.status == 64)
    #expect(live.stderr.contains("capital must be above 0 and at most 1e15"), "\(live.stderr)")
    #expect(try qtool.run(["backtest", "run", "goog-sma", "--capital", "1e15"]).status == 0)
  }
}
