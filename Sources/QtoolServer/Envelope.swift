import Foundation
import QtoolCore

/// The success envelope every JSON answer of `/api/v1` has:
/// `{success, data, message, code, timestamp, request_id}`.
public struct Envelope<Payload: Encodable>: Encodable {
  public var success = true
  public var data: Payload
  public var message: String
  /// The HTTP status.
  public var code: Int
  public var timestamp: String
  public var requestID: String

  enum CodingKeys: String, CodingKey { case success, data, message, code, timestamp, requestID = "request_id" }
}

/// A page of a list: `{items, total, page, size, pages}`.
public struct Page<Item: Encodable & Sendable>: Encodable, Sendable {
  public var items: [Item]
  public var total: Int
  public var page: Int
  public var size: Int
  public var pages: Int

  /// The `page`-th page (from 1) of `size` items of `all`.
  public init(_ all: [Item], page: Int, size: Int) {
    total = all.count
    self.page = page
    self.size = size
    pages = total == 0 ? 0 : (total + size - 1) / size
    let start = min(all.count, (page - 1) * size)
    items = Array(all[start..<min(all.count, start + size)])
  }

  public init(items: [Item], total: Int, page: Int, size: Int) {
    self.items = items
    self.total = total
    self.page = page
    self.size = size
    pages = total == 0 ? 0 : (total + size - 1) / size
  }
}

/// The error envelope: `{success: false, error: {code, message, type, details, hint}, code, timestamp, request_id}`.
/// `error.code` is the CLI's stable code, `error.type` the category (which decides the status).
public struct ErrorEnvelope: Codable, Sendable {
  public struct Body: Codable, Sendable {
    public var code: String
    public var message: String
    public var type: ErrorCategory
    public var details: [String: JSONValue]
    public var hint: String?
  }
  public var success = false
  public var error: Body
  public var code: Int
  public var timestamp: String
  public var requestID: String

  enum CodingKeys: String, CodingKey { case success, error, code, timestamp, requestID = "request_id" }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(success, forKey: .success)
    try container.encode(error, forKey: .error)
    try container.encode(code, forKey: .code)
    try container.encode(timestamp, forKey: .timestamp)
    try container.encode(requestID, forKey: .requestID)
  }
}

extension ErrorEnvelope.Body {
  enum CodingKeys: String, CodingKey { case code, message, type, details, hint }
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(code, forKey: .code)
    try container.encode(message, forKey: .message)
    try container.encode(type, forKey: .type)
    try container.encode(details, forKey: .details)
    try container.encode(hint, forKey: .hint)
  }
}

/// The one JSON encoder of the API: the same settings as the CLI's `--json` (sorted keys, no
/// escaped slashes), compact.
enum APIJSON {
  static let encoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return encoder
  }()

  static let decoder = JSONDecoder()

  static func timestamp(_ milliseconds: Int64) -> String { UTCCalendar.format(milliseconds, alwaysTime: true) }
}

/// Errors of the HTTP layer itself: routes, credentials, limits, bodies.
public struct ServerError: QtoolError, Equatable {
  public var category: ErrorCategory
  public var code: String
  public var message: String
  public var details: [String: JSONValue]
  public var hint: ErrorHint?
  /// Seconds a client should wait (429, 503): the `Retry-After` header.
  public var retryAfter: Int?

  public init(
    _ category: ErrorCategory, code: String, _ message: String, details: [String: JSONValue] = [:], hint: ErrorHint? = nil, retryAfter: Int? = nil
  ) {
    self.category = category
    self.code = code
    self.message = message
    self.details = details
    self.hint = hint
    self.retryAfter = retryAfter
  }

  static func routeNotFound(_ method: String, _ path: String) -> ServerError {
    ServerError(
      .notFound, code: "route_not_found", "no route \(method) \(path)", details: ["method": .string(method), "path": .string(path)],
      hint: "GET /api/v1/openapi.json lists the routes")
  }

  static func methodNotAllowed(_ method: String, _ path: String, allowed: [String]) -> ServerError {
    ServerError(
      .methodNotAllowed, code: "method_not_allowed", "\(path) does not take \(method); it takes \(allowed.joined(separator: ", "))",
      details: ["method": .string(method), "allowed": .array(allowed.map { .string($0) })])
  }

  static let missingCredentials = ServerError(
    .unauthorized, code: "unauthenticated", "this route needs credentials: an access token from login, or an API token",
    hint: "send the header Authorization: Bearer TOKEN (POST /api/v1/auth/login gives one)")

  static func invalidToken(_ reason: String, code: String = "invalid_token") -> ServerError {
    ServerError(.unauthorized, code: code, reason, hint: "log in again, or use a valid API token")
  }

  static func missingScope(_ scope: Scope, have: [String]) -> ServerError {
    ServerError(
      .forbidden, code: "missing_scope", "this route needs the scope \(scope.rawValue)",
      details: ["required": .string(scope.rawValue), "granted": .array(have.map { .string($0) })],
      hint: "use a token created with that scope, or a user whose role grants it")
  }

  static func bodyTooLarge(limit: Int) -> ServerError {
    ServerError(
      .tooLarge, code: "body_too_large", "the request body is larger than the limit of \(limit) bytes",
      details: ["limit_bytes": JSONValue(limit)], hint: "send less, or raise serve.max_body_mib")
  }

  static func malformedJSON(_ error: any Error) -> ServerError {
    var details: [String: JSONValue] = [:]
    var reason = "the body is not valid JSON"
    if let error = error as? DecodingError {
      let (path, text): ([any CodingKey], String) = {
        switch error {
        case .keyNotFound(let key, let context): return (context.codingPath + [key], "missing field")
        case .typeMismatch(let type, let context): return (context.codingPath, Self.expected(type, context.debugDescription))
        case .valueNotFound(let type, let context): return (context.codingPath, Self.expected(type, "found null"))
        case .dataCorrupted(let context): return (context.codingPath, context.debugDescription)
        @unknown default: return ([], "\(error)")
        }
      }()
      let field = path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
      details["field"] = .string(field.isEmpty ? "$" : field)
      reason = field.isEmpty ? "the body is not valid: \(text)" : "\(field): \(text)"
      if case .dataCorrupted(let context) = error, context.codingPath.isEmpty { reason = "the body is not valid JSON" }
    }
    return ServerError(.usage, code: "malformed_body", reason, details: details, hint: "GET /api/v1/openapi.json describes each body")
  }

  /// "expected a number, found a string" rather than Swift's type names.
  static func expected(_ type: Any.Type, _ description: String) -> String {
    let name = String(describing: type)
    let wanted: String
    switch name {
    case _ where name.hasPrefix("Dictionary"): wanted = "an object"
    case _ where name.hasPrefix("Array"): wanted = "an array"
    case "String": wanted = "a string"
    case "Bool": wanted = "true or false"
    case "Int", "Int64", "Int32", "UInt", "UInt64": wanted = "a whole number"
    case "Double", "Float", "Decimal": wanted = "a number"
    default: wanted = "a value of another type"
    }
    guard let found = description.range(of: "found ") else { return "expected \(wanted)" }
    let rest = description[found.upperBound...].replacingOccurrences(of: " instead.", with: "")
    let what =
      rest.hasPrefix("Dictionary") || rest == "a dictionary" ? "an object"
      : rest.hasPrefix("Array") || rest == "an array" ? "an array" : ["number", "string", "bool"].contains(rest) ? "a " + rest : rest
    return "expected \(wanted), found \(what)"
  }

  static func badParameter(_ name: String, _ reason: String) -> ServerError {
    ServerError(.usage, code: "invalid_parameter", "\(name): \(reason)", details: ["field": .string(name)])
  }

  static func rateLimited(_ limit: RateLimit, retryAfter: Int) -> ServerError {
    ServerError(
      .rateLimited, code: "rate_limited", "too many requests: the limit is \(limit)", details: ["limit": .string(limit.description)],
      hint: "retry after \(retryAfter) s", retryAfter: retryAfter)
  }
}
