import QtoolCore

/// Errors about the request rather than a domain: a bad argument, a file that exists, one
/// that is missing, an output that cannot be written.
public struct OperationError: QtoolError, Equatable {
  public var category: ErrorCategory
  public var code: String
  public var message: String
  public var details: [String: JSONValue]
  public var hint: ErrorHint?

  public init(_ category: ErrorCategory, code: String, _ message: String, details: [String: JSONValue] = [:], hint: ErrorHint? = nil) {
    self.category = category
    self.code = code
    self.message = message
    self.details = details
    self.hint = hint
  }

  /// A value of the request that cannot be used; `field` is its name in the request.
  public static func invalidArgument(_ message: String, field: String? = nil, hint: ErrorHint? = nil) -> OperationError {
    OperationError(.usage, code: "invalid_argument", message, details: field.map { ["field": .string($0)] } ?? [:], hint: hint)
  }

  /// An output file exists and replacing it was not asked for.
  public static func alreadyExists(path: String) -> OperationError {
    OperationError(
      .alreadyExists, code: "file_exists", "\(path) exists", details: ["path": .string(path)], hint: "replace it with {force}, or choose another path")
  }

  public static func notFound(_ message: String, code: String = "not_found", details: [String: JSONValue] = [:], hint: ErrorHint? = nil)
    -> OperationError
  {
    OperationError(.notFound, code: code, message, details: details, hint: hint)
  }

  public static func cannotWrite(_ message: String, path: String? = nil) -> OperationError {
    OperationError(.cannotWrite, code: "cannot_write", message, details: path.map { ["path": .string($0)] } ?? [:])
  }

  /// Refuses `from` at or after `to`: an empty range is a mistake, not a request for nothing.
  public static func checkRange(from: Int64?, to: Int64?) throws {
    guard let from, let to, from >= to else { return }
    throw OperationError(
      .usage, code: "empty_range",
      "the range starts at \(UTCCalendar.format(from)) and ends at \(UTCCalendar.format(to)), so it holds nothing",
      details: ["from": .string(UTCCalendar.format(from, alwaysTime: true)), "to": .string(UTCCalendar.format(to, alwaysTime: true))],
      hint: "{from} must come before {to} (which is exclusive)")
  }

  /// Data that cannot be used for what was asked (too short, no common bars).
  public static func invalidInput(_ message: String, code: String, details: [String: JSONValue] = [:], hint: ErrorHint? = nil) -> OperationError {
    OperationError(.invalidInput, code: code, message, details: details, hint: hint)
  }
}
