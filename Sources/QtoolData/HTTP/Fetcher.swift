import Foundation
import QtoolCore

/// Why a fetch failed, after retries.
public enum FetchError: QtoolError, Equatable {
  /// A final HTTP status (404, 400, …) or one still failing after every retry.
  case status(url: String, status: Int, body: String, attempts: Int)
  case transport(url: String, message: String, attempts: Int)
  /// A transfer that asking again cannot fix: a redirect off http(s), a redirect loop, an
  /// answer larger than allowed.
  case refused(url: String, message: String)
  /// HTTP 418 from Binance: the IP is banned; nothing more is requested.
  case banned(url: String, retryAfter: Int?)
  /// The source asked to wait longer than qtool waits (`download.retry_after_cap`).
  case waitTooLong(url: String, status: Int, seconds: Double, cap: Double)
  /// Not attempted because an earlier response stopped the download.
  case stopped(url: String)
  /// A body that does not end where its format ends (a close-delimited body cut short).
  case incomplete(url: String, reason: String, attempts: Int)
  case invalidResponse(url: String, reason: String)
  /// The source said no for now (Stooq's daily hits limit): run again later.
  case temporarilyRefused(url: String, reason: String)
  case checksumMismatch(url: String, expected: String, actual: String, arrived: String)
  /// An archive whose `.CHECKSUM` could not be fetched: not stored unverified.
  case checksumUnavailable(url: String, checksumURL: String, reason: String)

  public var category: ErrorCategory {
    if case .status(_, 429, _, _) = self { return .rateLimited }
    return isRetryable ? .temporary : .unavailable
  }

  public var code: String {
    switch self {
    case .status(_, 429, _, _): return "rate_limited"
    case .status: return "http_status"
    case .transport: return "transport_error"
    case .refused: return "transfer_refused"
    case .banned: return "source_banned"
    case .waitTooLong: return "retry_after_too_long"
    case .stopped: return "not_requested"
    case .incomplete: return "truncated_transfer"
    case .invalidResponse: return "invalid_response"
    case .temporarilyRefused: return "source_refused_for_now"
    case .checksumMismatch: return "checksum_mismatch"
    case .checksumUnavailable: return "checksum_unavailable"
    }
  }

  public var details: [String: JSONValue] {
    var details: [String: JSONValue] = ["url": .string(url), "attempts": JSONValue(attempts)]
    switch self {
    case .status(_, let status, _, _): details["status"] = JSONValue(status)
    case .banned(_, let retryAfter): details["retry_after"] = retryAfter.map { JSONValue($0) } ?? .null
    case .waitTooLong(_, let status, let seconds, let cap):
      details["status"] = JSONValue(status)
      details["retry_after"] = JSONValue(seconds)
      details["cap"] = JSONValue(cap)
    case .checksumMismatch(_, let expected, let actual, _):
      details["expected"] = .string(expected)
      details["actual"] = .string(actual)
    case .checksumUnavailable(_, let checksumURL, _): details["checksum_url"] = .string(checksumURL)
    default: break
    }
    return details
  }

  public var hint: ErrorHint? {
    switch self {
    case .checksumUnavailable: return "run again later, or store it unverified with {no_verify}"
    case .waitTooLong, .temporarilyRefused: return "run again later"
    default: return nil
    }
  }

  /// Requests made for this URL.
  public var attempts: Int {
    switch self {
    case .status(_, _, _, let attempts), .transport(_, _, let attempts), .incomplete(_, _, let attempts): return attempts
    case .banned, .invalidResponse, .checksumMismatch, .refused, .waitTooLong, .temporarilyRefused, .checksumUnavailable: return 1
    case .stopped: return 0
    }
  }

  /// True when running the same command later may well succeed.
  public var isRetryable: Bool {
    switch self {
    case .status(_, let status, _, _): return status == 429 || status == 408 || status >= 500
    case .transport, .checksumMismatch, .incomplete, .waitTooLong, .temporarilyRefused, .checksumUnavailable: return true
    case .banned, .stopped, .invalidResponse, .refused: return false
    }
  }

  public var url: String {
    switch self {
    case .status(let url, _, _, _), .transport(let url, _, _), .refused(let url, _), .banned(let url, _), .waitTooLong(let url, _, _, _),
      .stopped(let url), .incomplete(let url, _, _), .invalidResponse(let url, _), .temporarilyRefused(let url, _),
      .checksumMismatch(let url, _, _, _), .checksumUnavailable(let url, _, _):
      return url
    }
  }

  public var message: String {
    func after(_ attempts: Int) -> String { attempts > 1 ? " (after \(attempts) attempts)" : "" }
    switch self {
    case .status(let url, let status, let body, let attempts):
      let snippet = body.isEmpty ? "" : ": " + String(body.prefix(160)).replacingOccurrences(of: "\n", with: " ")
      return "\(url) answered HTTP \(status)\(snippet)" + after(attempts)
    case .transport(let url, let message, let attempts):
      return "\(url): \(message)" + after(attempts)
    case .refused(let url, let message):
      return "\(url): \(message)"
    case .banned(let url, let retryAfter):
      return "\(url) answered HTTP 418: this IP is banned by the source"
        + (retryAfter.map { " for \($0) s" } ?? "") + "; stop all downloads from it until then"
    case .waitTooLong(let url, let status, let seconds, let cap):
      return "\(url) answered HTTP \(status) and asked to wait \(Fetcher.seconds(seconds)), longer than the \(Fetcher.seconds(cap)) qtool waits "
        + "(download.retry_after_cap); nothing more was requested from it"
    case .stopped(let url):
      return "\(url) was not requested: an earlier response stopped the download"
    case .incomplete(let url, let reason, let attempts):
      return "\(url): the body ended early, \(reason); a truncated transfer" + after(attempts)
    case .invalidResponse(let url, let reason):
      return "\(url): \(reason)"
    case .temporarilyRefused(let url, let reason):
      return "\(url): \(reason)"
    case .checksumMismatch(let url, let expected, let actual, let arrived):
      return "\(url): SHA-256 \(actual) does not match its .CHECKSUM (\(expected)); what arrived was \(arrived)"
    case .checksumUnavailable(let url, let checksumURL, let reason):
      return "\(url): its checksum \(URL(string: checksumURL)?.lastPathComponent ?? checksumURL) could not be fetched (\(reason)), "
        + "so the archive was not stored unverified"
    }
  }
}

/// How often and how patiently to retry.
public struct RetryPolicy: Sendable {
  public var maxAttempts: Int
  public var baseDelay: Double
  public var maxDelay: Double
  /// The longest `Retry-After` obeyed; a longer one fails the request at once (as temporary).
  public var retryAfterCap: Double

  public init(maxAttempts: Int = 5, baseDelay: Double = 0.5, maxDelay: Double = 30, retryAfterCap: Double = 120) {
    self.maxAttempts = maxAttempts
    self.baseDelay = baseDelay
    self.maxDelay = maxDelay
    self.retryAfterCap = retryAfterCap
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
/// exponentially with jitter; 429 waits for Retry-After (up to a cap); 418 stops everything;
/// an interrupted body resumes with a Range request; a body that `validate` finds cut short
/// is fetched again. Results arrive on the calling thread as they complete.
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
  /// Called with every 2xx response; returns why its body is incomplete (then it is fetched
  /// again), or nil.
  public var validate: ((Int, HTTPResponse) -> String?)?
  /// Called with every accepted 2xx response before its completion; returns more requests to
  /// make (the next page).
  public var followUp: ((Int, HTTPResponse) -> [(tag: Int, request: HTTPRequest)])?
  /// Told what a wait is for ("waiting 30 s: … answered HTTP 429").
  public var notice: ((String) -> Void)?

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
        if !job.partial.isEmpty {
          request.rangeStart = (job.request.rangeStart ?? 0) + Int64(job.partial.count)
          if let limit = request.maxBytes { request.maxBytes = max(1, limit - job.partial.count) }
        }
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
      /// Fails this job and every queued one with `error(url)`, requesting nothing more.
      func stopAll(_ error: (String) -> FetchError) {
        stopped = true
        completion(tag, .failure(error(url)))
        for pending in queue { completion(pending.tag, .failure(error(pending.request.url))) }
        queue.removeAll()
      }
      switch result {
      case .failure(let error):
        if error.isPermanent {
          completion(tag, .failure(.refused(url: url, message: error.message)))
          return
        }
        // Only a body cut short is worth resuming; anything else starts again.
        if error.kind == .cutShort { job.partial.append(error.partialBody) } else { job.partial = Data() }
        if !retry(after: policy.delay(afterAttempt: job.attempts)) {
          completion(tag, .failure(.transport(url: url, message: error.message, attempts: job.attempts)))
        }
      case .success(let response):
        if let pause = pacing?(response), pause > 0 {
          if pausedUntil < clock() + pause, pause >= 1 { notice?("waiting \(Self.seconds(pause)) for the source's request budget to renew") }
          pausedUntil = max(pausedUntil, clock() + pause)
        }
        let retryAfter = Self.retryAfter(response.headers["retry-after"])
        switch response.status {
        case 200..<300:
          var combined = response
          if response.status == 206, !job.partial.isEmpty {
            combined.body = job.partial + response.body
          }
          if let encoding = combined.headers["content-encoding"] {
            switch ContentDecoding.decode(combined.body, encoding: encoding, limit: job.request.maxBytes ?? client.settings.maxBodyBytes) {
            case .success(let decoded):
              combined.body = decoded
              combined.headers["content-encoding"] = nil
            case .failure(.tooLarge(let limit)):
              let message = "the response decompresses to more than the \(HTTPClient.mebibytes(limit)) allowed for one response"
              completion(tag, .failure(.refused(url: url, message: message)))
              return
            case .failure(.damaged(let reason)):
              job.partial = Data()
              if !retry(after: policy.delay(afterAttempt: job.attempts)) {
                let message = HTTPClient.damagedEncoding(encoding) + " (\(reason))"
                completion(tag, .failure(.transport(url: url, message: message, attempts: job.attempts)))
              }
              return
            }
          }
          if let reason = validate?(tag, combined) {
            job.partial = Data()
            if !retry(after: policy.delay(afterAttempt: job.attempts)) {
              completion(tag, .failure(.incomplete(url: url, reason: reason, attempts: job.attempts)))
            }
            return
          }
          if let more = followUp?(tag, combined) { queue.append(contentsOf: more.map { Pending(tag: $0.tag, request: $0.request) }) }
          completion(tag, .success(Fetched(response: combined, attempts: job.attempts)))
        case 418:
          stopped = true
          completion(tag, .failure(.banned(url: url, retryAfter: retryAfter.map { Int($0) })))
          for pending in queue { completion(pending.tag, .failure(.stopped(url: pending.request.url))) }
          queue.removeAll()
        case 429, 408, 500...:
          job.partial = Data()
          if let retryAfter, retryAfter > policy.retryAfterCap {
            let status = response.status
            stopAll { .waitTooLong(url: $0, status: status, seconds: retryAfter, cap: policy.retryAfterCap) }
            return
          }
          let wait = retryAfter ?? policy.delay(afterAttempt: job.attempts)
          if response.status == 429 { pausedUntil = max(pausedUntil, clock() + wait) }
          if retry(after: wait) {
            if let retryAfter, retryAfter >= 1 {
              notice?("waiting \(Self.seconds(retryAfter)): \(url) answered HTTP \(response.status) with Retry-After: \(response.headers["retry-after"] ?? "")")
            }
          } else {
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

  /// Seconds to wait from a `Retry-After` value: delay-seconds or an HTTP date. Anything else
  /// (`inf`, `nan`, negative, junk) counts as absent.
  public static func retryAfter(_ value: String?, now: Date = Date()) -> Double? {
    guard let text = value?.trimmingCharacters(in: .whitespaces), !text.isEmpty else { return nil }
    if text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }) {
      guard let seconds = Double(text), seconds.isFinite, seconds >= 0 else { return nil }
      return seconds
    }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    guard let date = formatter.date(from: text) else { return nil }
    return max(0, date.timeIntervalSince(now))
  }

  static func seconds(_ value: Double) -> String {
    value == value.rounded() ? "\(Int(value)) s" : String(format: "%.1f s", value)
  }

  static func text(_ body: Data) -> String {
    String(decoding: body.prefix(400), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  }
}
