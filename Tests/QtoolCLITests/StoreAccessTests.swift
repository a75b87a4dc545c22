import Foundation
import Testing

/// Opening the store: many processes at once on a new store, and commands that only read.
@Suite struct StoreAccessTests {
  /// Two cron jobs at midnight on a new store (or after an upgrade that adds a migration) must
  /// not fail: migrations run under one lock, the others wait.
  @Test func eightProcessesOnANewStoreAllSucceed() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    var files: [String] = []
    for i in 0..<4 {
      let file = qtool.home.appendingPathComponent("s\(i).csv")
      try "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n2024-01-02,1,2,0.5,1.5,10\n".write(to: file, atomically: true, encoding: .utf8)
      files.append(file.path)
    }
    let commands: [[String]] =
      files.enumerated().map { ["data", "import", $0.element, "-s", "S\($0.offset)", "-t", "1d"] } + (0..<4).map { _ in ["jobs", "prune"] }
    let processes = try commands.map { arguments -> (Process, Pipe) in
      let process = Process()
      process.executableURL = QtoolProcess.binary
      process.arguments = arguments
      process.environment = qtool.environment()
      let err = Pipe()
      process.standardError = err
      process.standardOutput = FileHandle.nullDevice
      return (process, err)
    }
    for (process, _) in processes { try process.run() }
    for (process, err) in processes {
      process.waitUntilExit()
      let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
      #expect(process.terminationStatus == 0, "\(process.arguments!): \(message)")
    }
    let datasets = try jsonArray(try qtool.run(["data", "list", "--json"]).stdout)
    #expect(datasets.count == 4)
  }

  /// A --db that is another program's SQLite database is refused and left exactly as it was:
  /// nothing is created beside it (no lease directory, no -wal).
  @Test func aForeignDatabaseIsRefusedWithoutLitter() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let directory = qtool.home.appendingPathComponent("other")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let path = directory.appendingPathComponent("app.db").path
    let sqlite = Process()
    sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    sqlite.arguments = [path, "CREATE TABLE notes (text TEXT); INSERT INTO notes VALUES ('keep');"]
    try sqlite.run()
    sqlite.waitUntilExit()
    let before = try Data(contentsOf: URL(fileURLWithPath: path))
    let file = qtool.home.appendingPathComponent("s.csv")
    try "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,10\n".write(to: file, atomically: true, encoding: .utf8)
    for arguments in [["data", "import", file.path, "-s", "S", "-t", "1d"], ["jobs", "prune"], ["data", "list"]] {
      let result = try qtool.run(["--db", path] + arguments)
      #expect(result.status == 65, "\(arguments): \(result.stderr)")
      #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["app.db"], "\(arguments) left nothing beside it")
    }
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
  }

  /// Commands that only read never create a store.
  @Test func readersDoNotCreateAStore() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n")
    #expect(try qtool.run(["backtest", "list", "--json"]).stdout == "[\n\n]\n")
    #expect(try qtool.run(["jobs", "list", "--json"]).stdout == "[\n\n]\n")
    let info = try qtool.run(["db", "info"])
    #expect(info.status == 0)
    #expect(info.stdout.contains("none yet"))
    #expect(try jsonObject(try qtool.run(["db", "info", "--json"]).stdout)["exists"] as? Bool == false)
    #expect(try qtool.run(["data", "info", "GOOG-1d"]).status == 66)
    #expect(!FileManager.default.fileExists(atPath: qtool.databasePath), "nothing was created")
  }
}
