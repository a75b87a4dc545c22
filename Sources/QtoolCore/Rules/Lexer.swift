/// Tokens of the rules language.
struct Token: Equatable {
  enum Kind: Equatable {
    case number(Double)
    case identifier(String)
    case symbol(String)  // ( ) [ ] , + - * / < <= > >= == !=
    /// A quoted string, e.g. the name in `model("goog-up")`.
    case string(String)
    case end
  }

  var kind: Kind
  /// Offset in the source, in characters.
  var offset: Int
  var length: Int
}

struct Lexer {
  let source: [Character]
  let origin: String

  init(_ text: String, origin: String) {
    source = Array(text)
    self.origin = origin
  }

  func tokens() throws -> [Token] {
    var tokens: [Token] = []
    var i = 0
    while i < source.count {
      let c = source[i]
      if Self.isSpace(c) {
        i += 1
        continue
      }
      let start = i
      if Self.isDigit(c) || (c == "." && i + 1 < source.count && Self.isDigit(source[i + 1])) {
        while i < source.count, Self.isDigit(source[i]) || source[i] == "." { i += 1 }
        if i < source.count, source[i] == "e" || source[i] == "E" {
          var j = i + 1
          if j < source.count, source[j] == "-" || source[j] == "+" { j += 1 }
          if j < source.count, Self.isDigit(source[j]) {
            i = j
            while i < source.count, Self.isDigit(source[i]) { i += 1 }
          }
        }
        let text = String(source[start..<i])
        guard let value = Double(text) else { throw error(at: start, "'\(text)' is not a number") }
        tokens.append(Token(kind: .number(value), offset: start, length: i - start))
        continue
      }
      if Self.isLetter(c) || c == "_" {
        while i < source.count, Self.isLetter(source[i]) || Self.isDigit(source[i]) || source[i] == "_" { i += 1 }
        tokens.append(Token(kind: .identifier(String(source[start..<i])), offset: start, length: i - start))
        continue
      }
      if c == "\"" || c == "'" {
        i += 1
        while i < source.count, source[i] != c, !source[i].isNewline { i += 1 }
        guard i < source.count, source[i] == c else { throw error(at: start, "a string opened with \(c) is not closed on its line") }
        tokens.append(Token(kind: .string(String(source[(start + 1)..<i])), offset: start, length: i + 1 - start))
        i += 1
        continue
      }
      let two = i + 1 < source.count ? String(source[i...i + 1]) : ""
      if ["<=", ">=", "==", "!=", "&&", "||"].contains(two) {
        let symbol = two == "&&" ? "and" : two == "||" ? "or" : two
        tokens.append(Token(kind: symbol == "and" || symbol == "or" ? .identifier(symbol) : .symbol(symbol), offset: start, length: 2))
        i += 2
        continue
      }
      guard "()[],+-*/<>".contains(c) else { throw error(at: start, "unexpected character '\(c)'") }
      tokens.append(Token(kind: .symbol(String(c)), offset: start, length: 1))
      i += 1
    }
    tokens.append(Token(kind: .end, offset: source.count, length: 0))
    return tokens
  }

  // ASCII answered without Unicode property tables: a grid compiles its rules once per
  // combination, and the lookups were most of that.
  @inline(__always) static func isSpace(_ c: Character) -> Bool {
    if let a = c.asciiValue { return a == 32 || (9...13).contains(a) }
    return c.isWhitespace
  }

  @inline(__always) static func isDigit(_ c: Character) -> Bool {
    if let a = c.asciiValue { return (48...57).contains(a) }
    return c.isNumber
  }

  @inline(__always) static func isLetter(_ c: Character) -> Bool {
    if let a = c.asciiValue { return (97...122).contains(a | 0x20) }
    return c.isLetter
  }

  /// The source text of a token, as written.
  func text(of token: Token) -> String { text(from: token.offset, to: token.offset + token.length) }

  /// The source text from one offset to another (in characters).
  func text(from start: Int, to end: Int) -> String {
    String(source[max(0, min(start, source.count))..<max(0, min(end, source.count))])
  }

  func error(at offset: Int, _ message: String) -> RuleError {
    var line = 1
    var lineStart = 0
    // isNewline: "\r\n" is one Character, not "\n" — a condition with CRLF line ends.
    for (index, character) in source.enumerated() where index < offset && character.isNewline {
      line += 1
      lineStart = index + 1
    }
    let lineEnd = source[lineStart...].firstIndex(where: \.isNewline) ?? source.count
    return RuleError(
      origin: origin, line: line, column: offset - lineStart + 1, message: message, sourceLine: String(source[lineStart..<lineEnd]))
  }
}
