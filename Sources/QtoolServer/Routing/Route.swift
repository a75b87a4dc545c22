import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QtoolCore
import QtoolEngine

/// A request as a handler sees it: path parameters, query, the body once read, who asks.
struct APIRequest: Sendable {
  var method: String
  var path: String
  var parameters: [String: String]
  var query: [String: String]
  var headers: HTTPFields
  var body: ByteBuffer?
  var principal: Principal?
  var requestID: String
  var client: String

  func parameter(_ name: String) -> String { parameters[name] ?? "" }

  /// The body decoded as `T`; malformed JSON is a 400 naming the field.
  func decode<T: Decodable>(_ type: T.Type) throws -> T {
    guard let body, body.readableBytes > 0 else {
      throw ServerError(.usage, code: "missing_body", "this route needs a JSON body", hint: "GET /api/v1/openapi.json describes it")
    }
    do {
      return try APIJSON.decoder.decode(T.self, from: Data(buffer: body))
    } catch let error as any QtoolError {
      throw error
    } catch {
      throw ServerError.malformedJSON(error)
    }
  }

  var bodyData: Data { body.map { Data(buffer: $0) } ?? Data() }

  func string(_ name: String) -> String? { query[name].flatMap { $0.isEmpty ? nil : $0 } }

  func int(_ name: String, default value: Int, in range: ClosedRange<Int>) throws -> Int {
    guard let text = query[name] else { return value }
    guard let number = Int(text), range.contains(number) else {
      throw ServerError.badParameter(name, "a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
    }
    return number
  }

  func bool(_ name: String) throws -> Bool {
    guard let text = query[name] else { return false }
    switch text.lowercased() {
    case "", "1", "true", "yes": return true
    case "0", "false", "no": return false
    default: throw ServerError.badParameter(name, "true or false, not '\(text)'")
    }
  }

  /// `page` (from 1) and `size` (1 to 500, default 50).
  func paging() throws -> (page: Int, size: Int) {
    (try int("page", default: 1, in: 1...1_000_000), try int("size", default: 50, in: 1...500))
  }
}

/// What a handler answers.
enum APIResult: Sendable {
  /// JSON in the success envelope.
  case data(status: Int, payload: any Encodable & Sendable, message: String, headers: HTTPFields)
  /// `data` already encoded as JSON (a cached answer's), put in the success envelope as it is.
  case encoded(status: Int, data: Data, message: String)
  /// A body as it is (CSV, SVG, HTML, an archive, the OpenAPI document, metrics).
  case raw(status: Int, contentType: String, body: ByteBuffer, headers: HTTPFields)
  /// A response that streams (SSE, exports).
  case response(Response)

  static func ok(_ payload: any Encodable & Sendable, message: String = "ok") -> APIResult {
    .data(status: 200, payload: payload, message: message, headers: [:])
  }

  static func created(_ payload: any Encodable & Sendable, location: String? = nil, message: String = "created") -> APIResult {
    var headers = HTTPFields()
    if let location { headers[.location] = location }
    return .data(status: 201, payload: payload, message: message, headers: headers)
  }

  static func text(_ text: String, contentType: String, status: Int = 200) -> APIResult {
    .raw(status: status, contentType: contentType, body: ByteBuffer(string: text), headers: [:])
  }
}

typealias Handler = @Sendable (APIService, APIRequest) async throws -> APIResult

/// One route of the table: method, path pattern, what it needs, its handler. The same table
/// drives dispatch, authorization, rate limits, the audit log and the test that holds the
/// OpenAPI document to it.
struct Route: Sendable {
  enum Segment: Sendable, Equatable {
    case literal(String)
    case parameter(String)
    /// `{id}:cancel`: a parameter followed by a colon action.
    case action(String, suffix: String)
  }

  var method: String
  var pattern: String
  var segments: [Segment]
  /// nil: no credentials needed (health, login, the document, the dashboard page).
  var scope: Scope?
  /// Needs a principal but no particular scope (`auth/me`).
  var authenticated: Bool
  var rateClass: RateClass
  /// The OpenAPI operationId.
  var operationID: String
  var handler: Handler

  init(
    _ method: String, _ pattern: String, _ operationID: String, scope: Scope?, authenticated: Bool? = nil, rate: RateClass = .default,
    handler: @escaping Handler
  ) {
    self.method = method
    self.pattern = pattern
    self.operationID = operationID
    self.scope = scope
    self.authenticated = authenticated ?? (scope != nil)
    rateClass = rate
    self.handler = handler
    segments = pattern.split(separator: "/", omittingEmptySubsequences: true).map { part in
      let text = String(part)
      if text.hasPrefix("{"), let close = text.firstIndex(of: "}") {
        let name = String(text[text.index(after: text.startIndex)..<close])
        let rest = String(text[text.index(after: close)...])
        return rest.isEmpty ? .parameter(name) : .action(name, suffix: rest)
      }
      return .literal(text)
    }
  }

  /// Path parameters when `components` (percent-decoded) match, else nil.
  func match(_ components: [Substring]) -> [String: String]? {
    guard components.count == segments.count else { return nil }
    var parameters: [String: String] = [:]
    for (segment, component) in zip(segments, components) {
      switch segment {
      case .literal(let text):
        guard component == text else { return nil }
      case .parameter(let name):
        guard !component.isEmpty, !component.contains(":") else { return nil }
        parameters[name] = String(component).removingPercentEncoding ?? String(component)
      case .action(let name, let suffix):
        guard component.hasSuffix(suffix), component.count > suffix.count else { return nil }
        let value = component.dropLast(suffix.count)
        parameters[name] = String(value).removingPercentEncoding ?? String(value)
      }
    }
    return parameters
  }

  /// Literal segments first: `/backtests/compare` before `/backtests/{id}`.
  var specificity: Int {
    segments.reduce(0) { total, segment in
      switch segment {
      case .literal: return total * 3 + 2
      case .action: return total * 3 + 1
      case .parameter: return total * 3
      }
    }
  }

  /// Writes change state: they go to the audit log and may carry an Idempotency-Key.
  var isWrite: Bool { method != "GET" && method != "HEAD" }
}

/// The routes, with lookup by method and path.
struct RouteTable: Sendable {
  let routes: [Route]

  init(_ routes: [Route]) { self.routes = routes.sorted { $0.specificity > $1.specificity } }

  enum Lookup {
    case found(Route, [String: String])
    case methodNotAllowed([String])
    case notFound
  }

  func lookup(method: String, path: String) -> Lookup {
    let components = path.split(separator: "/", omittingEmptySubsequences: true)
    var allowed: [String] = []
    for route in routes {
      guard let parameters = route.match(components) else { continue }
      if route.method == method || (method == "HEAD" && route.method == "GET") { return .found(route, parameters) }
      if !allowed.contains(route.method) { allowed.append(route.method) }
    }
    return allowed.isEmpty ? .notFound : .methodNotAllowed(allowed)
  }
}
