import Foundation
import QtoolTestSupport
import Synchronization
import Testing

@testable import QtoolData

func makeFetcher(attempts: Int = 4, settings: HTTPSettings? = nil, retryAfterCap: Double = 120) -> Fetcher {
  Fetcher(
    client: HTTPClient(settings: settings ?? HTTPSettings(userAgent: "qtool-tests", stallTimeout: 5, totalTimeout: 30)),
    policy: RetryPolicy(maxAttempts: attempts, baseDelay: 0.05, maxDelay: 0.2, retryAfterCap: retryAfterCap))
}

func fetchOne(_ fetcher: Fetcher, _ url: String, maxBytes: Int? = nil) -> Result<Fetched, FetchError> {
  var outcome: Result<Fetched, FetchError>?
  fetcher.fetch([(0, HTTPRequest(url: url, maxBytes: maxBytes))], concurrency: 1) { _, result in outcome = result }
  return outcome!
}

@Suite struct FetcherTests {
  @Test func serverErrorThenSuccess() throws {
    let server = try LoopbackServer()
    server.on("/flaky") { _, hit in hit < 3 ? .text("busy", status: 500) : .text("ok") }
    let result = fetchOne(makeFetcher(), server.baseURL + "/flaky")
    let fetched = try result.get()
    #expect(String(decoding: fetched.response.body, as: UTF8.self) == "ok")
    #expect(fetched.attempts == 3)
  }

  @Test func rateLimitWaitsForRetryAfter() throws {
    let server = try LoopbackServer()
    server.on("/limited") { _, hit in hit == 1 ? .text("slow down", status: 429, headers: ["Retry-After": "1"]) : .text("ok") }
    let started = Date()
    let fetched = try fetchOne(makeFetcher(), server.baseURL + "/limited").get()
    #expect(fetched.attempts == 2)
    #expect(Date().timeIntervalSince(started) >= 0.95, "Retry-After: 1 must be honoured")
  }

  @Test func bannedStopsEverything() throws {
    let server = try LoopbackServer()
    server.on("/banned") { _, _ in .text("{\"code\":-1003,\"msg\":\"banned\"}", status: 418, headers: ["Retry-After": "120"]) }
    server.on("/other") { _, _ in .text("ok") }
    var results: [Int: Result<Fetched, FetchError>] = [:]
    let jobs = [(0, HTTPRequest(url: server.baseURL + "/banned"))] + (1...5).map { ($0, HTTPRequest(url: server.baseURL + "/other/\($0)")) }
    makeFetcher().fetch(jobs, concurrency: 1) { results[$0] = $1 }
    guard case .failure(.banned(_, let retryAfter)) = results[0] else {
      Issue.record("expected banned, got \(String(describing: results[0]))")
      return
    }
    #expect(retryAfter == 120)
    #expect(results.count == 6)
    #expect((1...5).allSatisfy { if case .failure(.stopped) = results[$0] { return true } else { return false } })
    #expect(server.requests.count == 1, "nothing is requested after a 418")
  }

  @Test func cutBodyResumesWithRange() throws {
    let data = Data((0..<200_000).map { UInt8($0 % 251) })
    let server = try LoopbackServer()
    server.on("/archive.zip") { request, hit in
      if hit == 1 { return LoopbackServer.Reply(body: data, cutAfter: 70_000) }
      guard let range = request.headers["range"], let start = Int(range.dropFirst(6).dropLast()) else { return LoopbackServer.Reply(body: data) }
      return LoopbackServer.Reply(
        status: 206, headers: ["Content-Range": "bytes \(start)-\(data.count - 1)/\(data.count)"], body: data.subdata(in: start..<data.count))
    }
    let fetched = try fetchOne(makeFetcher(), server.baseURL + "/archive.zip").get()
    #expect(fetched.response.body == data)
    #expect(fetched.attempts == 2)
    #expect(server.requests.last?.headers["range"] == "bytes=70000-")
  }

  @Test func notFoundIsFinalAtOnce() throws {
    let server = try LoopbackServer()
    guard case .failure(.status(_, 404, _, let attempts)) = fetchOne(makeFetcher(), server.baseURL + "/missing") else {
      Issue.record("expected 404")
      return
    }
    #expect(attempts == 1)
  }

  @Test func retriesRunOut() throws {
    let server = try LoopbackServer()
    server.on("/down") { _, _ in .text("maintenance", status: 503) }
    let result = fetchOne(makeFetcher(attempts: 3), server.baseURL + "/down")
    guard case .failure(let error) = result else {
      Issue.record("expected failure")
      return
    }
    #expect(error == .status(url: server.baseURL + "/down", status: 503, body: "maintenance", attempts: 3))
    #expect(error.isRetryable)
    #expect(error.exitStatus == .temporaryFailure)
  }

  @Test func connectionRefusedIsATransportError() throws {
    let server = try LoopbackServer()
    let url = server.baseURL + "/x"
    server.stop()
    guard case .failure(.transport(_, _, let attempts)) = fetchOne(makeFetcher(attempts: 2), url) else {
      Issue.record("expected a transport error")
      return
    }
    #expect(attempts == 2)
  }

  /// How many requests a server held at once, at most.
  final class Gauge: Sendable {
    private let state = Mutex((active: 0, peak: 0))
    func enter() {
      state.withLock {
        $0.active += 1
        $0.peak = max($0.peak, $0.active)
      }
    }
    func leave() { state.withLock { $0.active -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
  }

  /// Serves `/slow` after `delay`, measuring how many requests overlap.
  func slowServer(delay: Double) throws -> (LoopbackServer, Gauge) {
    let server = try LoopbackServer()
    let gauge = Gauge()
    server.on("/slow") { request, _ in
      gauge.enter()
      Thread.sleep(forTimeInterval: delay)
      gauge.leave()
      return LoopbackServer.Reply(body: Data(request.target.utf8))
    }
    return (server, gauge)
  }

  @Test func manyTransfersAtOnce() throws {
    let (server, gauge) = try slowServer(delay: 0.3)
    let jobs = (0..<8).map { ($0, HTTPRequest(url: server.baseURL + "/slow/\($0)")) }
    var bodies: [Int: String] = [:]
    makeFetcher().fetch(jobs, concurrency: 8) { tag, result in
      bodies[tag] = (try? result.get()).map { String(decoding: $0.response.body, as: UTF8.self) }
    }
    #expect(gauge.peak >= 4, "transfers should overlap")
    #expect((0..<8).allSatisfy { bodies[$0] == "/slow/\($0)" })
    let (one, single) = try slowServer(delay: 0.05)
    makeFetcher().fetch((0..<4).map { ($0, HTTPRequest(url: one.baseURL + "/slow/\($0)")) }, concurrency: 1) { _, _ in }
    #expect(single.peak == 1, "--jobs 1 means one transfer at a time")
  }

  // MARK: Never hang, never hold unbounded memory (download-trust 12–14, 16)

  @Test func retryAfterBeyondTheCapFailsAtOnceAsTemporary() throws {
    let server = try LoopbackServer()
    server.on("/limited") { _, _ in .text("slow down", status: 429, headers: ["Retry-After": "86400"]) }
    server.on("/other") { _, _ in .text("ok") }
    let started = Date()
    var results: [Int: Result<Fetched, FetchError>] = [:]
    makeFetcher(retryAfterCap: 1).fetch(
      [(0, HTTPRequest(url: server.baseURL + "/limited")), (1, HTTPRequest(url: server.baseURL + "/other"))], concurrency: 1
    ) { results[$0] = $1 }
    #expect(Date().timeIntervalSince(started) < 3, "no day-long wait")
    guard case .failure(let error) = results[0], case .waitTooLong(_, 429, 86400, 1) = error else {
      Issue.record("expected waitTooLong, got \(String(describing: results[0]))")
      return
    }
    #expect(error.exitStatus == .temporaryFailure)
    #expect(error.description.contains("asked to wait 86400 s, longer than the 1 s qtool waits"))
    if case .failure(.waitTooLong) = results[1] {} else { Issue.record("the rest of the run is not requested either: \(String(describing: results[1]))") }
  }

  @Test func unparseableRetryAfterCountsAsAbsent() throws {
    #expect(Fetcher.retryAfter("inf") == nil)
    #expect(Fetcher.retryAfter("nan") == nil)
    #expect(Fetcher.retryAfter("-5") == nil)
    #expect(Fetcher.retryAfter("soon") == nil)
    #expect(Fetcher.retryAfter(" 30 ") == 30)
    let now = Date(timeIntervalSince1970: 1_700_000_000)
    #expect(Fetcher.retryAfter("Wed, 15 Nov 2023 00:13:20 GMT", now: now) == 7200)
    for value in ["inf", "nan"] {
      let server = try LoopbackServer()
      server.on("/limited") { _, hit in hit == 1 ? .text("slow down", status: 429, headers: ["Retry-After": value]) : .text("ok") }
      let started = Date()
      let fetched = try fetchOne(makeFetcher(), server.baseURL + "/limited").get()
      #expect(fetched.attempts == 2)
      #expect(Date().timeIntervalSince(started) < 2, "Retry-After: \(value) is a back-off, not forever")
    }
  }

  @Test func waitsAreAnnounced() throws {
    let server = try LoopbackServer()
    server.on("/limited") { _, hit in hit == 1 ? .text("slow down", status: 429, headers: ["Retry-After": "1"]) : .text("ok") }
    let fetcher = makeFetcher()
    var notices: [String] = []
    fetcher.notice = { notices.append($0) }
    _ = try fetchOne(fetcher, server.baseURL + "/limited").get()
    #expect(notices == ["waiting 1 s: \(server.baseURL)/limited answered HTTP 429 with Retry-After: 1"])
  }

  @Test func aTrickleIsAStall() throws {
    let server = try LoopbackServer()
    server.on("/trickle", Fault.trickle(Data(repeating: 65, count: 100), bytes: 1, interval: 0.2))
    let settings = HTTPSettings(userAgent: "qtool-tests", stallTimeout: 1, minimumSpeed: 100, totalTimeout: 30)
    let started = Date()
    let result = fetchOne(makeFetcher(attempts: 1, settings: settings), server.baseURL + "/trickle")
    #expect(Date().timeIntervalSince(started) < 4)
    guard case .failure(.transport(_, let message, _)) = result else {
      Issue.record("expected a transport failure, got \(result)")
      return
    }
    #expect(message.contains("slower than 100 bytes/s for 1 s"), "\(message)")
  }

  @Test func aFileHasADeadline() throws {
    let server = try LoopbackServer()
    server.on("/slow", Fault.trickle(Data(repeating: 65, count: 4000), bytes: 400, interval: 0.3))
    let settings = HTTPSettings(userAgent: "qtool-tests", stallTimeout: 5, minimumSpeed: 10, totalTimeout: 1)
    guard case .failure(.transport(_, let message, _)) = fetchOne(makeFetcher(attempts: 1, settings: settings), server.baseURL + "/slow") else {
      Issue.record("expected the deadline to end it")
      return
    }
    #expect(message.contains("took longer than the 1 s allowed per file"), "\(message)")
  }

  @Test func aResponseLargerThanAllowedIsAbandonedAsItArrives() throws {
    let server = try LoopbackServer()
    server.on("/known", Fault.oversized(bytes: 3 << 20))
    server.on("/unknown", Fault.oversized(bytes: 3 << 20, closeDelimited: true))
    for path in ["/known", "/unknown"] {
      let result = fetchOne(makeFetcher(), server.baseURL + path, maxBytes: 1 << 20)
      guard case .failure(.refused(_, let message)) = result else {
        Issue.record("expected refused for \(path), got \(result)")
        continue
      }
      #expect(message.contains("larger than the 1 MiB allowed for one response"), "\(message)")
      #expect(server.requests.filter { $0.path == path }.count == 1, "not retried: it would be as large again")
    }
  }

  @Test func redirectsOffHTTPAndLoopsArePermanent() throws {
    let server = try LoopbackServer()
    server.on("/to-file", Fault.redirect(to: "file:///etc/passwd"))
    server.on("/to-gopher", Fault.redirect(to: "gopher://127.0.0.1:70/x"))
    server.on("/loop", Fault.redirect(to: "/loop"))
    server.on("/ok", Fault.redirect(to: "/final"))
    server.on("/final") { _, _ in .text("arrived") }
    for (path, text) in [
      ("/to-file", "redirected to file:///etc/passwd, which is not an http or https URL; not followed"),
      ("/to-gopher", "redirected to gopher://127.0.0.1:70/x, which is not an http or https URL"),
      ("/loop", "more than 5 redirects (the last to /loop); a redirect loop"),
    ] {
      let result = fetchOne(makeFetcher(), server.baseURL + path)
      guard case .failure(let error) = result, case .refused(_, let message) = error else {
        Issue.record("expected refused for \(path), got \(result)")
        continue
      }
      #expect(message.contains(text), "\(message)")
      #expect(error.exitStatus == .unavailable)
    }
    #expect(server.requests.filter { $0.path == "/to-file" }.count == 1, "a permanent failure is not retried")
    #expect(String(decoding: try fetchOne(makeFetcher(), server.baseURL + "/ok").get().response.body, as: UTF8.self) == "arrived")
  }

  @Test func gzipIsDecodedAndAStreamCutShortIsDamaged() throws {
    let body = Data(String(repeating: "Date,Open,High,Low,Close,Volume\n", count: 500).utf8)
    let server = try LoopbackServer()
    server.on("/good", Fault.gzipped(body))
    server.on("/cut", Fault.corruptGzip(body))
    #expect(try fetchOne(makeFetcher(), server.baseURL + "/good").get().response.body == body)
    #expect(server.requests[0].headers["accept-encoding"] == "gzip")
    guard case .failure(.transport(_, let message, let attempts)) = fetchOne(makeFetcher(attempts: 2), server.baseURL + "/cut") else {
      Issue.record("a gzip stream cut short must fail")
      return
    }
    #expect(message.hasPrefix("the response is damaged: its gzip content cannot be decompressed"), "\(message)")
    #expect(attempts == 2)
  }

  @Test func aBodyCutShortWithoutContentLengthIsFetchedAgain() throws {
    let csv = Data("Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,83103341\n".utf8)
    let server = try LoopbackServer()
    server.on("/stooq", Fault.cutCloseDelimited(csv, dropLast: 4, times: 1))
    let fetcher = makeFetcher()
    fetcher.validate = { _, response in response.body.last == 10 ? nil : "no line break at the end" }
    let fetched = try fetchOne(fetcher, server.baseURL + "/stooq").get()
    #expect(fetched.response.body == csv)
    #expect(fetched.attempts == 2)
    let always = try LoopbackServer()
    always.on("/stooq", Fault.cutCloseDelimited(csv, dropLast: 4))
    fetcher.validate = { _, response in response.body.last == 10 ? nil : "no line break at the end" }
    guard case .failure(let error) = fetchOne(fetcher, always.baseURL + "/stooq"), case .incomplete(_, _, 4) = error else {
      Issue.record("a body that is always cut short fails after the retries")
      return
    }
    #expect(error.exitStatus == .temporaryFailure)
  }
}
