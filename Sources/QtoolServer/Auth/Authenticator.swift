import Foundation
import HummingbirdBcrypt
import JWTKit
import QtoolCore
import QtoolEngine
import QtoolStore
import Synchronization

/// The claims of an access token.
struct AccessClaims: JWTPayload, Equatable {
  var sub: SubjectClaim
  var name: String
  var role: String
  var typ: String
  var iat: IssuedAtClaim
  var exp: ExpirationClaim
  var jti: IDClaim

  /// Expiry is checked against the server's clock by `Authenticator`, not the system clock.
  func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// What login and refresh return.
public struct TokenPair: Codable, Sendable {
  public var accessToken: String
  public var refreshToken: String
  public var tokenType = "bearer"
  /// Seconds the access token is valid.
  public var expiresIn: Int64
  public var user: UserInfo

  enum CodingKeys: String, CodingKey {
    case accessToken = "access_token", refreshToken = "refresh_token", tokenType = "token_type", expiresIn = "expires_in", user
  }
}

/// Checks credentials and issues tokens: bcrypt passwords with a lockout after repeated
/// failures, short-lived HS256 access tokens, rotating refresh tokens whose reuse revokes their
/// family, and hashed API tokens with scopes.
final class Authenticator: Sendable {
  let database: QtoolDatabase
  let clock: any WallClock
  let configuration: ServerConfiguration
  private let keys: JWTKeyCollection
  /// When each API token's last use was written (at most once a minute).
  private let touched = Mutex<[String: Int64]>([:])
  /// A bcrypt hash to compare against when the user does not exist, so both cost the same time.
  private let decoy: String

  init(database: QtoolDatabase, clock: any WallClock, configuration: ServerConfiguration) async {
    self.database = database
    self.clock = clock
    self.configuration = configuration
    keys = JWTKeyCollection()
    await keys.add(hmac: HMACKey(from: configuration.signingKey), digestAlgorithm: .sha256)
    decoy = Bcrypt.hash("qtool-decoy-password", cost: configuration.bcryptCost)
  }

  // MARK: Bearer tokens

  /// The principal a bearer token stands for.
  func authenticate(bearer token: String) async throws -> Principal {
    if token.hasPrefix("qt_") { return try apiTokenPrincipal(token) }
    let claims: AccessClaims
    do {
      claims = try await keys.verify(token, as: AccessClaims.self)
    } catch {
      throw ServerError.invalidToken("the access token is not valid (malformed, or not signed by this server)")
    }
    guard claims.typ == "access" else { throw ServerError.invalidToken("that is not an access token") }
    let now = clock.now()
    guard Int64(claims.exp.value.timeIntervalSince1970 * 1000) > now else {
      throw ServerError.invalidToken("the access token has expired", code: "token_expired")
    }
    let role = Role(rawValue: claims.role) ?? .viewer
    return Principal(kind: .user, id: "user:\(claims.name)", name: claims.name, role: role, scopes: role.scopes)
  }

  private func apiTokenPrincipal(_ token: String) throws -> Principal {
    guard let record = try database.apiToken(hash: AuthOperations.sha256(token)) else {
      throw ServerError.invalidToken("unknown API token")
    }
    let now = clock.now()
    if record.revokedAt != nil { throw ServerError.invalidToken("the API token \(record.name) was revoked", code: "token_revoked") }
    if let expires = record.expiresAt, expires <= now {
      throw ServerError.invalidToken("the API token \(record.name) expired at \(APIJSON.timestamp(expires))", code: "token_expired")
    }
    let write = touched.withLock { seen -> Bool in
      guard now - (seen[record.id] ?? 0) >= 60_000 else { return false }
      seen[record.id] = now
      return true
    }
    if write { try? database.touchAPIToken(id: record.id, at: now) }
    return Principal(
      kind: .token, id: "token:\(record.name)", name: record.name, role: nil, scopes: Set(record.scopeList.compactMap(Scope.init(rawValue:))))
  }

  // MARK: Login, refresh, logout

  func login(username: String, password: String) async throws -> TokenPair {
    let user = try? database.user(named: username)
    let now = clock.now()
    if let user, let locked = user.lockedUntil, locked > now {
      throw lockedError(until: locked, now: now)
    }
    let hash = user?.passwordHash ?? decoy
    // bcrypt is slow on purpose: off the cooperative pool.
    let matches = try await OperationAwait.run(cancellation: .never) { Bcrypt.verify(password, hash: hash) }
    guard let user, matches else {
      if let user,
        let updated = try database.recordFailedLogin(
          userID: user.id, limit: configuration.lockoutFailures, lockMilliseconds: configuration.lockoutSeconds * 1000, at: now),
        let locked = updated.lockedUntil, locked > now
      {
        throw lockedError(until: locked, now: now)
      }
      throw ServerError(.unauthorized, code: "invalid_credentials", "wrong user name or password")
    }
    try database.recordLogin(userID: user.id, at: now)
    return try await issue(for: user, family: "f" + AuthOperations.randomHex(16))
  }

  private func lockedError(until: Int64, now: Int64) -> ServerError {
    let seconds = Int((until - now + 999) / 1000)
    return ServerError(
      .rateLimited, code: "account_locked", "the account is locked after repeated failed logins until \(APIJSON.timestamp(until))",
      details: ["locked_until": .string(APIJSON.timestamp(until))], hint: "wait, or have an admin reset the password", retryAfter: seconds)
  }

  /// A new pair for `user`; the refresh token belongs to `family`.
  private func issue(for user: UserRecord, family: String, replacing old: String? = nil) async throws -> TokenPair {
    let now = clock.now()
    let claims = AccessClaims(
      sub: SubjectClaim(value: String(user.id)), name: user.username, role: user.role, typ: "access",
      iat: IssuedAtClaim(value: Date(timeIntervalSince1970: Double(now) / 1000)),
      exp: ExpirationClaim(value: Date(timeIntervalSince1970: Double(now + configuration.accessTTL * 1000) / 1000)),
      jti: IDClaim(value: AuthOperations.randomHex(16)))
    let access = try await keys.sign(claims)
    let id = AuthOperations.randomHex(16)
    let secret = AuthOperations.randomHex(48)
    let record = RefreshTokenRecord(
      id: id, family: family, userID: user.id, tokenHash: AuthOperations.sha256(secret), createdAt: now,
      expiresAt: now + configuration.refreshTTL * 1000, usedAt: nil, revokedAt: nil)
    if let old {
      guard try database.rotateRefreshToken(id: old, successor: record, at: now) else {
        try database.revokeRefreshFamily(family, at: now)
        throw ServerError.invalidToken("the refresh token was used already; its session is revoked", code: "refresh_token_reused")
      }
    } else {
      try database.insertRefreshToken(record)
    }
    return TokenPair(
      accessToken: access, refreshToken: "rt_\(id).\(secret)", expiresIn: configuration.accessTTL, user: UserInfo(user, now: now))
  }

  /// The stored token `text` names, checked against its hash.
  private func storedRefreshToken(_ text: String) throws -> RefreshTokenRecord {
    let invalid = ServerError.invalidToken("the refresh token is not valid", code: "invalid_refresh_token")
    guard text.hasPrefix("rt_"), let dot = text.firstIndex(of: ".") else { throw invalid }
    let id = String(text[text.index(text.startIndex, offsetBy: 3)..<dot])
    let secret = String(text[text.index(after: dot)...])
    guard let record = try database.refreshToken(id: id), record.tokenHash == AuthOperations.sha256(secret) else { throw invalid }
    return record
  }

  /// Rotates a refresh token: a new pair, the old token spent. A spent or revoked token
  /// presented again revokes its whole family (someone else may hold a copy).
  func refresh(_ text: String) async throws -> TokenPair {
    let record = try storedRefreshToken(text)
    let now = clock.now()
    if record.usedAt != nil {
      try database.revokeRefreshFamily(record.family, at: now)
      throw ServerError.invalidToken("the refresh token was used already; its session is revoked", code: "refresh_token_reused")
    }
    if record.revokedAt != nil { throw ServerError.invalidToken("the session was ended", code: "token_revoked") }
    if record.expiresAt <= now { throw ServerError.invalidToken("the refresh token has expired", code: "token_expired") }
    guard let user = try database.user(id: record.userID) else { throw ServerError.invalidToken("the user no longer exists") }
    return try await issue(for: user, family: record.family, replacing: record.id)
  }

  /// Ends the session a refresh token belongs to.
  func logout(_ text: String) throws {
    let record = try storedRefreshToken(text)
    try database.revokeRefreshFamily(record.family, at: clock.now())
  }
}
