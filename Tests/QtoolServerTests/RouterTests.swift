import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore
import Testing

@testable import QtoolServer

/// The conventions every route follows, through the routes without a socket.
@Suite(.timeLimit(.minutes(2))) struct RouterTests {
  @Test func envelopeAndRequestID() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    try await fixture.withRouter { client in
      let health = try await client.get("/healthz", headers: ["X-Request-ID": "trace-42"])
      #expect(health.status == 200)
      #expect(health.header("X-Request-ID") == "trace-42")
      #expect(health.object["success"] as? Bool == true)
      #expect(health.object["code"] as? Int == 200)
      #expect(health.object["request_id"] as? String == "trace-42")
      #expect((health.object["timestamp"] as? String)?.hasSuffix("Z") == true)
      #expect(health.dataObject["status"] as? String == "ok")
      // Generated when not given, and never a header's garbage echoed back.
      let generated = try await client.get("/healthz", headers: ["X-Request-ID": String(repeating: "x", count: 300)])
      #expect(generated.header("X-Request-ID")?.hasPrefix("req_") == true)
      #expect(try await client.get("/readyz").dataObject["status"] as? String == "ready")
      #expect(try await client.get("/api/v1/info").dataObject["engine_version"] as? String == BacktestOperations.engineVersion)
    }
  }

  @Test func listsArePaged() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    for name in ["a1", "a2", "a3", "a4"] {
      _ = try StrategyOperations(OperationContext(database: fixture.database)).register(
        name: name, path: nil, text: smaSpecText.replacingOccurrences(of: "goog-sma", with: name))
    }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let page = try await client.get("/api/v1/strategies?page=2&size=2", token: token)
      #expect(page.status == 200)
      let data = page.dataObject
      #expect(data["total"] as? Int == 5)
      #expect(data["page"] as? Int == 2)
      #expect(data["size"] as? Int == 2)
      #expect(data["pages"] as? Int == 3)
      #expect((data["items"] as? [[String: Any]])?.map { $0["strategy"] as? String } == ["a3", "a4"])
      let beyond = try await client.get("/api/v1/strategies?page=9&size=2", token: token)
      #expect((beyond.dataObject["items"] as? [Any])?.isEmpty == true)
      let bad = try await client.get("/api/v1/strategies?size=0", token: token)
      #expect(bad.status == 400)
      #expect(bad.errorCode == "invalid_parameter")
      #expect((bad.error["details"] as? [String: Any])?["field"] as? String == "size")
    }
  }

  @Test func errorsCarryTheCLICodesAndTheirStatus() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let missing = try await client.get("/api/v1/data/datasets/NOPE-1d", token: token)
      #expect(missing.status == 404)
      #expect(missing.object["success"] as? Bool == false)
      #expect(missing.errorCode == "dataset_not_found")
      #expect(missing.error["type"] as? String == "not_found")
      #expect(missing.object["code"] as? Int == 404)
      // Hints name request fields, never command-line flags.
      let gaps = try await client.post("/api/v1/backtests?wait=true", token: token, json: #"{"strategy": "nope"}"#)
      #expect(gaps.status == 404)
      #expect(gaps.errorCode == "strategy_not_found")
      let run = try await client.get("/api/v1/backtests/rnothere", token: token)
      #expect(run.status == 404)
      #expect(run.errorCode == "run_not_found")
      let job = try await client.get("/api/v1/jobs/jnothere", token: token)
      #expect(job.errorCode == "job_not_found")
      let route = try await client.get("/api/v1/nothing", token: token)
      #expect(route.status == 404)
      #expect(route.errorCode == "route_not_found")
      let method = try await client.request(.patch, "/api/v1/jobs", token: token, json: "{}")
      #expect(method.status == 405)
      #expect(method.header("Allow") == "GET")
      let backtest = try await client.post(
        "/api/v1/backtests?wait=true", token: token, json: #"{"strategy": "goog-sma", "from": "1990-01-01", "to": "1990-02-01"}"#)
      #expect(backtest.status == 404)
      let hint = try #require(backtest.error["hint"] as? String)
      #expect(!hint.contains("--"), "a hint names fields, not flags: \(hint)")
      #expect(hint.contains("from"))
    }
  }

  @Test func malformedBodiesNameTheField() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let broken = try await client.post("/api/v1/backtests", token: token, json: #"{"strategy": "goog-sma", "#)
      #expect(broken.status == 400)
      #expect(broken.errorCode == "malformed_body")
      let wrongType = try await client.post("/api/v1/backtests", token: token, json: #"{"strategy": "goog-sma", "capital": "lots"}"#)
      #expect(wrongType.status == 400)
      #expect((wrongType.error["details"] as? [String: Any])?["field"] as? String == "capital")
      #expect(wrongType.error["message"] as? String == "capital: expected a number, found a string", "no Swift type names")
      let arrayInstead = try await client.post("/api/v1/backtests", token: token, json: #"{"strategy": "goog-sma", "params": {"fast": [1]}}"#)
      #expect(arrayInstead.error["message"] as? String == "params.fast: expected a number, found an array")
      let missing = try await client.post("/api/v1/backtests/grid", token: token, json: #"{"strategy": "goog-sma"}"#)
      #expect(missing.status == 400)
      #expect((missing.error["details"] as? [String: Any])?["field"] as? String == "axes")
      let nested = try await client.post(
        "/api/v1/backtests/grid", token: token, json: #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": ["x"]}]}"#)
      #expect((nested.error["details"] as? [String: Any])?["field"] as? String == "axes[0].values[0]")
      let empty = try await client.request(.post, "/api/v1/backtests", token: token)
      #expect(empty.status == 400)
      #expect(empty.errorCode == "missing_body")
    }
  }

  @Test func ruleErrorsAre422WithLineAndColumn() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    let spec = smaSpecText.replacingOccurrences(of: "entry: cross_above(sma(close, fast)", with: "entry: cross_above(smaa(close, fast)")
    let body = String(decoding: try JSONEncoder().encode(["spec": spec]), as: UTF8.self)
    try await fixture.withRouter { client in
      let answer = try await client.post("/api/v1/strategies/validate", token: token, json: body)
      #expect(answer.status == 422)
      #expect(answer.errorCode == "rule_error")
      let details = try #require(answer.error["details"] as? [String: Any])
      #expect(details["line"] as? Int == 1)
      #expect(details["column"] as? Int == 13)
    }
  }

  @Test func credentialsAndScopes() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let reader = try fixture.token("strategies:read")
    let expired = try fixture.token("*", lifetime: 1)
    let revokedName = "revoked-one"
    let revoked = try fixture.token("*", name: revokedName)
    _ = try fixture.auth.revokeToken(revokedName)
    try await Task.sleep(for: .milliseconds(5))
    try await fixture.withRouter { client in
      #expect(try await client.get("/api/v1/strategies").status == 401)
      #expect(try await client.get("/api/v1/strategies").errorCode == "unauthenticated")
      #expect(try await client.get("/api/v1/strategies", token: "qt_0000").errorCode == "invalid_token")
      #expect(try await client.get("/api/v1/strategies", token: "eyJhbGciOiJIUzI1NiJ9.e30.xx").status == 401)
      #expect(try await client.get("/api/v1/strategies", token: reader).status == 200)
      let forbidden = try await client.post("/api/v1/backtests", token: reader, json: #"{"strategy": "goog-sma"}"#)
      #expect(forbidden.status == 403)
      #expect(forbidden.errorCode == "missing_scope")
      #expect((forbidden.error["details"] as? [String: Any])?["required"] as? String == "backtest:create")
      for route in ["/api/v1/data/datasets", "/api/v1/jobs", "/api/v1/backtests", "/api/v1/admin/audit"] {
        #expect(try await client.get(route, token: reader).status == 403, "\(route)")
      }
      let old = try await client.get("/api/v1/strategies", token: expired)
      #expect(old.status == 401)
      #expect(old.errorCode == "token_expired")
      let gone = try await client.get("/api/v1/strategies", token: revoked)
      #expect(gone.status == 401)
      #expect(gone.errorCode == "token_revoked")
      // A token in the query works too (EventSource cannot send headers).
      #expect(try await client.get("/api/v1/strategies?access_token=\(reader)").status == 200)
    }
  }

  @Test func rolesGrantScopes() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    _ = try fixture.auth.addUser(username: "vera", password: "viewer-pass", role: .viewer)
    try await fixture.withRouter { client in
      let login = try await client.post("/api/v1/auth/login", json: #"{"username": "vera", "password": "viewer-pass"}"#)
      let access = try #require(login.dataObject["access_token"] as? String)
      #expect(try await client.get("/api/v1/backtests", token: access).status == 200)
      #expect(try await client.post("/api/v1/backtests", token: access, json: #"{"strategy": "goog-sma"}"#).status == 403)
      #expect(try await client.request(.delete, "/api/v1/strategies/goog-sma", token: access).status == 403)
      let me = try await client.get("/api/v1/auth/me", token: access).dataObject
      #expect(me["role"] as? String == "viewer")
      #expect((me["scopes"] as? [String])?.allSatisfy { $0.hasSuffix(":read") } == true)
    }
  }

  @Test func rateLimitsAnswer429WithRetryAfter() async throws {
    let fixture = try await ServerFixture.make(environment: ["QTOOL_SERVE_RATE_DEFAULT": "3/min", "QTOOL_SERVE_RATE_AUTH": "2/min"])
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    let other = try fixture.token()
    try await fixture.withRouter { client in
      for expected in [2, 1, 0] {
        let answer = try await client.get("/api/v1/strategies", token: token)
        #expect(answer.status == 200)
        #expect(answer.header("RateLimit-Limit") == "3")
        #expect(answer.header("RateLimit-Remaining") == String(expected))
      }
      let limited = try await client.get("/api/v1/strategies", token: token)
      #expect(limited.status == 429)
      #expect(limited.errorCode == "rate_limited")
      let retry = try #require(limited.header("Retry-After").flatMap(Int.init))
      #expect(retry >= 1 && retry <= 60)
      // Per token: another token is not limited by the first one's use.
      #expect(try await client.get("/api/v1/strategies", token: other).status == 200)
      // Health is never limited.
      for _ in 0..<5 { #expect(try await client.get("/healthz").status == 200) }
      // The auth class has its own, harder limit.
      for _ in 0..<2 { #expect(try await client.post("/api/v1/auth/login", json: #"{"username": "x", "password": "yyyyyyyy"}"#).status == 401) }
      #expect(try await client.post("/api/v1/auth/login", json: #"{"username": "x", "password": "yyyyyyyy"}"#).status == 429)
    }
  }

  @Test func idempotencyKeys() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    let spec = String(decoding: try JSONEncoder().encode(["spec": smaSpecText.replacingOccurrences(of: "goog-sma", with: "idem")]), as: UTF8.self)
    try await fixture.withRouter { client in
      let first = try await client.post("/api/v1/strategies", token: token, json: spec, headers: ["Idempotency-Key": "k-1"])
      #expect(first.status == 201)
      let again = try await client.post("/api/v1/strategies", token: token, json: spec, headers: ["Idempotency-Key": "k-1"])
      #expect(again.status == 201, "the stored answer, not 409 for an existing strategy")
      #expect(again.body == first.body)
      #expect(again.header("Idempotent-Replayed") == "true")
      let other = try await client.post(
        "/api/v1/strategies", token: token, json: #"{"spec": "name: x"}"#, headers: ["Idempotency-Key": "k-1"])
      #expect(other.status == 422)
      #expect(other.errorCode == "idempotency_key_reused")
      // Without the key the same request is a conflict: the strategy exists.
      #expect(try await client.post("/api/v1/strategies", token: token, json: spec).status == 409)
      // Keys are per principal.
      let second = try fixture.token()
      #expect(try await client.post("/api/v1/strategies", token: second, json: spec, headers: ["Idempotency-Key": "k-1"]).status == 409)
    }
    // A key whose first request is still being answered.
    let held = try fixture.token("*", name: "holder")
    let body = Data(#"{"spec": "name: y"}"#.utf8)
    _ = try fixture.database.claimIdempotencyKey(
      principal: "token:holder", key: "busy", method: "POST", path: "/api/v1/strategies",
      bodyHash: APIService.requestHash(method: "POST", path: "/api/v1/strategies", query: [:], body: body), at: fixture.clock.now(),
      expireBefore: 0)
    try await fixture.withRouter { client in
      let busy = try await client.request(.post, "/api/v1/strategies", token: held, body: body, headers: ["Idempotency-Key": "busy"])
      #expect(busy.status == 409)
      #expect(busy.errorCode == "idempotency_key_in_flight")
      #expect(busy.header("Retry-After") == "1")
    }
  }

  @Test func colonActionsAndLiteralRoutes() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let clone = try await client.post("/api/v1/strategies/goog-sma:clone", token: token, json: #"{"name": "goog-copy"}"#)
      #expect(clone.status == 201)
      #expect(clone.dataObject["strategy"] as? String == "goog-copy", "\(clone.text)")
      #expect(clone.header("Location") == "/api/v1/strategies/goog-copy")
      let copy = try await client.get("/api/v1/strategies/goog-copy", token: token).dataObject
      #expect((copy["spec"] as? [String: Any])?["name"] as? String == "goog-copy")
      #expect(try await client.post("/api/v1/strategies/goog-sma:explode", token: token).status == 404)
      let started = try await client.post("/api/v1/backtests", token: token, json: #"{"strategy": "goog-sma"}"#)
      #expect(started.status == 202)
      let id = try #require(started.dataObject["id"] as? String)
      _ = try await client.waitForJob(id, token: token)
      let cancel = try await client.post("/api/v1/jobs/\(id):cancel", token: token)
      #expect(cancel.status == 200)
      #expect(cancel.dataObject["status"] as? String == "completed")
    }
  }

  @Test func namesNeverReachTheFileSystem() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      for path in ["/api/v1/data/datasets/..%2F..%2Fetc%2Fpasswd", "/api/v1/strategies/..%2Fqtool.db", "/api/v1/data/datasets/%2Fetc%2Fpasswd/export"] {
        let answer = try await client.get(path, token: token)
        #expect(answer.status == 400, "\(path): \(answer.text)")
        #expect(answer.errorCode == "invalid_name")
      }
      let download = try await client.post(
        "/api/v1/data/downloads", token: token,
        json: #"{"source": "csv", "symbols": ["X"], "timeframe": "1d", "from": "2024-01-01", "url": "/etc/passwd"}"#)
      #expect(download.status == 400)
      #expect(download.errorCode == "file_access_refused")
      let file = try await client.post(
        "/api/v1/data/downloads", token: token,
        json: #"{"source": "csv", "symbols": ["X"], "timeframe": "1d", "from": "2024-01-01", "url": "file:///etc/passwd"}"#)
      #expect(file.errorCode == "file_access_refused")
      // Spec origins are labels, not paths: nothing is read.
      let inline = try await client.post("/api/v1/strategies/validate", token: token, json: #"{"spec": "name: x", "origin": "/etc/passwd"}"#)
      #expect(inline.status == 400 || inline.status == 422)
      #expect(!inline.text.contains("root:"))
    }
  }

  @Test func oversizedBodiesAre413() async throws {
    let fixture = try await ServerFixture.make(environment: ["QTOOL_SERVE_MAX_BODY_MIB": "1"])
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let big = Data(repeating: UInt8(ascii: "a"), count: 1 << 20 + 10)
      let answer = try await client.request(.post, "/api/v1/data/import?symbol=X&timeframe=1d", token: token, body: big)
      #expect(answer.status == 413)
      #expect(answer.errorCode == "body_too_large")
    }
  }

  @Test func writesGoToTheAuditLog() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token("*", name: "auditor")
    try await fixture.withRouter { client in
      _ = try await client.request(.delete, "/api/v1/strategies/goog-sma", token: token)
      _ = try await client.get("/api/v1/strategies", token: token)
      let audit = try await client.get("/api/v1/admin/audit", token: token).dataObject
      let items = try #require(audit["items"] as? [[String: Any]])
      #expect(items.count == 1, "reads are not audited")
      #expect(items.first?["actor"] as? String == "token:auditor")
      #expect(items.first?["action"] as? String == "DELETE /api/v1/strategies/{name}")
      #expect(items.first?["status"] as? Int == 200)
    }
  }

  @Test func tokensInQueriesAreRedactedFromLogs() {
    let line = APIService.redacted(path: "/api/v1/stream/jobs", query: "access_token=qt_secret&x=1&token=abc")
    #expect(line == "/api/v1/stream/jobs?access_token=REDACTED&x=1&token=REDACTED")
    #expect(!line.contains("qt_secret"))
  }
}
