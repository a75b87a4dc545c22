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
}
