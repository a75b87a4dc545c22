import Foundation
import Testing

@testable import QtoolEngine

@Suite struct SettingsTests {
  let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-settings-\(UUID().uuidString)")

  func write(_ text: String) throws -> String {
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let url = directory.appendingPathComponent("config.yaml")
    try text.write(to: url, atomically: true, encoding: .utf8)
    return url.path
  }

  @Test func defaultsFollowXDG() throws {
    let settings = try Settings.resolve(
      flags: [:], configFile: nil, environment: ["HOME": "/home/u", "XDG_DATA_HOME": "/data", "XDG_CONFIG_HOME": "/cfg"])
    #expect(settings.home == "/data/qtool")
    #expect(settings.databasePath == "/data/qtool/qtool.db")
    #expect(settings.configFile == "/cfg/qtool/config.yaml")
    #expect(settings.setting("db")?.origin == .default)
    let bare = try Settings.resolve(flags: [:], configFile: nil, environment: ["HOME": "/home/u"])
    #expect(bare.databasePath == "/home/u/.local/share/qtool/qtool.db")
  }

  @Test func precedenceIsFlagEnvFileDefault() throws {
    let file = try write("home: /file/home\nproxy: http://file:1\nsources:\n  stooq:\n    base_url: http://file/stooq\n")
    let env = ["HOME": "/home/u", "QTOOL_PROXY": "http://env:1", "QTOOL_SOURCE_STOOQ_URL": "http://env/stooq"]
    let settings = try Settings.resolve(flags: ["home": ("/flag/home", .flag)], configFile: file, environment: env)
    #expect(settings.setting("home")?.origin == .flag)
    #expect(settings.databasePath == "/flag/home/qtool.db", "db follows the effective home")
    #expect(settings.setting("proxy")?.value == "http://env:1")
    #expect(settings.setting("proxy")?.origin == .env)
    #expect(settings.baseURL(for: "stooq") == "http://env/stooq")
    let fileOnly = try Settings.resolve(flags: [:], configFile: file, environment: ["HOME": "/home/u"])
    #expect(fileOnly.home == "/file/home")
    #expect(fileOnly.baseURL(for: "stooq") == "http://file/stooq")
    #expect(fileOnly.baseURL(for: "binance-bulk") == "https://data.binance.vision")
  }

  @Test func sourceVariableNames() {
    #expect(SourceCatalog.environmentVariable(for: "binance-bulk") == "QTOOL_SOURCE_BINANCE_BULK_URL")
  }

  @Test func tildeExpands() throws {
    let settings = try Settings.resolve(flags: ["db": ("~/x.db", .flag)], configFile: nil, environment: ["HOME": "/home/u"])
    #expect(settings.databasePath == "/home/u/x.db")
  }

  @Test func errors() throws {
    #expect(throws: ConfigError.missingFile("/nope.yaml")) {
      try Settings.resolve(flags: [:], configFile: "/nope.yaml", environment: [:])
    }
    let list = try write("db:\n  - a\n  - b\n")
    #expect(throws: ConfigError.invalidYAML(path: list, reason: "db must be a single value, not a list")) {
      try Settings.resolve(flags: [:], configFile: list, environment: [:])
    }
    let unknown = try write("sources:\n  binanse:\n    base_url: x\n")
    #expect((try? Settings.resolve(flags: [:], configFile: unknown, environment: [:])) == nil)
  }
}
