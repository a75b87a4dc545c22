import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore
import Testing

@testable import QtoolServer

@Suite(.timeLimit(.minutes(2))) struct AuthTests {
  func login(_ client: Client, _ user: String = "alice", _ password: String = "correct horse") async throws -> Answer {
    try await client.post("/api/v1/auth/login", json: #"{"username": "\#(user)", "password": "\#(password)"}"#)
  }

  @Test func loginRefreshRotatesAndReuseRevokesTheFamily() async throws {
    let fixture = try await ServerFixture.make(environment: ["QTOOL_SERVE_RATE_AUTH": "1000/min"])
    defer { fixture.cleanUp() }
    _ = try fixture.auth.addUser(username: "alice", password: "correct horse", role: .trader)
    try await fixture.withRouter { client in
      let first = try await login(client)
      #expect(first.status == 200)
      let data = first.dataObject
      #expect(data["token_type"] as? String == "bearer")
      #expect(data["expires_in"] as? Int == 900)
      #expect((data["user"] as? [String: Any])?["username"] as? String == "alice")
      let access = try #require(data["access_token"] as? String)
      let refresh = try #require(data["refresh_token"] as? String)
      let me = try await client.get("/api/v1/auth/me", token: access).dataObject
      #expect(me["name"] as? String == "alice")
      #expect(me["kind"] as? String == "user")

      let rotated = try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "\#(refresh)"}"#)
      #expect(rotated.status == 200)
      let next = try #require(rotated.dataObject["refresh_token"] as? String)
      #expect(next != refresh)
      // The spent token presented again: refused, and the whole session with it.
      let reused = try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "\#(refresh)"}"#)
      #expect(reused.status == 401)
      #expect(reused.errorCode == "refresh_token_reused")
      let afterReuse = try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "\#(next)"}"#)
      #expect(afterReuse.status == 401)
      #expect(afterReuse.errorCode == "token_revoked")

      // Logout ends a session; another login's session is unaffected.
      let second = try await login(client).dataObject["refresh_token"] as? String ?? ""
      let third = try await login(client).dataObject["refresh_token"] as? String ?? ""
      #expect(try await client.post("/api/v1/auth/logout", json: #"{"refresh_token": "\#(second)"}"#).status == 200)
      #expect(try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "\#(second)"}"#).status == 401)
      #expect(try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "\#(third)"}"#).status == 200)
      #expect(try await client.post("/api/v1/auth/refresh", json: #"{"refresh_token": "rt_nothing.here"}"#).errorCode == "invalid_refresh_token")
    }
  }

  @Test func expiredAccessTokensAreRefused() async throws {
    let clock = ManualClock(1_800_000_000_000)
    let fixture = try await ServerFixture.make(clock: clock, data: false)
    defer { fixture.cleanUp() }
    _ = try fixture.auth.addUser(username: "alice", password: "correct horse", role: .admin)
    try await fixture.withRouter { client in
      let access = try #require(try await login(client).dataObject["access_token"] as? String)
      #expect(try await client.get("/api/v1/auth/me", token: access).status == 200)
      clock.advance(by: 901_000)
      let expired = try await client.get("/api/v1/auth/me", token: access)
      #expect(expired.status == 401)
      #expect(expired.errorCode == "token_expired")
      // A token signed with another key is refused.
      let forged = access.split(separator: ".").prefix(2).joined(separator: ".") + ".c2lnbmF0dXJl"
      #expect(try await client.get("/api/v1/auth/me", token: forged).errorCode == "invalid_token")
    }
  }

  @Test func repeatedFailuresLockTheAccount() async throws {
    let clock = ManualClock(1_800_000_000_000)
    let fixture = try await ServerFixture.make(
      environment: ["QTOOL_SERVE_LOCKOUT_FAILURES": "3", "QTOOL_SERVE_LOCKOUT_SECONDS": "600", "QTOOL_SERVE_RATE_AUTH": "1000/min"], clock: clock,
      data: false)
    defer { fixture.cleanUp() }
    _ = try fixture.auth.addUser(username: "alice", password: "correct horse", role: .admin)
    try await fixture.withRouter { client in
      #expect(try await login(client, "alice", "wrong one").errorCode == "invalid_credentials")
      #expect(try await login(client, "alice", "wrong two").errorCode == "invalid_credentials")
      let locked = try await login(client, "alice", "wrong three")
      #expect(locked.status == 429)
      #expect(locked.errorCode == "account_locked")
      #expect(locked.header("Retry-After") == "600")
      // Even the right password waits for the lock to pass.
      #expect(try await login(client).errorCode == "account_locked")
      clock.advance(by: 601_000)
      #expect(try await login(client).status == 200)
      // Unknown users get the same answer as wrong passwords.
      let unknown = try await login(client, "mallory", "whatever1")
      #expect(unknown.status == 401)
      #expect(unknown.errorCode == "invalid_credentials")
    }
  }

  @Test func usersAndTokensAsOperations() async throws {
    let fixture = try await ServerFixture.make(data: false)
    defer { fixture.cleanUp() }
    let auth = fixture.auth
    #expect(throws: AuthStoreError.userExists("bob")) {
      _ = try auth.addUser(username: "bob", password: "password1", role: .viewer)
      _ = try auth.addUser(username: "bob", password: "password2", role: .viewer)
    }
    #expect(throws: OperationError.self) { _ = try auth.addUser(username: "../bob", password: "password1", role: .viewer) }
    #expect(throws: OperationError.self) { _ = try auth.addUser(username: "carol", password: "short", role: .viewer) }
    let created = try auth.createToken(name: "ci", scopes: [.backtestRead], lifetime: 86_400_000)
    #expect(created.token.hasPrefix("qt_"))
    #expect(created.info.prefix == String(created.token.prefix(10)))
    // Only a hash is stored.
    let stored = try fixture.database.apiTokens()
    #expect(!stored.contains { $0.tokenHash == created.token || $0.tokenHash.contains(created.token) })
    #expect(throws: AuthStoreError.tokenExists("ci")) { _ = try auth.createToken(name: "ci", scopes: [.admin], lifetime: nil) }
    _ = try auth.revokeToken("ci")
    _ = try auth.createToken(name: "ci", scopes: [.admin], lifetime: nil)
    #expect(try auth.tokens().map(\.status).sorted() == ["active", "revoked"])
    #expect(try Scope.parseList("backtest:*,jobs:read") == [.backtestCreate, .backtestDelete, .backtestRead, .jobsRead])
    #expect(throws: ServerError.self) { _ = try Scope.parseList("backtest:raed") }
    #expect(try AuthOperations.parseLifetime("90d") == 90 * 86_400_000)
    #expect(try AuthOperations.parseLifetime("never") == nil)
    #expect(throws: OperationError.self) { _ = try AuthOperations.parseLifetime("soon") }
  }
}
