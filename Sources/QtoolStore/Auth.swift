import Foundation
import GRDB
import QtoolCore

/// A user of `qtool serve`: a name, a bcrypt hash, a role, and the lockout counters.
public struct UserRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: Int64
  public var username: String
  public var passwordHash: String
  public var role: String
  public var createdAt: Int64
  public var updatedAt: Int64
  public var failedLogins: Int
  public var lockedUntil: Int64?
  public var lastLoginAt: Int64?

  enum CodingKeys: String, CodingKey {
    case id, username, passwordHash = "password_hash", role, createdAt = "created_at", updatedAt = "updated_at"
    case failedLogins = "failed_logins", lockedUntil = "locked_until", lastLoginAt = "last_login_at"
  }
}

/// One refresh token of a family; a family is one login, rotated at every refresh.
public struct RefreshTokenRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var family: String
  public var userID: Int64
  public var tokenHash: String
  public var createdAt: Int64
  public var expiresAt: Int64
  public var usedAt: Int64?
  public var revokedAt: Int64?

  public init(
    id: String, family: String, userID: Int64, tokenHash: String, createdAt: Int64, expiresAt: Int64, usedAt: Int64?, revokedAt: Int64?
  ) {
    self.id = id
    self.family = family
    self.userID = userID
    self.tokenHash = tokenHash
    self.createdAt = createdAt
    self.expiresAt = expiresAt
    self.usedAt = usedAt
    self.revokedAt = revokedAt
  }

  enum CodingKeys: String, CodingKey {
    case id, family, userID = "user_id", tokenHash = "token_hash", createdAt = "created_at", expiresAt = "expires_at", usedAt = "used_at"
    case revokedAt = "revoked_at"
  }
}

/// A long-lived API token (CI, cron): stored as the SHA-256 of its secret, with its scopes.
public struct APITokenRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var name: String
  public var tokenHash: String
  /// The first characters of the token, to recognise it in a list.
  public var prefix: String
  /// A JSON array of scope names.
  public var scopes: String
  public var createdAt: Int64
  public var expiresAt: Int64?
  public var lastUsedAt: Int64?
  public var revokedAt: Int64?

  public init(
    id: String, name: String, tokenHash: String, prefix: String, scopes: String, createdAt: Int64, expiresAt: Int64?, lastUsedAt: Int64?,
    revokedAt: Int64?
  ) {
    self.id = id
    self.name = name
    self.tokenHash = tokenHash
    self.prefix = prefix
    self.scopes = scopes
    self.createdAt = createdAt
    self.expiresAt = expiresAt
    self.lastUsedAt = lastUsedAt
    self.revokedAt = revokedAt
  }

  enum CodingKeys: String, CodingKey {
    case id, name, tokenHash = "token_hash", prefix, scopes, createdAt = "created_at", expiresAt = "expires_at", lastUsedAt = "last_used_at"
    case revokedAt = "revoked_at"
  }

  public var scopeList: [String] { (try? JSONDecoder().decode([String].self, from: Data(scopes.utf8))) ?? [] }
}

/// One write made through the server.
public struct AuditRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: Int64
  public var at: Int64
  public var actor: String
  public var action: String
  public var target: String?
  public var status: Int
  public var requestID: String?
  public var ip: String?

  enum CodingKeys: String, CodingKey { case id, at, actor, action, target, status, requestID = "request_id", ip }
}

/// A stored response to a request made with an `Idempotency-Key`; `status` is nil while the
/// first request is still being answered.
public struct IdempotencyRecord: Sendable, Equatable {
  public var method: String
  public var path: String
  public var bodyHash: String
  public var status: Int?
  public var response: Data?
  public var contentType: String?
  public var createdAt: Int64
}

public enum AuthStoreError: QtoolError, Equatable {
  case userNotFound(String)
  case userExists(String)
  case tokenNotFound(String)
  case tokenExists(String)

  public var category: ErrorCategory {
    switch self {
    case .userNotFound, .tokenNotFound: return .notFound
    case .userExists, .tokenExists: return .alreadyExists
    }
  }
  public var code: String {
    switch self {
    case .userNotFound: return "user_not_found"
    case .userExists: return "user_exists"
    case .tokenNotFound: return "token_not_found"
    case .tokenExists: return "token_exists"
    }
  }
  public var message: String {
    switch self {
    case .userNotFound(let name): return "no user '\(name)'"
    case .userExists(let name): return "a user '\(name)' exists already"
    case .tokenNotFound(let name): return "no API token '\(name)'"
    case .tokenExists(let name): return "an API token named '\(name)' exists already"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .userNotFound(let name), .userExists(let name): return ["username": .string(name)]
    case .tokenNotFound(let name), .tokenExists(let name): return ["token": .string(name)]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .userNotFound: return "`qtool auth user list` shows the users"
    case .userExists: return "change its password with `qtool auth user passwd`, or choose another name"
    case .tokenNotFound: return "`qtool auth token list` shows the tokens"
    case .tokenExists: return "revoke it first, or choose another name"
    }
  }
}

extension QtoolDatabase {
  // MARK: Users

  public func insertUser(username: String, passwordHash: String, role: String, at time: Int64) throws -> UserRecord {
    try write { db in
      if try Int.fetchOne(db, sql: "SELECT 1 FROM users WHERE username = ?", arguments: [username]) != nil {
        throw AuthStoreError.userExists(username)
      }
      try db.execute(
        sql: "INSERT INTO users (username, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        arguments: [username, passwordHash, role, time, time])
      return try UserRecord.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [db.lastInsertedRowID])!
    }
  }

  public func users() throws -> [UserRecord] {
    try read { try UserRecord.fetchAll($0, sql: "SELECT * FROM users ORDER BY username") }
  }

  public func user(named username: String) throws -> UserRecord {
    guard let user = try read({ try UserRecord.fetchOne($0, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]) }) else {
      throw AuthStoreError.userNotFound(username)
    }
    return user
  }

  public func user(id: Int64) throws -> UserRecord? {
    try read { try UserRecord.fetchOne($0, sql: "SELECT * FROM users WHERE id = ?", arguments: [id]) }
  }

  /// Deletes a user; their refresh tokens go with them.
  public func deleteUser(username: String) throws -> UserRecord {
    try write { db in
      guard let user = try UserRecord.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]) else {
        throw AuthStoreError.userNotFound(username)
      }
      try db.execute(sql: "DELETE FROM users WHERE id = ?", arguments: [user.id])
      return user
    }
  }

  /// A new password: the lockout is cleared and every refresh token of the user is revoked.
  public func setPassword(username: String, passwordHash: String, at time: Int64) throws {
    try write { db in
      guard let user = try UserRecord.fetchOne(db, sql: "SELECT * FROM users WHERE username = ?", arguments: [username]) else {
        throw AuthStoreError.userNotFound(username)
      }
      try db.execute(
        sql: "UPDATE users SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?",
        arguments: [passwordHash, time, user.id])
      try db.execute(
        sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL", arguments: [time, user.id])
    }
  }

  /// Counts a failed login; locks the account for `lockMilliseconds` once `limit` failures in a row are reached.
  public func recordFailedLogin(userID: Int64, limit: Int, lockMilliseconds: Int64, at time: Int64) throws -> UserRecord? {
    try write { db in
      try db.execute(sql: "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = ?", arguments: [userID])
      try db.execute(
        sql: "UPDATE users SET locked_until = ?, failed_logins = 0 WHERE id = ? AND failed_logins >= ?",
        arguments: [time + lockMilliseconds, userID, limit])
      return try UserRecord.fetchOne(db, sql: "SELECT * FROM users WHERE id = ?", arguments: [userID])
    }
  }

  public func recordLogin(userID: Int64, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE id = ?", arguments: [time, userID])
    }
  }

  /// Whether any user or unrevoked API token exists (a server may bind beyond loopback only then).
  public func hasCredentials(at time: Int64) throws -> Bool {
    try read { db in
      try Int.fetchOne(
        db,
        sql: """
          SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM api_tokens
            WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?))
          """, arguments: [time]) ?? 0 > 0
    }
  }

  // MARK: Refresh tokens

  public func insertRefreshToken(_ token: RefreshTokenRecord) throws {
    try write { db in
      try db.execute(
        sql: "INSERT INTO refresh_tokens (id, family, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        arguments: [token.id, token.family, token.userID, token.tokenHash, token.createdAt, token.expiresAt])
    }
  }

  public func refreshToken(id: String) throws -> RefreshTokenRecord? {
    try read { try RefreshTokenRecord.fetchOne($0, sql: "SELECT * FROM refresh_tokens WHERE id = ?", arguments: [id]) }
  }

  /// Marks `id` used and stores its successor, in one transaction; false when `id` was used
  /// or revoked meanwhile (a concurrent refresh with the same token).
  public func rotateRefreshToken(id: String, successor: RefreshTokenRecord, at time: Int64) throws -> Bool {
    try write { db in
      try db.execute(
        sql: "UPDATE refresh_tokens SET used_at = ? WHERE id = ? AND used_at IS NULL AND revoked_at IS NULL", arguments: [time, id])
      guard db.changesCount == 1 else { return false }
      try db.execute(
        sql: "INSERT INTO refresh_tokens (id, family, user_id, token_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        arguments: [successor.id, successor.family, successor.userID, successor.tokenHash, successor.createdAt, successor.expiresAt])
      return true
    }
  }

  /// Revokes every token of a family (logout, or a rotated token presented again).
  public func revokeRefreshFamily(_ family: String, at time: Int64) throws {
    try write { db in
      try db.execute(sql: "UPDATE refresh_tokens SET revoked_at = ? WHERE family = ? AND revoked_at IS NULL", arguments: [time, family])
    }
  }

  // MARK: API tokens

  public func insertAPIToken(_ token: APITokenRecord) throws {
    try write { db in
      if try Int.fetchOne(db, sql: "SELECT 1 FROM api_tokens WHERE name = ? AND revoked_at IS NULL", arguments: [token.name]) != nil {
        throw AuthStoreError.tokenExists(token.name)
      }
      // A revoked token's name may be used again: the old row keeps its record under its id.
      try db.execute(sql: "UPDATE api_tokens SET name = name || '#' || id WHERE name = ? AND revoked_at IS NOT NULL", arguments: [token.name])
      try db.execute(
        sql: "INSERT INTO api_tokens (id, name, token_hash, prefix, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        arguments: [token.id, token.name, token.tokenHash, token.prefix, token.scopes, token.createdAt, token.expiresAt])
    }
  }

  public func apiTokens() throws -> [APITokenRecord] {
    try read { try APITokenRecord.fetchAll($0, sql: "SELECT * FROM api_tokens ORDER BY created_at, id") }
  }

  public func apiToken(hash: String) throws -> APITokenRecord? {
    try read { try APITokenRecord.fetchOne($0, sql: "SELECT * FROM api_tokens WHERE token_hash = ?", arguments: [hash]) }
  }

  /// Revokes the unrevoked token named `name` (or whose id is `name`).
  public func revokeAPIToken(_ name: String, at time: Int64) throws -> APITokenRecord {
    try write { db in
      guard
        let token = try APITokenRecord.fetchOne(
          db, sql: "SELECT * FROM api_tokens WHERE (name = ? OR id = ?) AND revoked_at IS NULL", arguments: [name, name])
      else { throw AuthStoreError.tokenNotFound(name) }
      try db.execute(sql: "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", arguments: [time, token.id])
      var revoked = token
      revoked.revokedAt = time
      return revoked
    }
  }

  public func touchAPIToken(id: String, at time: Int64) throws {
    try write { db in try db.execute(sql: "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", arguments: [time, id]) }
  }

  // MARK: Audit log

  public func appendAudit(actor: String, action: String, target: String?, status: Int, requestID: String?, ip: String?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: "INSERT INTO audit_log (at, actor, action, target, status, request_id, ip) VALUES (?, ?, ?, ?, ?, ?, ?)",
        arguments: [time, actor, action, target, status, requestID, ip])
    }
  }

  public func auditLog(limit: Int, offset: Int) throws -> (rows: [AuditRecord], total: Int) {
    try read { db in
      (
        try AuditRecord.fetchAll(db, sql: "SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?", arguments: [limit, offset]),
        try Int.fetchOne(db, sql: "SELECT count(*) FROM audit_log") ?? 0
      )
    }
  }

  // MARK: Idempotency keys

  /// Claims `key` for a request, or returns what is stored under it. Entries older than
  /// `expireBefore` are forgotten first.
  public func claimIdempotencyKey(
    principal: String, key: String, method: String, path: String, bodyHash: String, at time: Int64, expireBefore: Int64
  ) throws -> IdempotencyRecord? {
    try write { db in
      try db.execute(sql: "DELETE FROM idempotency_keys WHERE created_at < ?", arguments: [expireBefore])
      if let row = try Row.fetchOne(db, sql: "SELECT * FROM idempotency_keys WHERE principal = ? AND key = ?", arguments: [principal, key]) {
        return IdempotencyRecord(
          method: row["method"], path: row["path"], bodyHash: row["body_hash"], status: row["status"], response: row["response"],
          contentType: row["content_type"], createdAt: row["created_at"])
      }
      try db.execute(
        sql: "INSERT INTO idempotency_keys (principal, key, method, path, body_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        arguments: [principal, key, method, path, bodyHash, time])
      return nil
    }
  }

  public func completeIdempotencyKey(principal: String, key: String, status: Int, response: Data, contentType: String) throws {
    try write { db in
      try db.execute(
        sql: "UPDATE idempotency_keys SET status = ?, response = ?, content_type = ? WHERE principal = ? AND key = ?",
        arguments: [status, response, contentType, principal, key])
    }
  }

  /// Forgets a claim whose request failed before it had a response worth replaying.
  public func releaseIdempotencyKey(principal: String, key: String) throws {
    try write { db in
      try db.execute(sql: "DELETE FROM idempotency_keys WHERE principal = ? AND key = ? AND status IS NULL", arguments: [principal, key])
    }
  }

  // MARK: Jobs of a server

  /// Jobs still marked running that were started by `pid` on `host` (a server that died).
  public func activeJobs(pid: Int, host: String) throws -> [JobRecord] {
    try read {
      try JobRecord.fetchAll(
        $0, sql: "SELECT * FROM jobs WHERE status IN ('queued', 'running') AND pid = ? AND host = ?", arguments: [pid, host])
    }
  }

  /// Jobs whose row changed after `since` (progress, heartbeat, status): what a stream sends.
  public func jobsChanged(since: Int64) throws -> [JobRecord] {
    try read {
      try JobRecord.fetchAll(
        $0,
        sql: """
          SELECT * FROM jobs WHERE coalesce(heartbeat_at, 0) > ?1 OR coalesce(finished_at, 0) > ?1 OR created_at > ?1
            OR coalesce(cancel_requested_at, 0) > ?1
          ORDER BY created_at
          """, arguments: [since])
    }
  }

  /// How many jobs have each status (for /metrics).
  public func jobCounts() throws -> [String: Int] {
    try read { db in
      var counts: [String: Int] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT status, count(*) AS n FROM jobs GROUP BY status") { counts[row["status"]] = row["n"] }
      return counts
    }
  }
}
