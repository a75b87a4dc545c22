/// An error a user can act on, the same for the CLI and the server: a stable `code`, a
/// `category` that decides the exit code and the HTTP status, a `message` that names no
/// command-line flag (the server has none), structured `details`, and an optional `hint`
/// whose option names each front end renders its own way.
///
/// ```swift
/// struct GapsError: QtoolError {
///   var category: ErrorCategory { .invalidInput }
///   var code: String { "dataset_has_gaps" }
///   var message: String { "GOOG-1d has 3 gaps in that range" }
///   var hint: ErrorHint? { ErrorHint("fill them, or run anyway with {allow_gaps}") }
/// }
/// ```
public protocol QtoolError: Error, CustomStringConvertible {
  var category: ErrorCategory { get }
  /// Stable and snake_case: scripts and API clients match on it.
  var code: String { get }
  /// What went wrong, in a sentence, without flag names.
  var message: String { get }
  /// Field paths, positions, offending values.
  var details: [String: JSONValue] { get }
  var hint: ErrorHint? { get }
}

extension QtoolError {
  public var details: [String: JSONValue] { [:] }
  public var hint: ErrorHint? { nil }
  public var exitStatus: ExitStatus { category.exitStatus }
  /// The message and the hint with options named as request fields (for logs).
  public var description: String {
    guard let hint else { return message }
    return message + "; " + hint.rendered { $0 }
  }

  /// The structured form, as `--json` prints it on stderr and the server puts in its envelope.
  public var report: ErrorReport {
    ErrorReport(code: code, category: category, message: message, details: details, hint: hint?.rendered { $0 })
  }
}

/// What kind of failure an error is. This is the one table from category to exit code and to
/// HTTP status; the CLI and `serve` both read it.
public enum ErrorCategory: String, Codable, Sendable, CaseIterable {
  /// The request is malformed: an unknown option or field, a bad value.
  case usage
  /// The request is well formed but its content is not valid: a spec, a rule, a file of bars,
  /// data with gaps or damage.
  case invalidInput = "invalid_input"
  case notFound = "not_found"
  /// It exists already and replacing it was not asked for.
  case alreadyExists = "already_exists"
  /// Someone else holds what is needed (a dataset's lease, the store): retry later.
  case conflict
  case rateLimited = "rate_limited"
  /// A source or service failed in a way that may pass: retry later.
  case temporary
  /// A source or service refused for good, or does not exist.
  case unavailable
  case cannotWrite = "cannot_write"
  /// Cancelled on request (Ctrl-C, `jobs cancel`, the API).
  case cancelled
  /// Cancelled because the process was told to stop (SIGTERM).
  case terminated
  case `internal`
  case failure
  /// No credentials, or credentials that are wrong, expired or revoked (the server).
  case unauthorized
  /// Credentials that are valid but lack the permission (a token's scopes, a user's role).
  case forbidden
  /// A request body larger than the server accepts.
  case tooLarge = "too_large"
  /// The path exists but does not take that method (the server).
  case methodNotAllowed = "method_not_allowed"

  public var exitStatus: ExitStatus {
    switch self {
    case .usage: return .usage
    case .invalidInput: return .dataError
    case .notFound: return .noInput
    case .alreadyExists, .cannotWrite: return .cannotCreate
    case .conflict, .rateLimited, .temporary: return .temporaryFailure
    case .unavailable: return .unavailable
    case .cancelled: return .interrupted
    case .terminated: return .terminated
    case .internal: return .software
    case .failure: return .failure
    case .unauthorized, .forbidden: return .permissionDenied
    case .tooLarge: return .dataError
    case .methodNotAllowed: return .usage
    }
  }

  public var httpStatus: Int {
    switch self {
    case .usage: return 400
    case .invalidInput: return 422
    case .notFound: return 404
    case .alreadyExists, .conflict, .cancelled: return 409
    case .rateLimited: return 429
    case .temporary: return 503
    case .unavailable: return 502
    case .terminated: return 503
    case .cannotWrite, .internal, .failure: return 500
    case .unauthorized: return 401
    case .forbidden: return 403
    case .tooLarge: return 413
    case .methodNotAllowed: return 405
    }
  }
}

/// A suggestion that may name options of the request: `{allow_gaps}` is rendered by the CLI as
/// `--allow-gaps` and by the server as the field `allow_gaps`. `{{text}}` stands for `{text}` itself.
public struct ErrorHint: Sendable, Equatable, ExpressibleByStringInterpolation {
  public var template: String
  public init(_ template: String) { self.template = template }
  public init(stringLiteral value: String) { template = value }

  /// The hint with each `{name}` replaced by `option(name)`.
  public func rendered(option: (String) -> String) -> String {
    var result = ""
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
      result += rest[..<open]
      let inner = rest[rest.index(after: open)..<close]
      if inner.hasPrefix("{") {
        // `{{text}}`: the text in single braces, not an option.
        result += "{" + inner.dropFirst() + "}"
        rest = rest[rest.index(after: close)...]
        if rest.first == "}" { rest = rest.dropFirst() }
        continue
      }
      result += option(String(inner))
      rest = rest[rest.index(after: close)...]
    }
    return result + rest
  }
}

/// An error as data: `{"code", "category", "message", "details", "hint"}`.
public struct ErrorReport: Codable, Sendable, Equatable {
  public var code: String
  public var category: ErrorCategory
  public var message: String
  public var details: [String: JSONValue]
  public var hint: String?

  public init(code: String, category: ErrorCategory, message: String, details: [String: JSONValue] = [:], hint: String? = nil) {
    self.code = code
    self.category = category
    self.message = message
    self.details = details
    self.hint = hint
  }

  enum CodingKeys: String, CodingKey { case code, category, message, details, hint }
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(code, forKey: .code)
    try container.encode(category, forKey: .category)
    try container.encode(message, forKey: .message)
    try container.encode(details, forKey: .details)
    try container.encode(hint, forKey: .hint)  // null rather than absent: one shape for every error
  }
}

/// A stored or reported error rebuilt from its report (a job's error read back from the store).
public struct ReportedError: QtoolError, Equatable {
  public var report: ErrorReport
  public init(_ report: ErrorReport) { self.report = report }
  public var category: ErrorCategory { report.category }
  public var code: String { report.code }
  public var message: String { report.message }
  public var details: [String: JSONValue] { report.details }
  public var hint: ErrorHint? { report.hint.map { ErrorHint($0) } }
}
