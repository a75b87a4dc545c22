/// What a name in qtool may be: symbols and dataset, strategy and model names are identifiers
/// made of the characters exchanges use in tickers — ASCII letters, digits, `.`, `_`, `-`, `^`
/// and `=` (`BRK.B`, `^GSPC`, `EURUSD=X`) — at most 64 of them, not starting with a dot. Such
/// a name is safe in a file name, a URL path and a terminal.
public enum Identifier {
  public static let maxLength = 64

  public enum Kind: String, Sendable {
    case symbol, dataset, strategy, model, source
  }

  public static func isAllowed(_ byte: UInt8) -> Bool {
    switch byte {
    case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
      UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "^"), UInt8(ascii: "="):
      return true
    default:
      return false
    }
  }

  /// Throws `InvalidName` unless `name` is an identifier.
  public static func check(_ name: String, as kind: Kind) throws {
    let bytes = Array(name.utf8)
    let valid = !bytes.isEmpty && bytes.count <= maxLength && bytes.allSatisfy(isAllowed) && bytes[0] != UInt8(ascii: ".")
    guard !valid else { return }
    var kept = String(decoding: bytes.filter(isAllowed).drop { $0 == UInt8(ascii: ".") }.prefix(maxLength), as: UTF8.self)
    if kept == name { kept = "" }
    throw InvalidName(kind: kind, name: name, suggestion: kept.isEmpty ? nil : kept)
  }
}

/// A name that is not an identifier; the message states the rule.
public struct InvalidName: QtoolError, Equatable {
  public var kind: Identifier.Kind
  public var name: String
  public var suggestion: String?

  public var category: ErrorCategory { .usage }
  public var code: String { "invalid_name" }
  public var message: String {
    // Never echo control characters or a megabyte of input back to the terminal.
    let shown = String(name.unicodeScalars.prefix(80).map { $0.value < 0x20 || $0.value == 0x7F ? "?" : Character($0) })
      + (name.unicodeScalars.count > 80 ? "…" : "")
    return "'\(shown)' is not a valid \(kind.rawValue) name: use letters, digits and . _ - ^ = (at most \(Identifier.maxLength), not starting with a dot)"
      + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
  }
  public var details: [String: JSONValue] { ["kind": .string(kind.rawValue), "suggestion": JSONValue(suggestion)] }
}
