import Foundation
import QtoolTestSupport
import Synchronization
import Testing

@testable import QtoolData

func makeFetcher(attempts: Int = 4) -> Fetcher {
  Fetcher(
    client: HTTPClient(settings: HTTPSettings(userAgent: "qtool-tests", stallTimeout: 5, totalTimeout: 30)),
    policy: RetryPolicy(maxAttempts: attempts, baseDelay: 0.05, maxDelay: 0.2))
}

func fetchOne(_ fetcher: Fetcher, _ url: String) -> Result<Fetched, FetchError> {
  var outcome: Result<Fetched, FetchError>?
  fetcher.fetch([(0, HTTPRequest(url: url))], concurrency: 1) { _, result in outcome = result }
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
}
