import Foundation
import Testing

/// The built binary, run as a user runs it.
@Suite struct EndToEndTests {
  @Test func helpAtEveryLevel() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    for arguments in [["--help"], ["help"], ["-h"], ["db", "--help"], ["db", "backup", "--help"], ["help", "db", "backup"], ["db", "info", "-h"]] {
      let result = try qtool.run(arguments)
      #expect(result.status == 0, "\(arguments)")
      #expect(result.stdout.contains("Usage: qtool"), "\(arguments)")
      #expect(result.stderr.isEmpty, "\(arguments)")
    }
    let same = try qtool.run(["help", "db", "backup"]).stdout
    #expect(same == (try qtool.run(["db", "backup", "--help"]).stdout))
  }

  @Test func helpDoesNotTouchTheStore() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    try qtool.run(["db", "info", "--help"], environment: ["QTOOL_CONFIG": "/nonexistent/config.yaml"])
    #expect(!FileManager.default.fileExists(atPath: qtool.databasePath))
  }

  @Test func version() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let plain = try qtool.run(["--version"])
    #expect(plain.status == 0)
    #expect(plain.stdout.hasPrefix("qtool 0."))
    #expect(try qtool.run(["version"]).stdout == plain.stdout)
    let json = try qtool.run(["version", "--json"])
    let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: String]
    #expect(Set(object.keys) == ["version", "commit", "build_date", "sqlite", "libcurl", "libarchive"])
    #expect(object["sqlite"]!.hasPrefix("3."))
    #expect(object["libcurl"]!.split(separator: ".").count == 3)
    #expect(object["libarchive"]!.hasPrefix("3."))
    #expect(object["build_date"]!.count == 10)
  }

  @Test func usageErrorExits64WithUsageOnStderr() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let result = try qtool.run(["db", "backup"])
    #expect(result.status == 64)
    #expect(result.stdout.isEmpty)
    #expect(
      result.stderr == """
        qtool: error: missing required argument <file>
        Usage: qtool db backup <file> [options]
        Run 'qtool db backup --help' for more.

        """)
    let typo = try qtool.run(["db", "infoo"])
    #expect(typo.status == 64)
    #expect(typo.stderr.hasPrefix("qtool: error: unknown command 'infoo' for 'qtool db' — did you mean 'info'?\n"))
    let badChoice = try qtool.run(["completions", "tcsh"])
    #expect(badChoice.status == 64)
    #expect(badChoice.stderr.contains("<shell>: expected one of bash, zsh, fish, got 'tcsh'"))
  }

  @Test func dbInfoJSONOnAFreshStore() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["db", "migrate"]).status == 0)
    let result = try qtool.run(["db", "info", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    #expect(object["path"] as? String == qtool.databasePath)
    #expect(object["journal_mode"] as? String == "wal")
    #expect(object["pending_migrations"] as? [String] == [])
    #expect((object["applied_migrations"] as? [String])?.first == "001-market-data")
    #expect((object["row_counts"] as? [String: Int])?["bars"] == 0)
  }

  @Test func dbOptionAndEnvironmentChooseTheStore() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let viaFlag = qtool.home.appendingPathComponent("flag.db").path
    let viaEnv = qtool.home.appendingPathComponent("env.db").path
    try qtool.run(["db", "migrate", "--db", viaFlag], environment: ["QTOOL_DB": viaEnv])
    #expect(FileManager.default.fileExists(atPath: viaFlag))
    #expect(!FileManager.default.fileExists(atPath: viaEnv))
    try qtool.run(["db", "migrate"], environment: ["QTOOL_DB": viaEnv])
    #expect(FileManager.default.fileExists(atPath: viaEnv))
    #expect(try jsonObject(try qtool.run(["db", "info", "--json"], environment: ["QTOOL_DB": viaEnv]).stdout)["path"] as? String == viaEnv)
  }

  @Test func migrateReportsWhatItApplied() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let first = try qtool.run(["db", "migrate"])
    let second = try qtool.run(["db", "migrate", "--json"])
    let object = try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as! [String: [String]]
    #expect(object["applied_now"] == [])
    #expect(object["applied"]!.prefix(2) == ["001-market-data", "002-strategies-and-backtests"])
    #expect(first.stderr == object["applied"]!.map { "applied \($0)\n" }.joined(), "the first run applied every migration, in order")
  }

  @Test func backupWritesAnOpenableCopyAndRefusesToOverwrite() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    try qtool.run(["db", "migrate"])
    let target = qtool.home.appendingPathComponent("copy.db").path
    let result = try qtool.run(["db", "backup", target, "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    let copy = try qtool.run(["db", "info", "--json", "--db", target])
    #expect(copy.stdout.contains("\"002-strategies-and-backtests\""))
    let again = try qtool.run(["db", "backup", target])
    #expect(again.status == 73)
    #expect(again.stderr == "qtool: error: \(target) exists; replace it with --force, or choose another path\n")
    #expect(try qtool.run(["db", "backup", target, "--force"]).status == 0)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: qtool.home.path).filter { $0.contains(".partial-") }
    #expect(leftovers.isEmpty)
  }

  @Test func vacuum() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let result = try qtool.run(["db", "vacuum", "--json"])
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("\"bytes_after\""))
  }

  @Test func configShowReportsPrecedence() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    try FileManager.default.createDirectory(at: qtool.configDirectory, withIntermediateDirectories: true)
    try """
    db: /from/file.db
    proxy: socks5://127.0.0.1:1080
    sources:
      binance:
        base_url: http://127.0.0.1:9/file
    """.write(to: qtool.configDirectory.appendingPathComponent("config.yaml"), atomically: true, encoding: .utf8)
    func settings(_ arguments: [String], _ env: [String: String] = [:]) throws -> [String: (String?, String)] {
      let result = try qtool.run(["config", "show", "--json"] + arguments, environment: env)
      #expect(result.status == 0, "\(result.stderr)")
      let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
      var map: [String: (String?, String)] = [:]
      for entry in object["settings"] as! [[String: Any]] {
        map[entry["key"] as! String] = (entry["value"] as? String, entry["origin"] as! String)
      }
      return map
    }
    let fromFile = try settings([])
    #expect(fromFile["db"]! == ("/from/file.db", "file"))
    #expect(fromFile["proxy"]! == ("socks5://127.0.0.1:1080", "file"))
    #expect(fromFile["sources.binance.base_url"]! == ("http://127.0.0.1:9/file", "file"))
    #expect(fromFile["sources.yahoo.base_url"]! == ("https://query1.finance.yahoo.com", "default"))
    let fromEnv = try settings([], ["QTOOL_DB": "/from/env.db", "QTOOL_SOURCE_BINANCE_URL": "http://127.0.0.1:9/env"])
    #expect(fromEnv["db"]! == ("/from/env.db", "env"))
    #expect(fromEnv["sources.binance.base_url"]! == ("http://127.0.0.1:9/env", "env"))
    let fromFlag = try settings(["--db", "/from/flag.db"], ["QTOOL_DB": "/from/env.db"])
    #expect(fromFlag["db"]! == ("/from/flag.db", "flag"))
  }

  @Test func badConfigFileIsAClearError() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let missing = try qtool.run(["config", "show", "--config", "/nonexistent/qtool.yaml"])
    #expect(missing.status == 66)
    #expect(missing.stderr.contains("config file /nonexistent/qtool.yaml does not exist"))
    let path = qtool.home.appendingPathComponent("bad.yaml")
    try "db: [unclosed".write(to: path, atomically: true, encoding: .utf8)
    let invalid = try qtool.run(["config", "show", "--config", path.path])
    #expect(invalid.status == 65)
    #expect(invalid.stderr.hasPrefix("qtool: error: config file \(path.path) is not valid"))
    try "dbb: x.db".write(to: path, atomically: true, encoding: .utf8)
    let unknown = try qtool.run(["config", "show", "--config", path.path])
    #expect(unknown.status == 65)
    #expect(unknown.stderr.contains("unknown key 'dbb'"))
  }

  @Test func exitCodesTopic() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let result = try qtool.run(["help", "exit-codes"])
    #expect(result.status == 0)
    for line in ["  0    success", "  64   the command line was wrong", "  75   a temporary condition", "  130  cancelled by Ctrl-C", "  143  cancelled by SIGTERM"] {
      #expect(result.stdout.contains(line), "\(line)")
    }
    let typo = try qtool.run(["help", "exit-code"])
    #expect(typo.status == 64)
    #expect(typo.stderr.contains("did you mean 'exit-codes'?"))
  }

  /// `qtool … | head`: the reader goes away while qtool still has megabytes to write (far more
  /// than a pipe holds), so qtool must meet the closed pipe, and then exit 0 and say nothing.
  @Test func closedPipeExitsQuietly() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    var text = "timestamp,open,high,low,close,volume\n"
    for i in 0..<100_000 { text += "\(1_600_000_000 + i * 60),100.5,101.25,99.75,100.125,\(i)\n" }
    let file = qtool.home.appendingPathComponent("bars.csv")
    try text.write(to: file, atomically: true, encoding: .utf8)
    #expect(try qtool.run(["data", "import", file.path, "-s", "P", "-t", "1m"]).status == 0)
    let whole = try qtool.shell("\"$QTOOL\" data export P-1m | wc -c")
    #expect((Int(whole.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 4 << 20, "much more than a pipe buffer")

    let result = try qtool.shell("\"$QTOOL\" data export P-1m | head -c 10; echo \" qtool exited ${PIPESTATUS[0]}\"")
    #expect(result.stdout == "timestamp, qtool exited 0\n")
    #expect(result.stderr.isEmpty)
    let json = try qtool.shell("\"$QTOOL\" data export P-1m --format jsonl | head -n 1 > /dev/null; echo \"${PIPESTATUS[0]}\"")
    #expect(json.stdout == "0\n")
    #expect(json.stderr.isEmpty)
  }

  @Test func unreadableStoreIsAClearError() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let path = qtool.home.appendingPathComponent("junk.db").path
    try String(repeating: "not a database ", count: 400).write(toFile: path, atomically: true, encoding: .utf8)
    let result = try qtool.run(["db", "info", "--db", path])
    #expect(result.status == 65)
    #expect(result.stderr == "qtool: error: \(path) is not a qtool store (not an SQLite database); choose another store with --db\n")
  }
}
