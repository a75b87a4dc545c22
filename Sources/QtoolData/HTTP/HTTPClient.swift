import CCurl
import Foundation
import QtoolCore

/// One GET request.
public struct HTTPRequest: Sendable, Equatable {
  public var url: String
  public var headers: [String: String]
  /// Resume: ask for the bytes from this offset on (`Range: bytes=N-`).
  public var rangeStart: Int64?

  public init(url: String, headers: [String: String] = [:], rangeStart: Int64? = nil) {
    self.url = url
    self.headers = headers
    self.rangeStart = rangeStart
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
  public var code: Int
  public var message: String
  /// Bytes received before the failure (for a Range resume).
  public var partialBody: Data
  public var description: String { message }
}

/// Settings for every transfer of a client.
public struct HTTPSettings: Sendable {
  public var userAgent: String
  public var proxy: String?
  public var connectTimeout: Int
  /// A transfer slower than 1 byte/s for this long is abandoned (and retried by the caller).
  public var stallTimeout: Int
  public var totalTimeout: Int

  public init(userAgent: String, proxy: String? = nil, connectTimeout: Int = 10, stallTimeout: Int = 30, totalTimeout: Int = 600) {
    self.userAgent = userAgent
    self.proxy = proxy
    self.connectTimeout = connectTimeout
    self.stallTimeout = stallTimeout
    self.totalTimeout = totalTimeout
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
    public init(
      next: @escaping () -> (tag: Int, request: HTTPRequest)?, isFinished: @escaping () -> Bool, shouldAbort: @escaping () -> Bool = { false }
    ) {
      self.next = next
      self.isFinished = isFinished
      self.shouldAbort = shouldAbort
    }
  }

  /// Runs requests from `feed`, at most `concurrency` at once, calling `completion` for each.
  public func run(feed: Feed, concurrency: Int, completion: (Int, Result<HTTPResponse, TransportError>) -> Void) {
    var active: [UnsafeMutableRawPointer: (tag: Int, state: Unmanaged<TransferState>, headers: OpaquePointer?)] = [:]
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
        active[easy] = (tag, state, headers)
        curl_multi_add_handle(multi, easy)
      }
      if active.isEmpty {
        if feed.isFinished() { return }
        // Work is scheduled for later (a back-off): wait a little and ask again.
        usleep(20_000)
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
          var text = String(cString: curl_easy_strerror(code))
          if let proxy = settings.proxy, !proxy.isEmpty { text += " via proxy \(proxy)" }
          result = .failure(TransportError(code: Int(code.rawValue), message: "\(text) (curl \(code.rawValue))", partialBody: state.body))
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

  private func makeHandle(_ request: HTTPRequest) -> (UnsafeMutableRawPointer, Unmanaged<TransferState>, OpaquePointer?) {
    let easy = curl_easy_init()!
    let state = Unmanaged.passRetained(TransferState())
    qtool_curl_setopt_str(easy, CURLOPT_URL, request.url)
    qtool_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_WRITEDATA, state.toOpaque())
    qtool_curl_setopt_write(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_HEADERDATA, state.toOpaque())
    qtool_curl_setopt_str(easy, CURLOPT_USERAGENT, settings.userAgent)
    qtool_curl_setopt_str(easy, CURLOPT_ACCEPT_ENCODING, "")  // gzip, deflate, br: whatever curl has
    qtool_curl_setopt_long(easy, CURLOPT_FOLLOWLOCATION, 1)
    qtool_curl_setopt_long(easy, CURLOPT_MAXREDIRS, 5)
    qtool_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
    qtool_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, settings.connectTimeout)
    qtool_curl_setopt_long(easy, CURLOPT_TIMEOUT, settings.totalTimeout)
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, settings.stallTimeout)
    if let proxy = settings.proxy, !proxy.isEmpty { qtool_curl_setopt_str(easy, CURLOPT_PROXY, proxy) }
    if let start = request.rangeStart { qtool_curl_setopt_str(easy, CURLOPT_RANGE, "\(start)-") }
    var list: UnsafeMutablePointer<curl_slist>?
    for (name, value) in request.headers.sorted(by: { $0.key < $1.key }) {
      list = curl_slist_append(list, "\(name): \(value)")
    }
    if let list { qtool_curl_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
    return (easy, state, list.map(OpaquePointer.init))
  }
}
