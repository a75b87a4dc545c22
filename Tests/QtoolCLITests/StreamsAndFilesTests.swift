import Foundation
import Testing

/// Issue #18 item 14 through the built binary: results on stdout, confirmations on stderr
/// (silenced by -q); `-` is standard input or output wherever a file can be one, and refused
/// while parsing where qtool must open the file by name; a store is never someone else's file.
@Suite struct StreamsAndFilesTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  @Test func confirmationsGoToStderrAndResultsStayOnStdout() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec, "-q"]).status == 0)
    let run = try qtool.run(["backtest", "run", "s", "--json"])
    let id = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])["id"] as! String

    // A listing is a result: stdout, also with -q.
    let listed = try qtool.run(["data", "list", "-q"])
    #expect(listed.status == 0 && !listed.stdout.isEmpty && listed.stderr.isEmpty, "\(listed)")
    for arguments in [["backtest", "delete", id], ["db", "vacuum"], ["strategy", "delete", "s"], ["data", "delete", "GOOG-1d"]] {
      let loud = try qtool.run(arguments)
      #expect(loud.status == 0, "\(arguments): \(loud.stderr)")
      #expect(loud.stdout.isEmpty, "\(arguments) printed a confirmation on stdout: \(loud.stdout)")
      #expect(!loud.stderr.isEmpty, "\(arguments) confirmed nothing")
    }
    let backup = qtool.home.appendingPathComponent("b.db").path
    let quiet = try qtool.run(["db", "backup", backup, "-q"])
    #expect(quiet.status == 0 && quiet.stdout.isEmpty && quiet.stderr.isEmpty, "\(quiet)")
  }

  @Test func filesThatCanBeStreamsAre() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let home = qtool.home.path

    // A backup through a pipe is the store: the copy lists what the store lists.
    let piped = try qtool.shell("\"$QTOOL\" db backup - > '\(home)/piped.db' 2> '\(home)/err' && head -c 15 '\(home)/piped.db'")
    #expect(piped.status == 0, "\(piped.stderr)")
    #expect(piped.stdout == "SQLite format 3")
    #expect(try String(contentsOfFile: home + "/err", encoding: .utf8).contains("backed up"))
    let copy = try qtool.run(["--db", home + "/piped.db", "data", "list", "--json"])
    #expect(copy.status == 0 && copy.stdout.contains("GOOG-1d"), "\(copy)")

    // A snapshot through a pipe is a snapshot a shard can read.
    let snapshot = try qtool.shell("\"$QTOOL\" data snapshot GOOG-1d -o - -q > '\(home)/snap.db'")
    #expect(snapshot.status == 0, "\(snapshot.stderr)")
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec, "-q"]).status == 0)
    let shard = try qtool.run([
      "--db", home + "/shard.db", "backtest", "grid", spec, "--grid", "fast=5,10", "--shard", "1/1", "--snapshot", home + "/snap.db", "-q",
    ])
    #expect(shard.status == 0, "\(shard.stderr)")

    // A new spec to stdout: the YAML alone there, registered all the same, no file written.
    let printed = try qtool.run(["strategy", "new", "piped", "--symbol", "GOOG", "-o", "-"])
    #expect(printed.status == 0, "\(printed.stderr)")
    #expect(printed.stdout.contains("name: piped") && printed.stdout.contains("entry:"), "\(printed.stdout)")
    #expect(printed.stderr.contains("registered piped (version 1)"), "\(printed.stderr)")
    #expect(!FileManager.default.fileExists(atPath: home + "/-") && !FileManager.default.fileExists(atPath: home + "/piped.yaml"))
    let validated = try qtool.run(["strategy", "validate", "-"], stdin: Data(printed.stdout.utf8))
    #expect(validated.status == 0, "the printed spec is a valid spec: \(validated.stderr)")
    #expect(try qtool.run(["backtest", "run", "piped", "-q"]).status == 0, "the registered spec runs")

    let model = try qtool.run(["train", "new", "m", "--dataset", "GOOG-1d", "-o", "-"])
    #expect(model.status == 0 && model.stdout.contains("name: m"), "\(model)")
    #expect(model.stderr.contains("registered model m"), "\(model.stderr)")
  }

  @Test func filesQtoolMustOpenByNameRefuseADash() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let refused: [[String]] = [
      ["--db", "-", "data", "list"],
      ["backtest", "run", "s", "--export", "-"],
      ["backtest", "grid", "s", "--grid", "fast=5", "--shard", "1/1", "--snapshot", "-"],
      ["backtest", "grid", "merge", "g1", "-"],
      ["signals", "notify", "add", "hook", "--kind", "webhook", "--url", "http://127.0.0.1:9/x", "--secret-file", "-"],
      ["serve", "--tls-cert", "-", "--tls-key", "k.pem"],
    ]
    for arguments in refused {
      let result = try qtool.run(arguments)
      #expect(result.status == 64, "\(arguments): \(result.status) \(result.stderr)")
      #expect(result.stderr.contains("got '-'"), "\(arguments): \(result.stderr)")
    }
    // A port file in a directory that does not exist fails before listening, instead of a
    // script waiting for the file forever.
    let port = try qtool.run(["serve", "--port", "0", "--port-file", "/nonexistent-\(UUID().uuidString)/port"])
    #expect(port.status == 73, "\(port.stderr)")
    #expect(port.stderr.contains("port file"), "\(port.stderr)")
  }

  @Test func anotherProgramsDatabaseIsLeftAsItIs() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let foreign = qtool.home.appendingPathComponent("notes.sqlite").path
    let made = try qtool.shell(
      "python3 -c \"import sqlite3; c = sqlite3.connect('\(foreign)'); c.execute('CREATE TABLE notes (body TEXT)'); c.commit()\"")
    try #require(made.status == 0, "python3 makes an SQLite file: \(made.stderr)")
    let before = try Data(contentsOf: URL(fileURLWithPath: foreign))
    for arguments in [["data", "list"], ["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]] {
      let result = try qtool.run(["--db", foreign] + arguments)
      #expect(result.status == 65, "\(arguments): \(result.stderr)")
      #expect(result.stderr.contains("not a qtool store") && result.stderr.contains("notes"), "\(result.stderr)")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: foreign)) == before, "no qtool table was added")
    let directory = try qtool.run(["--db", qtool.home.path, "data", "list"])
    #expect(directory.status == 73 && directory.stderr.contains("it is a directory"), "\(directory.stderr)")

    // An empty file reads as an empty store and stays empty; a shard store that is empty holds no shard.
    let empty = qtool.home.appendingPathComponent("empty.db").path
    FileManager.default.createFile(atPath: empty, contents: Data())
    let listed = try qtool.run(["--db", empty, "data", "list", "--json"])
    #expect(listed.status == 0, "\(listed.stderr)")
    let merge = try qtool.run(["backtest", "grid", "merge", "g0123456789", empty])
    #expect(merge.status != 0)
    #expect(try FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int == 0, "reading left the file as it was")
  }

  @Test func aClosedOrUnreadableStandardInputIsAnErrorNotACrash() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for script in [
      "timeout 20 \"$QTOOL\" data import - -s X -t 1d <&-", "timeout 20 \"$QTOOL\" strategy validate - <&-",
      "timeout 20 \"$QTOOL\" backtest run - < /tmp",
    ] {
      let result = try qtool.shell(script)
      #expect(result.status == 66, "\(script): \(result.status) \(result.stderr)")
      #expect(result.stderr.contains("cannot read standard input") && !result.stderr.contains("Fatal error"), "\(result.stderr)")
    }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let closed = try qtool.shell("timeout 20 \"$QTOOL\" data list >&-")
    #expect(closed.status == 74, "a closed stdout is still an error: \(closed.stderr)")
  }

  @Test func rowsThatDisagreeForOneBarAreRefusedAndRepeatsMerged() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let header = "timestamp,open,high,low,close,volume\n"
    let conflicting = qtool.home.appendingPathComponent("conflict.csv")
    try (header + "2021-01-04,1,2,0.5,1.5,100\n2021-01-04,50,60,40,55,9\n2021-01-05,1,2,0.5,1.5,100\n").write(to: conflicting, atomically: true, encoding: .utf8)
    for quiet in [[], ["-q"]] {
      let refused = try qtool.run(["data", "import", conflicting.path, "-s", "DD", "-t", "1d"] + quiet)
      #expect(refused.status == 65, "\(refused.stderr)")
      #expect(refused.stderr.contains("both open at 2021-01-04") && refused.stderr.contains("close 1.5 vs 55"), "\(refused.stderr)")
    }
    // Hourly rows called daily fall on one bar each day: refused, not floored onto it.
    let hourly = qtool.home.appendingPathComponent("hourly.csv")
    try (header + "2013-03-04T00:00:00Z,1,2,0.5,1.5,100\n2013-03-04T01:00:00Z,1.5,2,1,1.8,50\n").write(to: hourly, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", hourly.path, "-s", "HH", "-t", "1d"]).status == 65)
    #expect(!(try qtool.run(["data", "list", "--json"]).stdout.contains("\"DD-1d\"")), "nothing was stored")

    let repeated = qtool.home.appendingPathComponent("repeated.csv")
    try (header + "2021-01-04,1,2,0.5,1.5,100\n2021-01-04,1,2,0.5,1.5,100\n2021-01-05,1,2,0.5,1.5,100\n").write(to: repeated, atomically: true, encoding: .utf8)
    let merged = try qtool.run(["data", "import", repeated.path, "-s", "EE", "-t", "1d"])
    #expect(merged.status == 0 && merged.stdout.contains("(2 stored"), "\(merged)")
    #expect(merged.stderr.contains("1 duplicate timestamp"), "\(merged.stderr)")
  }

  @Test func forceNeverReplacesWhatIsNotARegularFile() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    let home = qtool.home.path
    #expect(try qtool.shell("mkfifo '\(home)/fifo' && ln -s '\(home)/target.csv' '\(home)/link.csv' && mkdir '\(home)/dir'").status == 0)
    for (arguments, path) in [
      (["data", "export", "GOOG-1d", "-o", home + "/fifo", "--force"], home + "/fifo"),
      (["data", "export", "GOOG-1d", "-o", home + "/link.csv", "--force"], home + "/link.csv"),
      (["db", "backup", home + "/dir", "--force"], home + "/dir"),
      (["data", "snapshot", "GOOG-1d", "-o", home + "/fifo", "--force"], home + "/fifo"),
    ] {
      let result = try qtool.run(arguments)
      #expect(result.status == 73, "\(arguments): \(result.stderr)")
      #expect(result.stderr.contains("not a regular file"), "\(result.stderr)")
      let type = try FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType
      #expect(type != .typeRegular, "\(path) was left as it was")
    }
    #expect(!FileManager.default.fileExists(atPath: home + "/target.csv"))
  }

  @Test func whatWouldOnlyFailLaterFailsNow() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "-q"]).status == 0)
    // A secret the runner could not read at delivery time.
    for path in ["/nonexistent-\(UUID().uuidString)", qtool.home.path] {
      let channel = try qtool.run(["signals", "notify", "add", "hook", "--kind", "webhook", "--url", "http://127.0.0.1:9/x", "--secret-file", path])
      #expect(channel.status == 66, "\(channel.stderr)")
    }
    // A config naming the store '-'.
    let config = qtool.home.appendingPathComponent("dash.yaml")
    try "db: \"-\"\n".write(to: config, atomically: true, encoding: .utf8)
    let dash = try qtool.run(["--config", config.path, "data", "list"])
    #expect(dash.status == 65 && dash.stderr.contains("'-' cannot be standard input"), "\(dash.stderr)")
    #expect(!FileManager.default.fileExists(atPath: qtool.home.appendingPathComponent("-").path))
    // Bars imported into a derived dataset would make its lineage untrue.
    let derived = try qtool.run(["data", "preprocess", "GOOG-1d", "--op", "resample timeframe=1w", "--out", "GW"])
    #expect(derived.status == 0 && derived.stdout.contains("resample:") && derived.stderr.contains("wrote GW"), "\(derived)")
    let into = try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d", "--name", "GW", "--force-timeframe"])
    #expect(into.status == 65 && into.stderr.contains("GW is derived from GOOG-1d"), "\(into.stderr)")
    // A report that cannot be written fails the run before it is recorded.
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec, "-q"]).status == 0)
    let taken = qtool.home.appendingPathComponent("taken.html").path
    FileManager.default.createFile(atPath: taken, contents: Data("mine".utf8))
    for arguments in [["--report", taken], ["--report", "/nonexistent-\(UUID().uuidString)/r.html"], ["--export", taken]] {
      let run = try qtool.run(["backtest", "run", "s"] + arguments)
      #expect(run.status == 73, "\(arguments): \(run.stderr)")
    }
    let runs = try JSONSerialization.jsonObject(with: Data(try qtool.run(["backtest", "list", "--json"]).stdout.utf8)) as? [Any]
    #expect(runs?.isEmpty == true, "no run was recorded")
    #expect(try String(contentsOfFile: taken, encoding: .utf8) == "mine")
  }

  /// Empty standard input is named as such, never as the temporary file it was kept in.
  @Test func emptyStandardInputIsNamed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for input in ["", "timestamp,open,high,low,close,volume\n"] {
      let result = try qtool.run(["data", "import", "-", "--symbol", "X", "--timeframe", "1d", "--json"], stdin: Data(input.utf8))
      #expect(result.status == 65, "\(result.stderr)")
      #expect(result.stderr.contains("standard input was empty or had only a header"), "\(result.stderr)")
      #expect(!result.stderr.contains("qtool-stdin") && !result.stderr.contains("/tmp"), "no temporary path: \(result.stderr)")
    }
    let bad = try qtool.run(["data", "import", "-", "--symbol", "X", "--timeframe", "1d"], stdin: Data("timestamp,open,high,low,close\n2024-01-01,1,2,0.5,x\n".utf8))
    #expect(bad.status == 65 && bad.stderr.contains("standard input:2: close: expected a number"), "\(bad.stderr)")
  }

}
