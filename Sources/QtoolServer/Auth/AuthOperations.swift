import Crypto
import Foundation
import HummingbirdBcrypt
import QtoolCore
import QtoolEngine
import QtoolStore

/// A user as `qtool auth user list` and `GET /api/v1/auth/me` show them: never the hash.
public struct UserInfo: Codable, Sendable, Equatable {
  public var id: Int64
  public var username: String
  public var role: Role
  public var scopes: [Scope]
  public var createdAt: String
  public var lastLoginAt: String?
  public var lockedUntil: String?

  enum CodingKeys: String, CodingKey {
    case id, username, role, scopes, createdAt = "created_at", lastLoginAt = "last_login_at", lockedUntil = "locked_until"
  }

  init(_ record: UserRecord, now: Int64) {
    id = record.id
    username = record.username
    role = Role(rawValue: record.role) ?? .viewer
    scopes = role.scopes.sorted()
    createdAt = APIJSON.timestamp(record.createdAt)
    lastLoginAt = record.lastLoginAt.map(APIJSON.timestamp)
    lockedUntil = record.lockedUntil.flatMap { $0 > now ? APIJSON.timestamp($0) : nil }
  }
}

/// An API token as listed: its name, the start of its text, its scopes and dates; never the secret.
public struct TokenInfo: Codable, Sendable, Equatable {
  public var id: String
  public var name: String
  public var prefix: String
  public var scopes: [String]
  public var createdAt: String
  public var expiresAt: String?
  public var lastUsedAt: String?
  public var revokedAt: String?
  /// active, expired or revoked.
  public var status: String

  enum CodingKeys: String, CodingKey {
    case id, name, prefix, scopes, createdAt = "created_at", expiresAt = "expires_at", lastUsedAt = "last_used_at", revokedAt = "revoked_at"
    case status
  }

  init(_ record: APITokenRecord, now: Int64) {
    id = record.id
    name = record.name.split(separator: "#").first.map(String.init) ?? record.name
    prefix = record.prefix
    scopes = record.scopeList
    createdAt = APIJSON.timestamp(record.createdAt)
    expiresAt = record.expiresAt.map(APIJSON.timestamp)
    lastUsedAt = record.lastUsedAt.map(APIJSON.timestamp)
    revokedAt = record.revokedAt.map(APIJSON.timestamp)
    status = record.revokedAt != nil ? "revoked" : (record.expiresAt.map { $0 <= now } ?? false) ? "expired" : "active"
  }
}

/// A token just made: the only time its secret is shown.
public struct CreatedToken: Codable, Sendable {
  public var token: String
  public var info: TokenInfo
}

/// Users and API tokens of `qtool serve`, shared by `qtool auth …` and the server.
public struct AuthOperations: Sendable {
  public let database: QtoolDatabase
  public let clock: any WallClock
  public let bcryptCost: UInt8

  public init(database: QtoolDatabase, clock: any WallClock = SystemClock(), bcryptCost: UInt8 = 11) {
    self.database = database
    self.clock = clock
    self.bcryptCost = bcryptCost
  }

  static let minimumPassword = 8

  static func checkUsername(_ name: String) throws {
    let allowed = name.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "._@-".unicodeScalars.contains($0) }
    guard !name.isEmpty, name.count <= 64, allowed, name.unicodeScalars.allSatisfy(\.isASCII) else {
      throw OperationError.invalidArgument(
        "'\(name)' is not a valid user name: 1 to 64 ASCII letters, digits, '.', '_', '@' or '-'", field: "username")
    }
  }

  static func checkPassword(_ password: String) throws {
    guard password.count >= minimumPassword, password.utf8.count <= 72 else {
      throw OperationError.invalidArgument(
        "a password needs \(minimumPassword) to 72 bytes (bcrypt reads no further)", field: "password")
    }
  }

  public func addUser(username: String, password: String, role: Role) throws -> UserInfo {
    try Self.checkUsername(username)
    try Self.checkPassword(password)
    let hash = Bcrypt.hash(password, cost: bcryptCost)
    return UserInfo(try database.insertUser(username: username, passwordHash: hash, role: role.rawValue, at: clock.now()), now: clock.now())
  }

  public func users() throws -> [UserInfo] { try database.users().map { UserInfo($0, now: clock.now()) } }

  public func removeUser(username: String) throws -> UserInfo { UserInfo(try database.deleteUser(username: username), now: clock.now()) }

  /// A new password; the user's sessions (refresh tokens) end.
  public func setPassword(username: String, password: String) throws -> UserInfo {
    try Self.checkPassword(password)
    try database.setPassword(username: username, passwordHash: Bcrypt.hash(password, cost: bcryptCost), at: clock.now())
    return UserInfo(try database.user(named: username), now: clock.now())
  }

  /// Makes an API token named `name` with `scopes`, valid for `lifetime` milliseconds (nil: no end).
  public func createToken(name: String, scopes: [Scope], lifetime: Int64?) throws -> CreatedToken {
    try Self.checkUsername(name)
    if let lifetime, lifetime <= 0 { throw OperationError.invalidArgument("a token's lifetime must be positive", field: "expires") }
    let secret = "qt_" + Self.randomHex(40)
    let now = clock.now()
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let record = APITokenRecord(
      id: "t" + Self.randomHex(10), name: name, tokenHash: Self.sha256(secret), prefix: String(secret.prefix(10)),
      scopes: String(decoding: try encoder.encode(scopes.map(\.rawValue)), as: UTF8.self), createdAt: now, expiresAt: lifetime.map { now + $0 },
      lastUsedAt: nil, revokedAt: nil)
    try database.insertAPIToken(record)
    return CreatedToken(token: secret, info: TokenInfo(record, now: now))
  }

  public func tokens() throws -> [TokenInfo] { try database.apiTokens().map { TokenInfo($0, now: clock.now()) } }

  public func revokeToken(_ name: String) throws -> TokenInfo { TokenInfo(try database.revokeAPIToken(name, at: clock.now()), now: clock.now()) }

  static func sha256(_ text: String) -> String {
    SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
  }

  static func randomHex(_ count: Int) -> String {
    // Every request gets an id from here: 64 random bits at a time, hex by table (no formatting).
    var generator = SystemRandomNumberGenerator()
    let digits = Array("0123456789abcdef".utf8)
    var text = [UInt8]()
    text.reserveCapacity(count + 15)
    while text.count < count {
      var word: UInt64 = generator.next()
      for _ in 0..<16 {
        text.append(digits[Int(word & 0xf)])
        word >>= 4
      }
    }
    return String(decoding: text.prefix(count), as: UTF8.self)
  }

  /// `90d`, `12h`, `30m`, `1y`, or `never` (nil) → milliseconds.
  public static func parseLifetime(_ text: String) throws -> Int64? {
    if text == "never" { return nil }
    let day: Int64 = 86_400_000
    let units: [Character: Int64] = ["m": 60_000, "h": 3_600_000, "d": day, "w": 7 * day, "y": 365 * day]
    guard let unit = text.last, let factor = units[unit], let count = Int64(text.dropLast()), count > 0, count < 100_000 else {
      throw OperationError.invalidArgument("'\(text)' is not a lifetime: use 30m, 12h, 90d, 8w, 1y or never", field: "expires")
    }
    return count * factor
  }
}
