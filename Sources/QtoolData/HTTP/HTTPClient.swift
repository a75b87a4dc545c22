import CCurl
import Foundation
import QtoolCore

/// One request: a GET, or a POST with a body (a webhook delivery).
public struct HTTPRequest: Sendable, Equatable {
  public var url: String
  public var headers: [String: String]
  /// Resume: ask for the bytes from this offset on (`Range: bytes=N-`).
  public var rangeStart: Int64?
  /// The most body bytes to accept (nil: the client's `maxBodyBytes`); a larger answer is
  /// abandoned as it arrives, so memory stays bounded.
  public var maxBytes: Int?
  /// A body to POST. A POST follows no redirect.
  public var body: Data?
  /// The most milliseconds the whole transfer may take (nil: the client's `totalTimeout`).
  public var timeoutMilliseconds: Int?

  public init(
    url: String, headers: [String: String] = [:], rangeStart: Int64? = nil, maxBytes: Int? = nil, body: Data? = nil,
    timeoutMilliseconds: Int? = nil
  ) {
    self.url = url
    self.headers = headers
    self.rangeStart = rangeStart
    self.maxBytes = maxBytes
    self.body = body
    self.timeoutMilliseconds = timeoutMilliseconds
  }
}

public struct HTTPResponse: Sendable {
  public var status: Int
  /// Lower-cased names.
  public var headers: [String: String]
  public var body: Data
}

/// A transfer that did not produce a response: no connection, timeout, cut mid-body.
public struct TransportError: Error, Sendable, Equatable, CustomStringConvertible {
  /// What went wrong, as far as a retry decision goes.
  public enum Kind: Sendable, Equatable {
    /// No connection, reset, DNS: worth retrying.
    case network
    /// Slower than the minimum rate for the stall time, or past the per-file deadline.
    case tooSlow
    /// The connection closed before the announced length.
    case cutShort
    /// The compressed content (Content-Encoding) cannot be decoded.
    case damagedEncoding
    /// More bytes than allowed: the same request would do it again.
    case tooLarge
    /// A redirect to a scheme other than http(s), or too many redirects: permanent.
    case redirect
  }

  public var code: Int
  public var message: String
  /// Bytes received before the failure (for a Range resume).
  public var partialBody: Data
  public var kind: Kind = .network
  public var description: String { message }

  public init(code: Int, message: String, partialBody: Data, kind: Kind = .network) {
    self.code = code
    self.message = message
    self.partialBody = partialBody
    self.kind = kind
  }

  /// True when asking again cannot help.
  public var isPermanent: Bool { kind == .tooLarge || kind == .redirect }
}

/// Settings for every transfer of a client.
public struct HTTPSettings: Sendable {
  public var userAgent: String
  public var proxy: String?
  public var connectTimeout: Int
  /// A transfer slower than `minimumSpeed` bytes/s for this many seconds is abandoned (and
  /// retried by the caller): a trickle is a stall.
  public var stallTimeout: Int
  /// Bytes per second a transfer must keep up, averaged over `stallTimeout`.
  public var minimumSpeed: Int
  /// The most seconds one transfer (one file) may take, however fast it goes.
  public var totalTimeout: Int
  /// The most body bytes of one response, unless a request says otherwise.
  public var maxBodyBytes: Int?
  /// Redirects followed at most; only to http and https.
  public var maxRedirects: Int

  public init(
    userAgent: String, proxy: String? = nil, connectTimeout: Int = 10, stallTimeout: Int = 30, minimumSpeed: Int = 1024,
    totalTimeout: Int = 600, maxBodyBytes: Int? = nil, maxRedirects: Int = 5
  ) {
    self.userAgent = userAgent
    self.proxy = proxy
    self.connectTimeout = connectTimeout
    self.stallTimeout = stallTimeout
    self.minimumSpeed = minimumSpeed
    self.totalTimeout = totalTimeout
    self.maxBodyBytes = maxBodyBytes
    self.maxRedirects = maxRedirects
  }
}

/// HTTP over libcurl's multi interface: many transfers at once on the calling thread, no
/// thread per transfer. Completions are delivered on the calling thread, in completion order.
///
/// ```swift
/// let client = HTTPClient(settings: HTTPSettings(userAgent: "qtool/0.1"))
/// client.run(requests, concurrency: 4) { index, result in … }
/// ```
public final class HTTPClient {
  private static let initialized: Bool = {
    curl_global_init(3)  // CURL_GLOBAL_DEFAULT (SSL | WIN32); the macro is invisible to Swift
    return true
  }()

  public let settings: HTTPSettings
  private let multi: UnsafeMutableRawPointer

  public init(settings: HTTPSettings) {
    _ = Self.initialized
    self.settings = settings
    multi = curl_multi_init()
  }

  deinit { curl_multi_cleanup(multi) }

  /// Something the caller can feed while transfers run: `next()` returns the next request
  /// to start (with a caller-chosen tag), or nil when none is ready yet; `isFinished` says no
  /// more will come.
  public struct Feed {
    public var next: () -> (tag: Int, request: HTTPRequest)?
    public var isFinished: () -> Bool
    /// True when the transfers in flight should be dropped at once (the operation was cancelled).
    public var shouldAbort: () -> Bool
    /// Called when nothing is in flight and nothing is ready: returns when there may be work
    /// (default: after 20 ms). A caller that is told of new work can return at once.
    public var waitForWork: () -> Void
    public init(
      next: @escaping () -> (tag: Int, request: HTTPRequest)?, isFinished: @escaping () -> Bool, shouldAbort: @escaping () -> Bool = { false },
      waitForWork: @escaping () -> Void = { usleep(20_000) }
    ) {
      self.next = next
      self.isFinished = isFinished
      self.shouldAbort = shouldAbort
      self.waitForWork = waitForWork
    }
  }

  /// Interrupts a `run` waiting on transfers in flight, so it asks its feed for new work at
  /// once. Safe to call from any thread.
  public func wakeUp() { curl_multi_wakeup(multi) }

  /// Runs requests from `feed`, at most `concurrency` at once, calling `completion` for each.
  public func run(feed: Feed, concurrency: Int, completion: (Int, Result<HTTPResponse, TransportError>) -> Void) {
    var active: [UnsafeMutableRawPointer: (tag: Int, state: Unmanaged<TransferState>, headers: OpaquePointer?, request: HTTPRequest)] = [:]
    while true {
      if feed.shouldAbort() {
        for (easy, entry) in active {
          curl_multi_remove_handle(multi, easy)
          curl_easy_cleanup(easy)
          if let headers = entry.headers { curl_slist_free_all(UnsafeMutablePointer(headers)) }
          entry.state.release()
        }
        return
      }
      while active.count < max(1, concurrency), let (tag, request) = feed.next() {
        let (easy, state, headers) = makeHandle(request)
        active[easy] = (tag, state, headers, request)
        curl_multi_add_handle(multi, easy)
      }
      if active.isEmpty {
        if feed.isFinished() { return }
        // Work is scheduled for later (a back-off): wait a little and ask again.
        feed.waitForWork()
        continue
      }
      var running: Int32 = 0
      curl_multi_perform(multi, &running)
      var remaining: Int32 = 0
      while let message = curl_multi_info_read(multi, &remaining) {
        guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle, let entry = active.removeValue(forKey: easy)
        else { continue }
        let code = message.pointee.data.result
        let state = entry.state.takeUnretainedValue()
        let result: Result<HTTPResponse, TransportError>
        if code == CURLE_OK {
          var status = 0
          qtool_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
          result = .success(HTTPResponse(status: status, headers: state.headers, body: state.body))
        } else {
          result = .failure(transportError(code, state: state, request: entry.request))
        }
        curl_multi_remove_handle(multi, easy)
        curl_easy_cleanup(easy)
        if let headers = entry.headers { curl_slist_free_all(UnsafeMutablePointer(headers)) }
        entry.state.release()
        completion(entry.tag, result)
      }
      if !active.isEmpty {
        var descriptors: Int32 = 0
        curl_multi_poll(multi, nil, 0, 100, &descriptors)
      }
    }
  }

  /// Runs a fixed list of requests; results in the order of `requests`.
  public func fetchAll(_ requests: [HTTPRequest], concurrency: Int) -> [Result<HTTPResponse, TransportError>] {
    var results = [Result<HTTPResponse, TransportError>?](repeating: nil, count: requests.count)
    var nextIndex = 0
    let feed = Feed(
      next: {
        guard nextIndex < requests.count else { return nil }
        defer { nextIndex += 1 }
        return (nextIndex, requests[nextIndex])
      },
      isFinished: { nextIndex >= requests.count })
    run(feed: feed, concurrency: concurrency) { results[$0] = $1 }
    return results.map { $0! }
  }

  /// Says what a failed transfer means for a person, and whether asking again can help.
  private func transportError(_ code: CURLcode, state: TransferState, request: HTTPRequest) -> TransportError {
    let raw = Int(code.rawValue)
    let received = state.body.count
    let seconds = Date().timeIntervalSince(state.started)
    let expected = state.headers["content-length"].flatMap(Int.init).map { $0 + Int(request.rangeStart ?? 0) }
    let kind: TransportError.Kind
    var text: String
    switch raw {
    case _ where raw == 63 || (raw == 23 && state.exceeded):  // CURLE_FILESIZE_EXCEEDED, or CURLE_WRITE_ERROR from our limit
      let limit = request.maxBytes ?? settings.maxBodyBytes ?? 0
      kind = .tooLarge
      text = "the response is larger than the \(Self.mebibytes(limit)) allowed for one response; abandoned after \(received) bytes"
    case _ where (raw == 1 || raw == 3) && !state.locations.isEmpty:  // UNSUPPORTED_PROTOCOL / URL_MALFORMAT after a redirect
      kind = .redirect
      text = "redirected to \(state.locations.last!), which is not an http or https URL; not followed"
    case 47:  // CURLE_TOO_MANY_REDIRECTS
      kind = .redirect
      text = "more than \(settings.maxRedirects) redirects (the last to \(state.locations.last ?? "?")); a redirect loop"
    case 28:  // CURLE_OPERATION_TIMEDOUT: the stall rule or the per-file deadline
      kind = .tooSlow
      if let limit = request.timeoutMilliseconds {
        text = "no complete answer within \(limit) ms (\(received) bytes arrived)"
      } else if seconds + 0.5 >= Double(settings.totalTimeout) {
        text = "the transfer took longer than the \(settings.totalTimeout) s allowed per file (\(received) bytes arrived)"
      } else if received == 0 && state.statusLine.isEmpty {
        text = "no answer within \(settings.stallTimeout) s"
      } else {
        text =
          "the transfer was slower than \(settings.minimumSpeed) bytes/s for \(settings.stallTimeout) s (\(received) bytes in \(Int(seconds.rounded())) s)"
      }
    case 61:  // CURLE_BAD_CONTENT_ENCODING
      kind = .damagedEncoding
      text = Self.damagedEncoding(state.headers["content-encoding"])
    case 18:  // CURLE_PARTIAL_FILE
      kind = .cutShort
      text = "the connection closed after \(received) of \(expected.map(String.init) ?? "?") bytes"
    default:
      kind = .network
      text = String(cString: curl_easy_strerror(code))
    }
    if kind == .network || kind == .tooSlow, let proxy = settings.proxy, !proxy.isEmpty { text += " via proxy \(proxy)" }
    return TransportError(code: raw, message: "\(text) (curl \(raw))", partialBody: state.body, kind: kind)
  }

  /// The one sentence for compressed content that cannot be decoded, whichever source sent it.
  public static func damagedEncoding(_ encoding: String?) -> String {
    "the response is damaged: its \(encoding ?? "compressed") content cannot be decompressed"
  }

  static func mebibytes(_ bytes: Int) -> String {
    bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes) bytes"
  }

  private func makeHandle(_ request: HTTPRequest) -> (UnsafeMutableRawPointer, Unmanaged<TransferState>, OpaquePointer?) {
    let easy = curl_easy_init()!
    let limit = request.maxBytes ?? settings.maxBodyBytes
    let state = Unmanaged.passRetained(TransferState(limit: limit))
    qtool_curl_setopt_str(easy, CURLOPT_URL, request.url)
    qtool_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_WRITEDATA, state.toOpaque())
    qtool_curl_setopt_write(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_HEADERDATA, state.toOpaque())
    qtool_curl_setopt_str(easy, CURLOPT_USERAGENT, settings.userAgent)
    // gzip only, decoded by qtool (ContentDecoding): curl passes a gzip stream cut short as a
    // shorter body without an error.
    qtool_curl_setopt_str(easy, CURLOPT_ACCEPT_ENCODING, "gzip")
    qtool_curl_setopt_long(easy, CURLOPT_HTTP_CONTENT_DECODING, 0)
    qtool_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, request.body == nil ? 1 : 0)
    qtool_curl_setopt_long(easy, CURLOPT_MAXREDIRS, settings.maxRedirects)
    // Never file://, gopher:// or anything else, whatever a server redirects to.
    qtool_curl_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
    qtool_curl_setopt_str(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https")
    qtool_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
    qtool_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, settings.connectTimeout)
    qtool_curl_setopt_long(easy, CURLOPT_TIMEOUT, settings.totalTimeout)
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, max(1, settings.minimumSpeed))
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, settings.stallTimeout)
    if let limit { qtool_curl_setopt_off(easy, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(limit)) }
    if let proxy = settings.proxy, !proxy.isEmpty { qtool_curl_setopt_str(easy, CURLOPT_PROXY, proxy) }
    if let start = request.rangeStart { qtool_curl_setopt_str(easy, CURLOPT_RANGE, "\(start)-") }
    if let milliseconds = request.timeoutMilliseconds {
      qtool_curl_setopt_long(easy, CURLOPT_TIMEOUT_MS, max(1, milliseconds))
      qtool_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, max(1, min(milliseconds, settings.connectTimeout * 1000)))
    }
    var list: UnsafeMutablePointer<curl_slist>?
    if let body = request.body {
      qtool_curl_setopt_long(easy, CURLOPT_POST, 1)
      qtool_curl_setopt_off(easy, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count))
      // COPYPOSTFIELDS copies the bytes: the body need not outlive this call.
      if body.isEmpty {
        qtool_curl_setopt_str(easy, CURLOPT_COPYPOSTFIELDS, "")
      } else {
        body.withUnsafeBytes { bytes in qtool_curl_setopt_ptr(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: bytes.baseAddress!)) }
      }
      // No `Expect: 100-continue` round trip before the body.
      list = curl_slist_append(list, "Expect:")
    }
    for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
      list = curl_slist_append(list, "\(name): \(value)")
    }
    if let list { qtool_curl_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
    return (easy, state, list.map(OpaquePointer.init))
  }
}
