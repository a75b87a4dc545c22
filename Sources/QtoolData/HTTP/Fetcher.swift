import Foundation
import QtoolCore

/// Why a fetch failed, after retries.
public enum FetchError: QtoolError, Equatable {
  /// A final HTTP status (404, 400, …) or one still failing after every retry.
  case status(url: String, status: Int, body: String, attempts: Int)
  case transport(url: String, message: String, attempts: Int)
  /// HTTP 418 from Binance: the IP is banned; nothing more is requested.
  case banned(url: String, retryAfter: Int?)
  /// Not attempted because an earlier response stopped the download.
  case stopped(url: String)
  case invalidResponse(url: String, reason: String)
  case checksumMismatch(url: String, expected: String, actual: String)

  public var category: ErrorCategory {
    if case .status(_, 429, _, _) = self { return .rateLimited }
    return isRetryable ? .temporary : .unavailable
  }

  public var code: String {
    switch self {
    case .status(_, 429, _, _): return "rate_limited"
    case .status: return "http_status"
    case .transport: return "transport_error"
    case .banned: return "source_banned"
    case .stopped: return "not_requested"
    case .invalidResponse: return "invalid_response"
    case .checksumMismatch: return "checksum_mismatch"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .status(let url, let status, _, let attempts): return ["url": .string(url), "status": JSONValue(status), "attempts": JSONValue(attempts)]
    case .transport(let url, _, let attempts): return ["url": .string(url), "attempts": JSONValue(attempts)]
    case .banned(let url, let retryAfter): return ["url": .string(url), "retry_after": retryAfter.map { JSONValue($0) } ?? .null]
    case .stopped(let url), .invalidResponse(let url, _): return ["url": .string(url)]
    case .checksumMismatch(let url, let expected, let actual): return ["url": .string(url), "expected": .string(expected), "actual": .string(actual)]
    }
  }

  /// Requests made for this URL.
  public var attempts: Int {
    switch self {
    case .status(_, _, _, let attempts), .transport(_, _, let attempts): return attempts
    case .banned, .invalidResponse, .checksumMismatch: return 1
    case .stopped: return 0
    }
  }

  /// True when running the same command later may well succeed.
  public var isRetryable: Bool {
    switch self {
    case .status(_, let status, _, _): return status == 429 || status == 408 || status >= 500
    case .transport, .checksumMismatch: return true
    case .banned, .stopped, .invalidResponse: return false
    }
  }

  public var message: String {
    switch self {
    case .status(let url, let status, let body, let attempts):
      let snippet = body.isEmpty ? "" : ": " + String(body.prefix(160)).replacingOccurrences(of: "\n", with: " ")
      return "\(url) answered HTTP \(status)\(snippet)" + (attempts > 1 ? " (after \(attempts) attempts)" : "")
    case .transport(let url, let message, let attempts):
      return "\(url): \(message)" + (attempts > 1 ? " (after \(attempts) attempts)" : "")
    case .banned(let url, let retryAfter):
      return "\(url) answered HTTP 418: this IP is banned by the source"
        + (retryAfter.map { " for \($0) s" } ?? "") + "; stop all downloads from it until then"
    case .stopped(let url):
      return "\(url) was not requested: an earlier response stopped the download"
    case .invalidResponse(let url, let reason):
      return "\(url): \(reason)"
    case .checksumMismatch(let url, let expected, let actual):
      return "\(url): SHA-256 \(actual) does not match its .CHECKSUM (\(expected)); the file is damaged"
    }
  }
}

/// How often and how patiently to retry.
public struct RetryPolicy: Sendable {
  public var maxAttempts: Int
  public var baseDelay: Double
  public var maxDelay: Double

  public init(maxAttempts: Int = 5, baseDelay: Double = 0.5, maxDelay: Double = 30) {
    self.maxAttempts = maxAttempts
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
  }

  /// Exponential back-off with full jitter (AWS's recommendation): uniform in [0, base·2ⁿ].
  func delay(afterAttempt attempt: Int) -> Double {
    let ceiling = min(maxDelay, baseDelay * pow(2, Double(attempt - 1)))
    return Double.random(in: (ceiling / 2)...ceiling)
  }
}

/// A successful response with what it took to get it.
public struct Fetched: Sendable {
  public var response: HTTPResponse
  public var attempts: Int
}

/// Fetches many URLs concurrently with retries: 5xx, 408 and transport failures back off
/// exponentially with jitter; 429 waits for Retry-After; 418 stops everything; an interrupted
/// body resumes with a Range request. Results arrive on the calling thread as they complete.
public final class Fetcher {
  public let client: HTTPClient
  public let policy: RetryPolicy
  /// Called with every response; returns seconds to pause all requests (rate-limit pacing).
  public var pacing: ((HTTPResponse) -> Double?)?
  /// Checked between transfers and while they run: once cancelled, transfers in flight are
  /// dropped and nothing more is requested or completed.
  public var cancellation: CancellationToken = .never
  /// The time back-offs and pauses are measured on.
  public var wallClock: any WallClock = SystemClock()

  public init(client: HTTPClient, policy: RetryPolicy = RetryPolicy()) {
    self.client = client
    self.policy = policy
  }

  private struct Pending {
    var tag: Int
    var request: HTTPRequest
    var attempts = 0
    var notBefore = 0.0
    var partial = Data()
  }

  public func fetch(
    _ jobs: [(tag: Int, request: HTTPRequest)], concurrency: Int, completion: (Int, Result<Fetched, FetchError>) -> Void
  ) {
    var queue = jobs.map { Pending(tag: $0.tag, request: $0.request) }
    var inFlight: [Int: Pending] = [:]
    var pausedUntil = 0.0
    var stopped = false
    let wallClock = self.wallClock
    let clock = { Double(wallClock.now()) / 1000 }

    let cancellation = self.cancellation
    let feed = HTTPClient.Feed(
      next: {
        let now = clock()
        guard !stopped, !cancellation.isCancelled, now >= pausedUntil, let index = queue.firstIndex(where: { $0.notBefore <= now }) else { return nil }
        var job = queue.remove(at: index)
        job.attempts += 1
        var request = job.request
        if !job.partial.isEmpty { request.rangeStart = (job.request.rangeStart ?? 0) + Int64(job.partial.count) }
        inFlight[job.tag] = job
        return (job.tag, request)
      },
      isFinished: { queue.isEmpty || stopped || cancellation.isCancelled }, shouldAbort: { cancellation.isCancelled })

    client.run(feed: feed, concurrency: concurrency) { tag, result in
      guard var job = inFlight.removeValue(forKey: tag) else { return }
      let url = job.request.url
      func retry(after delay: Double) -> Bool {
        guard job.attempts < policy.maxAttempts else { return false }
        job.notBefore = clock() + delay
        queue.append(job)
        return true
      }
      switch result {
      case .failure(let error):
        job.partial.append(error.partialBody)
        if !retry(after: policy.delay(afterAttempt: job.attempts)) {
          completion(tag, .failure(.transport(url: url, message: error.message, attempts: job.attempts)))
        }
      case .success(let response):
        if let pause = pacing?(response), pause > 0 { pausedUntil = max(pausedUntil, clock() + pause) }
        let retryAfter = response.headers["retry-after"].flatMap { Double($0) }
        switch response.status {
        case 200..<300:
          var combined = response
          if response.status == 206, !job.partial.isEmpty {
            combined.body = job.partial + response.body
          }
          completion(tag, .success(Fetched(response: combined, attempts: job.attempts)))
        case 418:
          stopped = true
          completion(tag, .failure(.banned(url: url, retryAfter: retryAfter.map { Int($0) })))
          for pending in queue { completion(pending.tag, .failure(.stopped(url: pending.request.url))) }
          queue.removeAll()
        case 429:
          let wait = retryAfter ?? policy.delay(afterAttempt: job.attempts)
          pausedUntil = max(pausedUntil, clock() + wait)
          job.partial = Data()
          if !retry(after: wait) {
            completion(tag, .failure(.status(url: url, status: 429, body: Self.text(response.body), attempts: job.attempts)))
          }
        case 408, 500...:
          job.partial = Data()
          if !retry(after: retryAfter ?? policy.delay(afterAttempt: job.attempts)) {
            completion(tag, .failure(.status(url: url, status: response.status, body: Self.text(response.body), attempts: job.attempts)))
          }
        default:
          completion(tag, .failure(.status(url: url, status: response.status, body: Self.text(response.body), attempts: job.attempts)))
        }
      }
    }
    // Jobs still queued when the loop ends were stopped by a 418 (or the operation was cancelled).
    guard !cancellation.isCancelled else { return }
    for pending in queue { completion(pending.tag, .failure(.stopped(url: pending.request.url))) }
  }

  static func text(_ body: Data) -> String {
    String(decoding: body.prefix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
