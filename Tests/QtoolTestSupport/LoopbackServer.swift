import Foundation
import QtoolData
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// A real HTTP/1.1 server on 127.0.0.1 for tests: serves files from a directory at their
/// paths (with Range → 206, which `python3 -m http.server` does not do), computes missing
/// `.CHECKSUM` files the way Binance writes them, and lets a test script any reply per path.
public final class LoopbackServer: @unchecked Sendable {
  public struct Request: Sendable {
    public var method: String
    /// Path and query, e.g. `/api/v3/klines?symbol=BTCUSDT`.
    public var target: String
    public var headers: [String: String]
    /// The request's body (as its Content-Length says).
    public var body: Data
    /// When the request had arrived whole.
    public var received: Date
    public init(method: String, target: String, headers: [String: String], body: Data = Data(), received: Date = Date()) {
      self.method = method
      self.target = target
      self.headers = headers
      self.body = body
      self.received = received
    }
    public var path: String { String(target.prefix { $0 != "?" }) }
    public var query: [String: String] {
      guard let index = target.firstIndex(of: "?") else { return [:] }
      var result: [String: String] = [:]
      for pair in target[target.index(after: index)...].split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
        result[parts[0]] = parts.count > 1 ? (parts[1].removingPercentEncoding ?? parts[1]) : ""
      }
      return result
    }
  }

  public struct Reply: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: Data
    /// Send only this many body bytes (Content-Length still announces all), then hang up.
    public var cutAfter: Int?
    /// Wait this long before answering.
    public var delay: Double
    /// No Content-Length: the body ends when the connection closes (as Stooq answers).
    public var closeDelimited: Bool
    /// Send the body `bytes` at a time, `interval` seconds apart (a trickle).
    public var trickle: Trickle?

    public struct Trickle: Sendable {
      public var bytes: Int
      public var interval: Double
      public init(bytes: Int, interval: Double) {
        self.bytes = bytes
        self.interval = interval
      }
    }

    public init(
      status: Int = 200, headers: [String: String] = [:], body: Data = Data(), cutAfter: Int? = nil, delay: Double = 0,
      closeDelimited: Bool = false, trickle: Trickle? = nil
    ) {
      self.status = status
      self.headers = headers
      self.body = body
      self.cutAfter = cutAfter
      self.delay = delay
      self.closeDelimited = closeDelimited
      self.trickle = trickle
    }

    public static func text(_ text: String, status: Int = 200, headers: [String: String] = [:]) -> Reply {
      Reply(status: status, headers: headers, body: Data(text.utf8))
    }
  }

  /// A scripted handler: returns nil to fall through to the next handler or the files.
  public typealias Handler = @Sendable (Request, _ hit: Int) -> Reply?

  public let port: UInt16
  public var baseURL: String { "http://127.0.0.1:\(port)" }
  private let listener: Int32
  public let root: URL?
  private let state = Mutex(State())
  private let stopped = Atomic<Bool>(false)

  private struct State {
    var handlers: [(prefix: String, exact: Bool, handler: Handler)] = []
    var hits: [String: Int] = [:]
    var log: [Request] = []
  }

  public init(root: URL? = nil) throws {
    self.root = root
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var yes: Int32 = 1
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(listener, 64) == 0 else { throw POSIXError(.EADDRINUSE) }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(listener, $0, &length) }
    }
    self.listener = listener
    port = UInt16(bigEndian: address.sin_port)
    let thread = Thread { [unowned self] in self.acceptLoop() }
    thread.start()
  }

  deinit { stop() }

  /// Closes the listener, once: a second `close` (the test's `stop()`, then `deinit`) would
  /// close whatever descriptor reused the number meanwhile — another test's database, say.
  public func stop() {
    guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
    shutdown(listener, Int32(SHUT_RDWR))
    close(listener)
  }

  /// Scripts replies for paths starting with `prefix`; the handler also gets how many requests
  /// that prefix has had (1 for the first).
  public func on(_ prefix: String, _ handler: @escaping Handler) {
    state.withLock { $0.handlers.insert((prefix, false, handler), at: 0) }
  }

  /// Like `on`, for exactly this path (query ignored).
  public func on(path: String, _ handler: @escaping Handler) {
    state.withLock { $0.handlers.insert((path, true, handler), at: 0) }
  }

  /// Requests received so far.
  public var requests: [Request] { state.withLock { $0.log } }

  private func acceptLoop() {
    while true {
      let client = accept(listener, nil, nil)
      if client < 0 {
        if errno == EINTR, !stopped.load(ordering: .acquiring) { continue }
        return
      }
      if stopped.load(ordering: .acquiring) {
        close(client)
        return
      }
      // A thread per connection: GCD's pool is a few threads on two cores, and handlers that
      // sleep (to simulate slow servers) would serialise behind each other there.
      let worker = Thread { self.serve(client) }
      worker.start()
    }
  }

  private func serve(_ client: Int32) {
    defer { close(client) }
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var received = Data()
    while !received.contains(Data("\r\n\r\n".utf8)) {
      let count = recv(client, &buffer, buffer.count, 0)
      guard count > 0 else { return }
      received.append(buffer, count: count)
    }
    let separator = received.range(of: Data("\r\n\r\n".utf8))!
    let head = String(decoding: received[..<separator.lowerBound], as: UTF8.self)
    var lines = head.components(separatedBy: "\r\n")
    let requestLine = lines.removeFirst().split(separator: " ")
    guard requestLine.count >= 2 else { return }
    var headers: [String: String] = [:]
    for line in lines {
      guard let colon = line.firstIndex(of: ":") else { continue }
      headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    var requestBody = Data(received[separator.upperBound...])
    let length = headers["content-length"].flatMap(Int.init) ?? 0
    while requestBody.count < length {
      let count = recv(client, &buffer, buffer.count, 0)
      guard count > 0 else { return }
      requestBody.append(buffer, count: count)
    }
    let request = Request(
      method: String(requestLine[0]), target: String(requestLine[1]), headers: headers, body: Data(requestBody.prefix(length)), received: Date())
    let reply = respond(to: request)
    if reply.delay > 0 { Thread.sleep(forTimeInterval: reply.delay) }
    var text = "HTTP/1.1 \(reply.status) \(Self.reason(reply.status))\r\nConnection: close\r\n"
    var replyHeaders = reply.headers
    if !reply.closeDelimited { replyHeaders["Content-Length"] = replyHeaders["Content-Length"] ?? "\(reply.body.count)" }
    for (name, value) in replyHeaders.sorted(by: { $0.key < $1.key }) { text += "\(name): \(value)\r\n" }
    text += "\r\n"
    guard Self.send(client, Data(text.utf8)) else { return }
    let body = reply.cutAfter.map { reply.body.prefix($0) } ?? reply.body
    if let trickle = reply.trickle {
      var offset = body.startIndex
      while offset < body.endIndex {
        let end = min(body.endIndex, offset + trickle.bytes)
        guard Self.send(client, body[offset..<end]) else { return }
        offset = end
        Thread.sleep(forTimeInterval: trickle.interval)
      }
    } else {
      _ = Self.send(client, body)
    }
  }

  /// Sends all of `data`; false when the peer has gone.
  private static func send(_ client: Int32, _ data: Data) -> Bool {
    data.withUnsafeBytes { raw in
      var offset = 0
      while offset < raw.count {
        let sent = Glibc.send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
        if sent <= 0 { return false }
        offset += sent
      }
      return true
    }
  }

  private func respond(to request: Request) -> Reply {
    func matches(_ prefix: String, _ exact: Bool) -> Bool { exact ? request.path == prefix : request.target.hasPrefix(prefix) }
    let (handlers, hitCounts): ([(prefix: String, exact: Bool, handler: Handler)], [String: Int]) = state.withLock { state in
      state.log.append(request)
      for (prefix, exact, _) in state.handlers where matches(prefix, exact) { state.hits[prefix, default: 0] += 1 }
      return (state.handlers, state.hits)
    }
    for (prefix, exact, handler) in handlers where matches(prefix, exact) {
      if let reply = handler(request, hitCounts[prefix] ?? 1) { return reply }
    }
    return file(request)
  }

  /// Static files under `root`, with Range support; `X.CHECKSUM` computed from `X` when absent.
  public func file(_ request: Request) -> Reply {
    guard let root else { return .text("not found", status: 404) }
    let url = root.appendingPathComponent(String(request.path.dropFirst()))
    if let data = FileManager.default.contents(atPath: url.path) {
      if let range = request.headers["range"], range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).prefix { $0 != "-" }) {
        guard start < data.count else { return Reply(status: 416) }
        return Reply(
          status: 206, headers: ["Content-Range": "bytes \(start)-\(data.count - 1)/\(data.count)"], body: data.subdata(in: start..<data.count))
      }
      return Reply(body: data)
    }
    if url.path.hasSuffix(".CHECKSUM"), let archive = FileManager.default.contents(atPath: String(url.path.dropLast(9))) {
      return .text("\(ContentHash.sha256Hex(archive))  \(url.deletingPathExtension().lastPathComponent)")
    }
    return .text("<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code></Error>", status: 404)
  }

  static func reason(_ status: Int) -> String {
    switch status {
    case 200: return "OK"
    case 206: return "Partial Content"
    case 301: return "Moved Permanently"
    case 302: return "Found"
    case 503: return "Service Unavailable"
    case 404: return "Not Found"
    case 418: return "I'm a teapot"
    case 410: return "Gone"
    case 429: return "Too Many Requests"
    case 500: return "Internal Server Error"
    default: return "Status"
    }
  }
}
