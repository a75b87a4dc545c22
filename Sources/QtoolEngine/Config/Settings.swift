import Foundation
import QtoolCore
import Yams

/// Where an effective setting came from, in precedence order.
public enum SettingOrigin: String, Codable, Sendable {
  case flag, env, file, `default`
}

/// One effective setting and where it came from.
public struct Setting: Codable, Sendable, Equatable {
  public var key: String
  public var value: String?
  public var origin: SettingOrigin
  public var help: String
}

/// The data sources qtool knows, with their public base URLs.
public enum SourceCatalog {
  public static let baseURLs: [(name: String, url: String)] = [
    ("binance", "https://api.binance.com"),
    ("binance-bulk", "https://data.binance.vision"),
    ("yahoo", "https://query1.finance.yahoo.com"),
    ("stooq", "https://stooq.com"),
  ]

  /// `QTOOL_SOURCE_BINANCE_BULK_URL` for `binance-bulk`.
  public static func environmentVariable(for source: String) -> String {
    "QTOOL_SOURCE_" + source.uppercased().replacingOccurrences(of: "-", with: "_") + "_URL"
  }
}

/// qtool's effective configuration: flag > environment (`QTOOL_*`) > config file > default.
///
/// ```swift
/// let settings = try Settings.resolve(flags: ["db": ("/tmp/x.db", .flag)], environment: env)
/// settings.value("db")   // "/tmp/x.db"
/// ```
public struct Settings: Sendable {
  public let configFile: String
  public let configFileExists: Bool
  public let entries: [Setting]

  public func value(_ key: String) -> String? { entries.first { $0.key == key }?.value }
  public func setting(_ key: String) -> Setting? { entries.first { $0.key == key } }

  /// A copy with `key` set from a command-line flag.
  public func overriding(_ key: String, with value: String) -> Settings {
    Settings(
      configFile: configFile, configFileExists: configFileExists,
      entries: entries.map { $0.key == key ? Setting(key: key, value: value, origin: .flag, help: $0.help) : $0 })
  }

  public var home: String { value("home")! }
  public var databasePath: String { value("db")! }

  /// The base URL of `source`, honouring `QTOOL_SOURCE_<NAME>_URL` and `sources.<name>.base_url`.
  public func baseURL(for source: String) -> String? { value("sources.\(source).base_url") }

  /// - parameters:
  ///   - flags: values given on the command line or through an option's own `QTOOL_*`
  ///     variable, keyed by setting name, with the origin the parser reported.
  ///   - configFile: the config file path (`--config`); nil means the XDG default.
  /// - throws: `ConfigError` when an explicitly named file is missing or the YAML is invalid.
  public static func resolve(
    flags: [String: (value: String, origin: SettingOrigin)], configFile explicitFile: String?,
    environment: [String: String]
  ) throws -> Settings {
    let path =
      explicitFile.map { QtoolPaths.expand($0, environment: environment) }
      ?? QtoolPaths.defaultConfigFile(environment: environment)
    let exists = FileManager.default.fileExists(atPath: path)
    if explicitFile != nil, !exists { throw ConfigError.missingFile(path) }
    let fileValues = exists ? try readFile(path) : [:]

    var entries: [Setting] = []
    func add(_ key: String, env: String?, defaultValue: String?, help: String) {
      if let given = flags[key] {
        entries.append(Setting(key: key, value: given.value, origin: given.origin, help: help))
      } else if let env, let value = environment[env], !value.isEmpty {
        entries.append(Setting(key: key, value: value, origin: .env, help: help))
      } else if let value = fileValues[key] {
        entries.append(Setting(key: key, value: value, origin: .file, help: help))
      } else {
        entries.append(Setting(key: key, value: defaultValue, origin: .default, help: help))
      }
    }
    add(
      "home", env: "QTOOL_HOME", defaultValue: QtoolPaths.defaultHome(environment: environment),
      help: "directory holding qtool.db")
    let home = QtoolPaths.expand(entries[0].value!, environment: environment)
    entries[0].value = home
    add("db", env: "QTOOL_DB", defaultValue: home + "/qtool.db", help: "the SQLite store")
    if let index = entries.firstIndex(where: { $0.key == "db" }) {
      entries[index].value = entries[index].value.map { QtoolPaths.expand($0, environment: environment) }
    }
    // As --db - is refused while parsing: the store is opened by name, never standard input.
    for key in ["home", "db"] where entries.first(where: { $0.key == key })?.value == "-" {
      throw ConfigError.invalidYAML(path: path, reason: "\(key): '-' cannot be standard input or output; give a path")
    }
    add("proxy", env: "QTOOL_PROXY", defaultValue: nil, help: "proxy URL for data sources, e.g. socks5://127.0.0.1:1080")
    for (source, url) in SourceCatalog.baseURLs {
      add(
        "sources.\(source).base_url", env: SourceCatalog.environmentVariable(for: source),
        defaultValue: url, help: "base URL of the \(source) source")
    }
    for (key, value, help) in downloadLimits {
      add("download.\(key)", env: "QTOOL_DOWNLOAD_\(key.uppercased())", defaultValue: value, help: help)
    }
    for (key, value, help) in liveSettings {
      add(key, env: "QTOOL_" + key.uppercased().replacingOccurrences(of: ".", with: "_"), defaultValue: value, help: help)
    }
    for (key, value, help) in serveSettings {
      add("serve.\(key)", env: "QTOOL_SERVE_\(key.uppercased())", defaultValue: value, help: help)
    }
    let known = Set(entries.map(\.key))
    let unknown = fileValues.keys.filter { !known.contains($0) }.sorted()
    if let first = unknown.first {
      throw ConfigError.unknownKey(path: path, key: first, known: known.sorted())
    }
    return Settings(configFile: path, configFileExists: exists, entries: entries)
  }

  /// `download.*`: how long and how much a download may take (read by `DownloadLimits`).
  static let downloadLimits: [(key: String, value: String, help: String)] = [
    ("retry_after_cap", "120", "longest Retry-After (s) a download waits; a longer one fails the run with 75"),
    ("min_speed", "1024", "bytes/s a transfer must keep up over stall_timeout, or it is abandoned and retried"),
    ("stall_timeout", "30", "seconds a transfer may stay below min_speed"),
    ("file_timeout", "600", "seconds one file's transfer may take in all"),
    ("max_response_mib", "64", "largest REST response (MiB) a download accepts"),
    ("max_archive_mib", "1024", "largest archive (MiB) a download accepts"),
  ]

  /// `notify.*` and `live.*`: notification retries and runner heartbeats (read by
  /// `NotifySettings` and `LiveSettings`); env `QTOOL_NOTIFY_RETRY_BASE`, `QTOOL_LIVE_STALE_AFTER`, ….
  static let liveSettings: [(key: String, value: String, help: String)] = [
    ("notify.retry_base", "1", "seconds before a failed notification is tried again; doubled each attempt, with jitter"),
    ("notify.retry_cap", "300", "longest wait (s) between two attempts of a notification, a Retry-After included"),
    ("notify.max_attempts", "8", "attempts before a notification is given up (dead), unless its channel sets its own"),
    ("notify.telegram_url", "https://api.telegram.org", "base URL of the Telegram Bot API"),
    ("live.heartbeat_interval", "5", "seconds between a runner's heartbeats"),
    ("live.stale_after", "30", "seconds without a heartbeat after which `strategy status` shows a runner as dead"),
  ]

  /// A positive number setting, or `fallback` when unset.
  /// Up to `maximum` (a year of seconds by default: times in milliseconds stay far from overflow).
  func positiveNumber(_ key: String, _ fallback: Double, maximum: Double = 31_536_000) throws -> Double {
    guard let text = value(key) else { return fallback }
    guard let number = Double(text), number.isFinite, number > 0, number <= maximum else {
      throw OperationError.invalidArgument("\(key) must be a number above 0 and at most \(Int(maximum)), not '\(text)'", field: key)
    }
    return number
  }

  /// `serve.*`: the REST server's limits and its signing key (read by `qtool serve`).
  static let serveSettings: [(key: String, value: String?, help: String)] = [
    ("jwt_secret", nil, "key (32+ characters) signing access tokens; default: a random key kept in $QTOOL_HOME/serve.key (0600)"),
    ("access_ttl", "900", "seconds an access token (JWT) stays valid"),
    ("refresh_ttl", "2592000", "seconds a refresh token stays valid (rotated at every use)"),
    ("rate_auth", "5/min", "requests per client to /auth routes (login, refresh): N/sec, N/min or N/hour"),
    ("rate_default", "100/min", "requests per token or IP to every other route"),
    ("max_body_mib", "64", "largest request body (MiB); uploads for import included"),
    ("bcrypt_cost", "11", "bcrypt cost of stored passwords (4 to 31)"),
    ("lockout_failures", "5", "failed logins in a row that lock an account"),
    ("lockout_seconds", "900", "how long a locked account stays locked"),
  ]

  /// Flattens nested YAML mappings to dotted keys: `sources: {binance: {base_url: …}}` →
  /// `sources.binance.base_url`.
  static func readFile(_ path: String) throws -> [String: String] {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
      throw ConfigError.unreadable(path)
    }
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw ConfigError.invalidYAML(path: path, reason: "\(error)")
    }
    guard let node else { return [:] }
    guard case .mapping = node else { throw ConfigError.invalidYAML(path: path, reason: "the top level must be a mapping of keys to values") }
    var result: [String: String] = [:]
    func visit(_ node: Node, _ prefix: String) throws {
      switch node {
      case .mapping(let mapping):
        for (key, value) in mapping {
          guard let name = key.string else { continue }
          try visit(value, prefix.isEmpty ? name : prefix + "." + name)
        }
      case .scalar(let scalar):
        result[prefix] = scalar.string
      case .sequence:
        throw ConfigError.invalidYAML(path: path, reason: "\(prefix) must be a single value, not a list")
      case .alias:
        throw ConfigError.invalidYAML(path: path, reason: "\(prefix): aliases are not supported")
      }
    }
    try visit(node, "")
    return result
  }
}

public enum ConfigError: QtoolError, Equatable {
  case missingFile(String)
  case unreadable(String)
  case invalidYAML(path: String, reason: String)
  case unknownKey(path: String, key: String, known: [String])

  public var category: ErrorCategory {
    switch self {
    case .missingFile: return .notFound
    case .unreadable, .invalidYAML, .unknownKey: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .missingFile: return "config_not_found"
    case .unreadable: return "config_unreadable"
    case .invalidYAML: return "config_invalid"
    case .unknownKey: return "config_unknown_key"
    }
  }

  public var hint: ErrorHint? {
    if case .missingFile = self { return "create it, or stop naming it with {config} / QTOOL_CONFIG" }
    return nil
  }

  public var message: String {
    switch self {
    case .missingFile(let path):
      return "config file \(path) does not exist"
    case .unreadable(let path):
      return "cannot read config file \(path) as UTF-8 text."
    case .invalidYAML(let path, let reason):
      return "config file \(path) is not valid: \(reason)"
    case .unknownKey(let path, let key, let known):
      return "config file \(path): unknown key '\(key)'; known keys: \(known.joined(separator: ", "))."
    }
  }
}
