import Foundation
import Testing

/// Streams and files, specs, and the small things a user notices (issue 18, items 14–16),
/// through the built binary.
@Suite struct InterfaceTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv")

  /// A home with GOOG-1d and a registered sma_crossover strategy `s` (s.yaml).
  func prepared() throws -> (QtoolProcess, String) {
    let qtool = try QtoolProcess()
    #expect(try qtool.run(["data", "import", Self.goog.path, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec, "-q"]).status == 0)
    return (qtool, spec)
  }

  func write(_ qtool: QtoolProcess, _ name: String, _ text: String) throws -> String {
    let path = qtool.home.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  // MARK: 14. Streams and files

  @Test func dashIsStandardInputForImportsAndSpecs() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let imported = try qtool.run(["data", "import", "-", "-s", "GOOG", "-t", "1d"], stdin: try Data(contentsOf: Self.goog))
    #expect(imported.status == 0, "\(imported.stderr)")
    #expect(imported.stdout.contains("into GOOG-1d"))
    let gzipped = try qtool.shell("gzip -c '\(Self.goog.path)' | \"$QTOOL\" data import - -s G2 -t 1d -q")
    #expect(gzipped.status == 0, "a gzip stream is read as a .gz file: \(gzipped.stderr)")

    let spec = """
      name: piped
      universe: { symbols: [GOOG], timeframe: 1d }
      params: { fast: 10, slow: 30 }
      rules:
        entry: cross_above(sma(close, fast), sma(close, slow))
        exit: cross_below(sma(close, fast), sma(close, slow))
      """
    let validated = try qtool.run(["strategy", "validate", "-"], stdin: Data(spec.utf8))
    #expect(validated.status == 0, "\(validated.stderr)")
    let run = try qtool.run(["backtest", "run", "-", "--json"], stdin: Data(spec.utf8))
    #expect(run.status == 0, "\(run.stderr)")
    #expect(try jsonObject(run.stdout)["strategy"] as? String == "piped")
    let pipeline = try qtool.run(
      ["data", "preprocess", "GOOG-1d", "--pipeline", "-", "--out", "GOOG-1w", "-q"],
      stdin: Data(#"{"operations": [{"type": "resample", "timeframe": "1w"}]}"#.utf8))
    #expect(pipeline.status == 0, "\(pipeline.stderr)")
    #expect(try qtool.run(["data", "info", "GOOG-1w"]).status == 0)
  }

  @Test func dashIsStandardOutputForReportsAndBundles() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let report = try qtool.run(["backtest", "run", spec, "--report", "-"])
    #expect(report.status == 0, "\(report.stderr)")
    #expect(report.stdout.hasPrefix("<!DOCTYPE html>") || report.stdout.hasPrefix("<!doctype html>"), "stdout holds the report alone")
    #expect(report.stdout.hasSuffix("</html>\n") || report.stdout.hasSuffix("</html>"))
    #expect(report.stderr.contains("total_return") || report.stderr.contains("return"), "the summary went to stderr: \(report.stderr.prefix(300))")
    let quiet = try qtool.run(["backtest", "run", spec, "--report", "-", "-q"])
    #expect(quiet.status == 0)
    #expect(quiet.stderr.isEmpty, "-q silences the summary and notes: \(quiet.stderr)")
    #expect(!FileManager.default.fileExists(atPath: qtool.home.appendingPathComponent("-").path), "no file named -")

    let id = try #require(try jsonArray(try qtool.run(["backtest", "list", "--json"]).stdout).first?["id"] as? String)
    let bundle = try qtool.shell("\"$QTOOL\" backtest export \(id) - | tar tzf -")
    #expect(bundle.status == 0, "\(bundle.stderr)")
    #expect(bundle.stdout.contains("metrics.json") && bundle.stdout.contains("trades.csv"), "\(bundle.stdout)")
    let csv = try qtool.run(["data", "export", "GOOG-1d", "-o", "-", "--from", "2013-02-25"])
    #expect(csv.stdout.split(separator: "\n").count == 6, "\(csv.stdout)")
  }

  @Test func exportDirectoryNeedsForceToOverwrite() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let directory = qtool.home.appendingPathComponent("out").path
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory, "-q"]).status == 0)
    let again = try qtool.run(["backtest", "run", spec, "--export", directory])
    #expect(again.status == 73, "\(again.stderr)")
    #expect(again.stderr.contains("--force"), "\(again.stderr)")
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory, "--force", "-q"]).status == 0)
  }

  @Test func notesGoToStderrAndQuietSilencesThem() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let loud = try qtool.run(["strategy", "new", "a", "-o", qtool.home.appendingPathComponent("a.yaml").path])
    // A confirmation is not a result: stdout stays empty for a script that captures it.
    #expect(loud.stdout.isEmpty, "\(loud.stdout)")
    #expect(loud.stderr.hasPrefix("wrote "), "\(loud.stderr)")
    #expect(loud.stderr.contains("next: `qtool backtest run a`"))
    let quiet = try qtool.run(["strategy", "new", "b", "-o", qtool.home.appendingPathComponent("b.yaml").path, "-q"])
    #expect(quiet.stdout.isEmpty)
    #expect(quiet.stderr.isEmpty)
  }

  @Test func readOnlyCommandsNeverCreateAStore() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for command in [
      ["data", "list"], ["data", "verify"], ["backtest", "list"], ["strategy", "list"], ["jobs", "list"], ["train", "list"],
      ["db", "info"], ["signals", "list"], ["backtest", "grid", "list"], ["__complete", "runs"],
    ] {
      let result = try qtool.run(command)
      #expect(result.status != 70, "\(command): \(result.stderr)")
      #expect(!FileManager.default.fileExists(atPath: qtool.databasePath), "\(command.joined(separator: " ")) created the store")
    }
  }

  // MARK: 15. Specs

  @Test func bollingerWidthsAreRealAndDefaultsAreWhatHelpShows() throws {
    let (qtool, _) = try prepared()
    defer { qtool.cleanUp() }
    func spec(_ entry: String) -> String {
      "name: b\nuniverse: { symbols: [GOOG], timeframe: 1d }\nrules:\n  entry: \"\(entry)\"\n  exit: close > bb_upper(close)\n"
    }
    let wide = try write(qtool, "wide.yaml", spec("close < bb_lower(close, 20, 2.5)"))
    let two = try write(qtool, "two.yaml", spec("close < bb_lower(close, 20, 2)"))
    let wideRun = try qtool.run(["backtest", "run", wide, "--json"])
    let twoRun = try qtool.run(["backtest", "run", two, "--json"])
    #expect(wideRun.status == 0, "\(wideRun.stderr)")
    #expect(twoRun.status == 0, "\(twoRun.stderr)")
    func metrics(_ result: QtoolProcess.Result) -> String {
      jsonText((try? jsonObject(result.stdout))?["metrics"]) ?? ""
    }
    #expect(!metrics(wideRun).isEmpty && metrics(wideRun) != metrics(twoRun), "2.5 standard deviations are not 2")
    let zero = try qtool.run(["strategy", "validate", try write(qtool, "zero.yaml", spec("close < bb_lower(close, 20, 0)"))])
    #expect(zero.status == 65)
    #expect(zero.stderr.contains("is a width: a positive number"), "\(zero.stderr)")

    let help = try qtool.run(["help", "rules"]).stdout
    #expect(help.contains("bb_lower(x, n=20, k=2)"))
    #expect(help.contains("rsi(x, n=14)"))
    #expect(help.contains("sma(x, n) "), "sma has no default window, and help shows none")
    #expect(try qtool.run(["strategy", "validate", try write(qtool, "rsi.yaml", spec("rsi(close) < 30"))]).status == 0, "the default help shows works")
    let sma = try qtool.run(["strategy", "validate", try write(qtool, "sma.yaml", spec("close > sma(close)"))])
    #expect(sma.status == 65)
    #expect(sma.stderr.contains("sma takes 2 arguments, got 1"), "\(sma.stderr)")
    for word in ["short_entry", "short_exit", "signals:", "emit_hold", "draft", "active", "paused", "stopped", "error"] {
      #expect(help.contains(word), "help rules documents \(word)")
    }
  }

  @Test func specErrorsSayWhereAndWhat() throws {
    let (qtool, _) = try prepared()
    defer { qtool.cleanUp() }
    let base = "name: c\nuniverse: { symbols: [GOOG], timeframe: 1d }\nrules: { entry: close > 0 }\n"
    let percent = try qtool.run(["strategy", "validate", try write(qtool, "pct.yaml", base + "costs:\n  commission: 1%\n")])
    #expect(percent.status == 65)
    #expect(percent.stderr.contains("pct.yaml:5:15: 'costs.commission' must be a number ('1%')"), "\(percent.stderr)")
    let stop = try qtool.run(["strategy", "validate", try write(qtool, "stop.yaml", base + "risk: { stop_loss: 5 }\n")])
    #expect(stop.status == 65)
    #expect(stop.stderr.contains("risk.stop_loss must be a fraction between 0 and 1"), "\(stop.stderr)")
  }

  @Test func versionsArePinnedDiffedAndDeleted() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let text = try String(contentsOfFile: spec, encoding: .utf8)
    try text.replacingOccurrences(of: "slow: 30", with: "slow: 40").write(toFile: spec, atomically: true, encoding: .utf8)
    let latest = try qtool.run(["backtest", "run", "s", "--json"])
    #expect(latest.status == 0, "\(latest.stderr)")
    #expect(latest.stderr.contains("registered s v2"), "the changed file became version 2: \(latest.stderr)")
    let pinned = try qtool.run(["backtest", "run", "s@1", "--json"])
    #expect(pinned.status == 0, "\(pinned.stderr)")
    #expect((try jsonObject(pinned.stdout)["params"] as? [String: Any])?["slow"] as? Double == 30)
    #expect((try jsonObject(latest.stdout)["params"] as? [String: Any])?["slow"] as? Double == 40)
    let diff = try qtool.run(["strategy", "diff", "s", "1", "2"])
    #expect(diff.status == 1, "versions differ: exit 1 as diff does")
    #expect(diff.stdout.contains("-") && diff.stdout.contains("slow: 30") && diff.stdout.contains("slow: 40"), "\(diff.stdout)")
    #expect(try qtool.run(["strategy", "delete", "s"]).status == 0)
    #expect(try qtool.run(["strategy", "show", "s"]).status == 66)
  }

  // MARK: 16. Small things

  @Test func verifyTextDatesEveryProblemAndItsGapRuleIsItsHelp() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let days = (1...20).map { String(format: "2024-01-%02dT00:00:00Z,10,11,9,10.5,100", $0) }
    let file = try write(qtool, "d.csv", "timestamp,open,high,low,close,volume\n" + days.joined(separator: "\n") + "\n")
    #expect(try qtool.run(["data", "import", file, "-s", "D", "-t", "1w", "--force-timeframe", "-q"]).status == 0)
    let verify = try qtool.run(["data", "verify", "D-1w"])
    #expect(verify.status == 65)
    let findings = verify.stdout.split(separator: "\n").filter { $0.hasPrefix("  ") && !$0.hasPrefix("  …") && !$0.contains("refetch") }
    #expect(!findings.isEmpty)
    for finding in findings {
      #expect(finding.range(of: #"\d{4}-\d{2}-\d{2}"#, options: .regularExpression) != nil, "every problem has its date: \(finding)")
    }

    // Weekdays: one or two missing weekdays are a possible holiday, three are a gap — as the help says.
    let weekdays = [
      "2024-01-02", "2024-01-03", /* 01-04 */ "2024-01-05", "2024-01-08", /* 01-09, 01-10 */ "2024-01-11", "2024-01-12",
      /* 01-15, 01-16, 01-17 */ "2024-01-18", "2024-01-19",
    ]
    let equity = try write(
      qtool, "e.csv", "timestamp,open,high,low,close,volume\n" + weekdays.map { "\($0),10,11,9,10.5,100" }.joined(separator: "\n") + "\n")
    #expect(try qtool.run(["data", "import", equity, "-s", "E", "-t", "1d", "--calendar", "weekdays", "-q"]).status == 0)
    let weekdaysVerify = try qtool.run(["data", "verify", "E-1d"])
    #expect(weekdaysVerify.stdout.contains("no bars on weekday 2024-01-04; a market holiday?"), "\(weekdaysVerify.stdout)")
    #expect(weekdaysVerify.stdout.contains("no bars on 2 weekdays from 2024-01-09; a market holiday?"))
    #expect(weekdaysVerify.stdout.contains("gap: 3 weekdays missing between 2024-01-12 and 2024-01-18"), "\(weekdaysVerify.stdout)")
    let help = try qtool.run(["data", "verify", "--help"]).stdout.replacingOccurrences(of: "\n", with: " ")
      .replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression)
    #expect(help.contains("one or two missing weekdays in a row are reported as a possible holiday"), "\(help)")
    #expect(help.contains("three or more missing weekdays in a row are a gap"))
  }

  @Test func errorsQuoteAtMostALineOfInput() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    // A 1 MB spec on one line: not valid YAML/JSON, and the error must not echo it.
    let huge = "{\"name\": \"x\", \"rules\": {\"entry\": \"" + String(repeating: "close > 1 and ", count: 80_000) + "\"}, ]"
    let spec = try write(qtool, "huge.json", huge)
    let result = try qtool.run(["strategy", "validate", spec, "--json"])
    #expect(result.status != 0)
    #expect(result.stderr.utf8.count < 8_000, "stderr is \(result.stderr.utf8.count) bytes")
    #expect(result.stderr.contains("…"), "the quoted line is cut, with the part the error points at: \(result.stderr.prefix(500))")
    // A huge argument in a usage error, too.
    let usage = try qtool.run(["backtest", "run", "x.yaml", "--param", "fast=" + String(repeating: "9", count: 100_000)])
    #expect(usage.status != 0)
    #expect(usage.stderr.utf8.count < 4_000, "stderr is \(usage.stderr.utf8.count) bytes")
  }

  @Test func versionFlagAndTheTopLevelDescription() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let short = try qtool.run(["-V"])
    #expect(short.status == 0)
    #expect(short.stdout.hasPrefix("qtool "))
    #expect(short.stdout == (try qtool.run(["--version"]).stdout))
    // Every command the description names in parentheses exists.
    let help = try qtool.run(["--help"]).stdout
    let regex = try NSRegularExpression(pattern: #"\(([a-z ,]+)\)"#)
    let description = help.components(separatedBy: "Commands:")[0].replacingOccurrences(of: #"\s+"#, with: " ", options: .regularExpression)
    var named: [String] = []
    for match in regex.matches(in: description, range: NSRange(description.startIndex..., in: description)) {
      let inner = String(description[Range(match.range(at: 1), in: description)!])
      named += inner.components(separatedBy: ", ")
    }
    #expect(named.count >= 6, "\(named)")
    for command in named {
      let words = command.split(separator: " ").map(String.init)
      #expect(try qtool.run(words + ["--help"]).status == 0, "the description names '\(command)', which is no command")
    }
  }

  /// Bash completion, in a real bash: strategies after backtest run|grid|check, run ids, metric
  /// names for --rank, help topics.
  @Test func bashCompletesStrategiesRunIdsMetricsAndTopics() throws {
    let (qtool, spec) = try prepared()
    defer { qtool.cleanUp() }
    let run = try qtool.run(["backtest", "run", spec, "--json"])
    let id = try #require(try jsonObject(run.stdout)["id"] as? String)
    let script = try qtool.run(["completions", "bash"]).stdout
    let scriptPath = try write(qtool, "qtool.bash", script)
    func complete(_ line: String) throws -> [String] {
      let words = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
      let array = words.map { "'\($0)'" }.joined(separator: " ")
      let result = try qtool.shell(
        """
        PATH="$(dirname "$QTOOL"):$PATH"; source '\(scriptPath)'
        COMP_WORDS=(\(array)); COMP_CWORD=\(words.count - 1); COMP_LINE='\(line)'; COMP_POINT=${#COMP_LINE}
        _qtool; printf '%s\\n' "${COMPREPLY[@]}"
        """)
      #expect(result.status == 0, "\(result.stderr)")
      return result.stdout.split(separator: "\n").map(String.init)
    }
    for command in ["run", "grid", "check"] {
      #expect(try complete("qtool backtest \(command) ").contains("s"), "strategies after backtest \(command)")
    }
    #expect(try complete("qtool backtest show ").contains(id))
    #expect(try complete("qtool backtest compare \(id) ").contains(id))
    #expect(try complete("qtool backtest grid s --rank sh").contains("sharpe"))
    #expect(try complete("qtool backtest list --sort max_d").contains("max_drawdown"))
    let topics = try complete("qtool help ")
    for topic in ["rules", "metrics", "exit-codes", "json"] { #expect(topics.contains(topic), "\(topics)") }
    #expect(!(try complete("qtool jobs show ")).isEmpty, "job ids")
  }
}
