import Crypto
import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

/// How many requests a client may make in a window, e.g. `100/min`.
public struct RateLimit: Sendable, Equatable, CustomStringConvertible {
  public var requests: Int
  public var windowSeconds: Int

  public init(requests: Int, windowSeconds: Int) {
    self.requests = requests
    self.windowSeconds = windowSeconds
  }

  /// Parses `N/sec`, `N/min`, `N/hour` (also `N/s`, `N/m`, `N/h`).
  public init?(_ text: String) {
    let parts = text.split(separator: "/")
    guard parts.count == 2, let count = Int(parts[0].trimmingCharacters(in: .whitespaces)), count > 0 else { return nil }
    switch parts[1].trimmingCharacters(in: .whitespaces).lowercased() {
    case "s", "sec", "second": windowSeconds = 1
    case "m", "min", "minute": windowSeconds = 60
    case "h", "hour": windowSeconds = 3600
    default: return nil
    }
    requests = count
  }

  public var description: String {
    "\(requests)/" + (windowSeconds == 1 ? "sec" : windowSeconds == 60 ? "min" : windowSeconds == 3600 ? "hour" : "\(windowSeconds)s")
  }
}

/// Everything `qtool serve` is configured with: where it listens, its limits, its signing key.
public struct ServerConfiguration: Sendable {
  public var host: String = "127.0.0.1"
  public var port: Int = 8080
  /// HS256 key of access tokens.
  public var signingKey: [UInt8]
  public var accessTTL: Int64 = 900
  public var refreshTTL: Int64 = 30 * 86_400
  public var authRate = RateLimit(requests: 5, windowSeconds: 60)
  public var defaultRate = RateLimit(requests: 100, windowSeconds: 60)
  public var maxBodyBytes: Int = 64 << 20
  public var bcryptCost: UInt8 = 11
  public var lockoutFailures = 5
  public var lockoutSeconds: Int64 = 900
  /// How long a stored `Idempotency-Key` response is kept.
  public var idempotencySeconds: Int64 = 86_400
  /// PEM files for HTTPS.
  public var tlsCertificate: String?
  public var tlsKey: String?

  public init(signingKey: [UInt8]) { self.signingKey = signingKey }

  /// The configuration `settings` describe (`serve.*`), the signing key read from
  /// `serve.jwt_secret` or from `$QTOOL_HOME/serve.key`, created (0600) when missing.
  public static func resolve(settings: Settings) throws -> ServerConfiguration {
    var configuration = ServerConfiguration(signingKey: try signingKey(settings: settings))
    func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
      guard let text = settings.value("serve.\(key)"), let value = Int(text), range.contains(value) else {
        throw OperationError.invalidArgument(
          "serve.\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), not '\(settings.value("serve.\(key)") ?? "")'",
          field: "serve.\(key)")
      }
      return value
    }
    func rate(_ key: String) throws -> RateLimit {
      guard let limit = settings.value("serve.\(key)").flatMap(RateLimit.init) else {
        throw OperationError.invalidArgument(
          "serve.\(key) must be N/sec, N/min or N/hour, not '\(settings.value("serve.\(key)") ?? "")'", field: "serve.\(key)")
      }
      return limit
    }
    configuration.accessTTL = Int64(try int("access_ttl", 10...86_400))
    configuration.refreshTTL = Int64(try int("refresh_ttl", 60...(366 * 86_400)))
    configuration.authRate = try rate("rate_auth")
    configuration.defaultRate = try rate("rate_default")
    configuration.maxBodyBytes = try int("max_body_mib", 1...4096) << 20
    configuration.bcryptCost = UInt8(try int("bcrypt_cost", 4...31))
    configuration.lockoutFailures = try int("lockout_failures", 1...1000)
    configuration.lockoutSeconds = Int64(try int("lockout_seconds", 1...(30 * 86_400)))
    return configuration
  }

  /// `serve.jwt_secret`, or the key file beside the store (created with 0600 when missing).
  static func signingKey(settings: Settings) throws -> [UInt8] {
    if let secret = settings.value("serve.jwt_secret") {
      guard secret.utf8.count >= 32 else {
        throw OperationError.invalidArgument("serve.jwt_secret must be at least 32 characters", field: "serve.jwt_secret")
      }
      return Array(secret.utf8)
    }
    let path = settings.home + "/serve.key"
    if let data = FileManager.default.contents(atPath: path) {
      let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      guard text.utf8.count >= 32 else {
        throw OperationError.invalidInput("\(path) holds fewer than 32 characters", code: "signing_key_too_short", details: ["path": .string(path)])
      }
      return Array(text.utf8)
    }
    let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.map { String(format: "%02x", $0) }.joined()
    try FileManager.default.createDirectory(atPath: settings.home, withIntermediateDirectories: true)
    // Created 0600 before anything is written to it.
    let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    if descriptor < 0 {
      if errno == EEXIST { return try signingKey(settings: settings) }  // another process made it meanwhile
      throw OperationError.cannotWrite("cannot create \(path): \(String(cString: strerror(errno)))", path: path)
    }
    let bytes = Array((key + "\n").utf8)
    let written = write(descriptor, bytes, bytes.count)
    close(descriptor)
    guard written == bytes.count else { throw OperationError.cannotWrite("cannot write \(path)", path: path) }
    return Array(key.utf8)
  }
}
