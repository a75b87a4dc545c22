import Foundation

/// Runs the built `qtool` binary as a user would, in a scratch home of its own.
struct QtoolProcess {
  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  /// The package root, from this file's location.
  static let packageRoot: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  /// `QTOOL_BIN`, else the qtool next to the test bundle, else `.build/debug/qtool`.
  static let binary: URL = {
    if let path = ProcessInfo.processInfo.environment["QTOOL_BIN"] { return URL(fileURLWithPath: path) }
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qtool")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return packageRoot.appendingPathComponent(".build/debug/qtool")
  }()

  /// A scratch directory used as QTOOL_HOME and XDG_CONFIG_HOME.
  let home: URL

  init() throws {
    home = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
  }

  var databasePath: String { home.appendingPathComponent("qtool.db").path }
  var configDirectory: URL { home.appendingPathComponent("config/qtool") }

  func cleanUp() { try? FileManager.default.removeItem(at: home) }

  func environment(_ extra: [String: String] = [:]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("QTOOL_") }
    environment["QTOOL_HOME"] = home.path
    environment["XDG_CONFIG_HOME"] = home.appendingPathComponent("config").path
    environment["NO_COLOR"] = "1"
    for (key, value) in extra { environment[key] = value }
    return environment
  }

  @discardableResult
  func run(_ arguments: [String], environment extra: [String: String] = [:], stdin: Data? = nil) throws -> Result {
    let process = Process()
    process.executableURL = Self.binary
    process.arguments = arguments
    process.environment = environment(extra)
    process.currentDirectoryURL = home
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(stdin) }
    try? input.fileHandleForWriting.close()
    // Read both pipes fully before waiting, so a large output cannot block the child.
    let group = DispatchGroup()
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    group.enter()
    DispatchQueue.global().async {
      outData = out.fileHandleForReading.readDataToEndOfFile()
      group.leave()
    }
    errData = err.fileHandleForReading.readDataToEndOfFile()
    group.wait()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }

  /// Runs a shell pipeline with this home's environment, e.g. to test `qtool … | head`.
  func shell(_ script: String) throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/bash")
    process.arguments = ["-c", script]
    var environment = environment()
    environment["QTOOL"] = Self.binary.path
    process.environment = environment
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }
}
