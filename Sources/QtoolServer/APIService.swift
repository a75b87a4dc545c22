import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import QtoolCore
import QtoolEngine
import QtoolStore

/// The request context of the server: Hummingbird's, plus the client's address.
public struct APIRequestContext: RequestContext, RemoteAddressRequestContext {
  public var coreContext: CoreRequestContextStorage
  public let remoteAddress: SocketAddress?

  public init(source: ApplicationRequestContextSource) {
    coreContext = .init(source: source)
    remoteAddress = source.channel.remoteAddress
  }

  /// Bodies are read by the service itself, up to its own limit.
  public var maxUploadSize: Int { .max }
}

/// The REST API: one route table, and around every handler the same steps — request id, rate
/// limit, credentials and scope, body limit, Idempotency-Key, errors in the envelope with the
/// status of their category, the audit log of writes, metrics, a log line with tokens redacted.
public final class APIService: Sendable {
  public let database: QtoolDatabase
  public let settings: Settings
  let configuration: ServerConfiguration
  let clock: any WallClock
  let authenticator: Authenticator
  let limiter: RateLimiter
  public let hub: EventHub
  let metrics: ServerMetrics
  let jobs: JobHost
  let watcher: JobWatcher
  /// Live runners started through the API, in this process.
  let runners: RunnerHost
  /// Publishes the signals any runner commits to the streams.
  let signals: SignalWatcher
  /// Publishes the starts and ends of runners in other processes.
  let runs: RunWatcher
  let logger: Logger
  let startedAt: Int64
  let table: RouteTable
  /// Where uploads are kept while they are imported.
  let uploadDirectory: String

  public init(
    database: QtoolDatabase, settings: Settings, configuration: ServerConfiguration, clock: any WallClock = SystemClock(),
    logger: Logger = Logger(label: "qtool.serve")
  ) async {
    self.database = database
    self.settings = settings
    self.configuration = configuration
    self.clock = clock
    self.logger = logger
    startedAt = clock.now()
    authenticator = await Authenticator(database: database, clock: clock, configuration: configuration)
    limiter = RateLimiter(auth: configuration.authRate, default: configuration.defaultRate, clock: clock)
    // Ids go on from one run of the server to the next: they start from the start time.
    hub = EventHub(firstID: Int64(Date().timeIntervalSince1970 * 1000) * 1000)
    metrics = ServerMetrics()
    let watcher = JobWatcher(database: database, hub: hub, since: Int64(Date().timeIntervalSince1970 * 1000))
    self.watcher = watcher
    // A job this server runs is published the moment it ends, not at the next poll.
    jobs = JobHost(onEnd: { watcher.poll(now: Int64(Date().timeIntervalSince1970 * 1000)) })
    let hub = self.hub
    let signals = SignalWatcher(database: database, hub: hub, metrics: metrics)
    self.signals = signals
    let reconciling = OperationContext(database: database, clock: clock, logger: logger)
    runs = RunWatcher(database: database, hub: hub) { LiveOperations(reconciling).reconcileQuietly() }
    runners = RunnerHost(logger: logger) { name, event in
      // A hosted runner's signals are committed with its bar: published now, not at the next poll.
      if case .bar(_, _, let count) = event, count > 0 { signals.poll() }
      LiveStreamEvents.publish(event, strategy: name, hub: hub)
    } ended: { end in
      LiveStreamEvents.publish(end, hub: hub)
    }
    table = RouteTable(Self.allRoutes)
    // One per server, not per process: a server that stops removes its directory, and another
    // in the same process (the tests run several) must not lose the file it is writing there.
    uploadDirectory = NSTemporaryDirectory() + "qtool-uploads-\(getpid())-\(AuthOperations.randomHex(6))"
  }

  /// Every route group.
  static var allRoutes: [Route] {
    SystemRoutes.routes + AuthRoutes.routes + DataRoutes.routes + StrategyRoutes.routes + BacktestRoutes.routes + JobRoutes.routes
      + TrainRoutes.routes + AdminRoutes.routes + DashboardRoutes.routes + LiveRoutes.routes
  }

  /// The routes as `METHOD /path` lines (for the OpenAPI test and `qtool serve --routes`).
  public static var routeList: [String] { allRoutes.map { "\($0.method) \($0.pattern)" } }

  /// A fresh operation context on the server's store and clock.
  func operationContext() -> OperationContext {
    OperationContext(database: database, clock: clock, logger: logger)
  }

  // MARK: Answering a request

  public func respond(to request: Request, context: APIRequestContext) async -> Response {
    let started = ContinuousClock.now
    let requestID = Self.requestID(request.headers[.init("X-Request-ID")!])
    let method = request.method.rawValue
    let path = request.uri.path
    let query = Self.parseQuery(request.uri.query)
    let client = context.remoteAddress?.ipAddress ?? "local"
    var routeLabel = "unmatched"
    var principal: Principal?
    var extraHeaders = HTTPFields()
    var response: Response
    var auditRoute: Route?

    do {
      let (route, parameters): (Route, [String: String])
      switch table.lookup(method: method, path: path) {
      case .found(let found, let values): (route, parameters) = (found, values)
      case .methodNotAllowed(let allowed):
        extraHeaders[.allow] = allowed.joined(separator: ", ")
        throw ServerError.methodNotAllowed(method, path, allowed: allowed)
      case .notFound: throw ServerError.routeNotFound(method, path)
      }
      routeLabel = route.pattern
      if route.isWrite { auditRoute = route }

      // Credentials first, so limits count per token where there is one.
      let bearer = Self.bearer(request.headers[.authorization], query: query)
      if let bearer, route.authenticated || route.rateClass != .unlimited {
        do {
          principal = try await authenticator.authenticate(bearer: bearer)
        } catch where !route.authenticated {
          principal = nil
        }
      }
      if let decision = limiter.check(client: principal?.id ?? "ip:" + client, rateClass: route.rateClass) {
        extraHeaders[.init("RateLimit-Limit")!] = String(decision.limit.requests)
        extraHeaders[.init("RateLimit-Remaining")!] = String(decision.remaining)
        extraHeaders[.init("RateLimit-Reset")!] = String(decision.reset)
        extraHeaders[.init("RateLimit-Policy")!] = "\(decision.limit.requests);w=\(decision.limit.windowSeconds)"
        if !decision.allowed { throw ServerError.rateLimited(decision.limit, retryAfter: decision.reset) }
      }
      if route.authenticated {
        guard let principal else { throw bearer == nil ? ServerError.missingCredentials : ServerError.invalidToken("invalid credentials") }
        if let scope = route.scope, !principal.has(scope) {
          throw ServerError.missingScope(scope, have: principal.scopes.map(\.rawValue).sorted())
        }
      }

      let body = try await readBody(request)
      var apiRequest = APIRequest(
        method: method, path: path, parameters: parameters, query: query, headers: request.headers, body: body, principal: principal,
        requestID: requestID, client: client)
      apiRequest.headers[.init("X-Request-ID")!] = requestID

      if (method == "POST" || method == "PATCH"), let key = request.headers[.init("Idempotency-Key")!] {
        response = try await idempotent(key: key, route: route, request: apiRequest)
      } else {
        response = try await render(try await route.handler(self, apiRequest), requestID: requestID)
      }
    } catch {
      response = errorResponse(error, requestID: requestID)
    }

    for field in extraHeaders { response.headers.append(field) }
    response.headers[.init("X-Request-ID")!] = requestID
    if let route = auditRoute {
      try? database.appendAudit(
        actor: principal?.id ?? "anonymous", action: "\(method) \(route.pattern)", target: path, status: Int(response.status.code),
        requestID: requestID, ip: client, at: clock.now())
    }
    let elapsed = ContinuousClock.now - started
    metrics.record(route: routeLabel, method: method, status: Int(response.status.code), duration: elapsed)
    logger.info(
      "\(method) \(Self.redacted(path: path, query: request.uri.query)) \(response.status.code)",
      metadata: ["request_id": .string(requestID), "ms": .string(String(format: "%.1f", Double(elapsed.components.attoseconds) / 1e15))])
    return response
  }

  /// The body of a write, up to the configured limit (413 past it).
  private func readBody(_ request: Request) async throws -> ByteBuffer? {
    guard request.method != .get, request.method != .head else { return nil }
    let limit = configuration.maxBodyBytes
    if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw ServerError.bodyTooLarge(limit: limit) }
    do {
      return try await request.body.collect(upTo: limit)
    } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
      // NIO's NIOTooManyBytesError (a body sent in chunks past the limit) as well as HTTPError.
      throw ServerError.bodyTooLarge(limit: limit)
    }
  }

  /// `Idempotency-Key`: the first request with a key is answered and its answer stored; the
  /// same key with the same body gets that answer again, with another body 422, while the
  /// first is still being answered 409.
  private func idempotent(key: String, route: Route, request: APIRequest) async throws -> Response {
    guard !key.isEmpty, key.count <= 200 else {
      throw ServerError(.usage, code: "invalid_idempotency_key", "an Idempotency-Key is 1 to 200 characters", details: ["field": "Idempotency-Key"])
    }
    let principal = request.principal?.id ?? "ip:" + request.client
    let hash = Self.requestHash(method: request.method, path: request.path, query: request.query, body: request.bodyData)
    let now = clock.now()
    if let stored = try database.claimIdempotencyKey(
      principal: principal, key: key, method: request.method, path: request.path, bodyHash: hash, at: now,
      expireBefore: now - configuration.idempotencySeconds * 1000)
    {
      guard stored.bodyHash == hash else {
        throw ServerError(
          .invalidInput, code: "idempotency_key_reused", "this Idempotency-Key was used with another request",
          details: ["field": "Idempotency-Key", "first_used": .string(APIJSON.timestamp(stored.createdAt))],
          hint: "use a new key for a new request")
      }
      guard let status = stored.status, let body = stored.response else {
        throw ServerError(
          .conflict, code: "idempotency_key_in_flight", "a request with this Idempotency-Key is still being answered",
          details: ["field": "Idempotency-Key"], hint: "retry in a moment to get its answer", retryAfter: 1)
      }
      var headers = HTTPFields()
      headers[.contentType] = stored.contentType ?? "application/json"
      headers[.init("Idempotent-Replayed")!] = "true"
      return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    }
    var response: Response
    do {
      response = try await render(try await route.handler(self, request), requestID: request.requestID)
    } catch {
      response = errorResponse(error, requestID: request.requestID)
    }
    if response.status.code >= 500 {
      try? database.releaseIdempotencyKey(principal: principal, key: key)
      return response
    }
    // The answer is kept as sent; a streamed body is not replayable, so it is not stored.
    let collector = BufferCollector()
    try await response.body.write(collector)
    let collected = collector.buffer
    let contentType = response.headers[.contentType] ?? "application/json"
    try database.completeIdempotencyKey(
      principal: principal, key: key, status: Int(response.status.code), response: Data(buffer: collected), contentType: contentType)
    response.body = .init(byteBuffer: collected)
    return response
  }

  func render(_ result: APIResult, requestID: String) async throws -> Response {
    switch result {
    case .data(let status, let payload, let message, var headers):
      let envelope = Envelope(
        data: AnyPayload(payload), message: message, code: status, timestamp: APIJSON.timestamp(clock.now()), requestID: requestID)
      let data = try APIJSON.encoder.encode(envelope)
      headers[.contentType] = "application/json; charset=utf-8"
      return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
    case .encoded(let status, let data, let message):
      // The envelope's keys in the order the encoder sorts them, around the data as it is.
      let encoder = APIJSON.encoder
      var body = Data("{\"code\":\(status),\"data\":".utf8)
      body.append(data)
      body.append(contentsOf: Array(",\"message\":".utf8))
      body.append(try encoder.encode(message))
      body.append(contentsOf: Array(",\"request_id\":".utf8))
      body.append(try encoder.encode(requestID))
      body.append(contentsOf: Array(",\"success\":true,\"timestamp\":".utf8))
      body.append(try encoder.encode(APIJSON.timestamp(clock.now())))
      body.append(UInt8(ascii: "}"))
      var headers = HTTPFields()
      headers[.contentType] = "application/json; charset=utf-8"
      return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: body)))
    case .raw(let status, let contentType, let body, var headers):
      headers[.contentType] = contentType
      return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: body))
    case .response(let response):
      return response
    }
  }

  func errorResponse(_ error: any Error, requestID: String) -> Response {
    let qtoolError: any QtoolError
    if let error = error as? any QtoolError {
      qtoolError = error
    } else if error is DecodingError {
      qtoolError = ServerError.malformedJSON(error)
    } else if let error = error as? any HTTPResponseError, error.status == .contentTooLarge {
      qtoolError = ServerError.bodyTooLarge(limit: configuration.maxBodyBytes)
    } else {
      logger.error("internal error answering a request: \(error)", metadata: ["request_id": .string(requestID)])
      qtoolError = ServerError(.internal, code: "internal", "internal error (request \(requestID)); the server log has the details")
    }
    let report = qtoolError.report
    let status = qtoolError.category.httpStatus
    let envelope = ErrorEnvelope(
      error: .init(code: report.code, message: report.message, type: report.category, details: report.details, hint: report.hint),
      code: status, timestamp: APIJSON.timestamp(clock.now()), requestID: requestID)
    var headers = HTTPFields()
    headers[.contentType] = "application/json; charset=utf-8"
    if let retry = (qtoolError as? ServerError)?.retryAfter {
      headers[.retryAfter] = String(retry)
    } else if status == 429 || status == 503 {
      headers[.retryAfter] = "5"
    }
    let data = (try? APIJSON.encoder.encode(envelope)) ?? Data(#"{"success":false}"#.utf8)
    return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(data: data)))
  }

  // MARK: Helpers

  /// What makes two requests with one Idempotency-Key the same request.
  static func requestHash(method: String, path: String, query: [String: String], body: Data) -> String {
    var hasher = SHA256()
    let line = method + " " + path + "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: "&") + "\n"
    hasher.update(data: Data(line.utf8))
    hasher.update(data: body)
    return hasher.finalize().map { String(format: "%02x", $0) }.joined()
  }

  static func requestID(_ given: String?) -> String {
    if let given, !given.isEmpty, given.count <= 128, given.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) { return given }
    return "req_" + AuthOperations.randomHex(16)
  }

  /// `Authorization: Bearer T`, or `?access_token=T` / `?token=T` (EventSource and WebSocket
  /// clients in browsers cannot set headers).
  static func bearer(_ header: String?, query: [String: String]) -> String? {
    if let header {
      let parts = header.split(separator: " ", maxSplits: 1)
      if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
      return header.isEmpty ? nil : ""
    }
    return query["access_token"] ?? query["token"]
  }

  static func parseQuery(_ query: String?) -> [String: String] {
    guard let query, !query.isEmpty else { return [:] }
    var result: [String: String] = [:]
    for pair in query.split(separator: "&") {
      let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      func decode(_ text: Substring) -> String {
        String(text).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text)
      }
      let key = decode(parts[0])
      guard !key.isEmpty, result[key] == nil else { continue }
      result[key] = parts.count > 1 ? decode(parts[1]) : ""
    }
    return result
  }

  /// The path and query for logs, with tokens replaced by `REDACTED`.
  static func redacted(path: String, query: String?) -> String {
    guard let query, !query.isEmpty else { return path }
    let parts = query.split(separator: "&").map { pair -> String in
      let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
      return ["token", "access_token", "refresh_token", "password"].contains(key.lowercased()) ? "\(key)=REDACTED" : String(pair)
    }
    return path + "?" + parts.joined(separator: "&")
  }
}

/// Any payload, encoded as itself.
struct AnyPayload: Encodable, @unchecked Sendable {
  let value: any Encodable
  init(_ value: any Encodable) { self.value = value }
  func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
}

/// Collects a response body that was meant to be written to the client.
final class BufferCollector: ResponseBodyWriter, @unchecked Sendable {
  var buffer = ByteBuffer()
  func write(_ buffer: ByteBuffer) async throws {
    var copy = buffer
    self.buffer.writeBuffer(&copy)
  }
  func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
