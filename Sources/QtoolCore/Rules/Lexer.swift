/// Tokens of the rules language.
struct Token: Equatable {
  enum Kind: Equatable {
    case number(Double)
    case identifier(String)
    case symbol(String)  // ( ) [ ] , + - * / < <= > >= == !=
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
      if c.isWhitespace {
        i += 1
        continue
      }
      let start = i
      if c.isNumber || (c == "." && i + 1 < source.count && source[i + 1].isNumber) {
        while i < source.count, source[i].isNumber || source[i] == "." { i += 1 }
        if i < source.count, source[i] == "e" || source[i] == "E" {
          var j = i + 1
          if j < source.count, source[j] == "-" || source[j] == "+" { j += 1 }
          if j < source.count, source[j].isNumber {
            i = j
            while i < source.count, source[i].isNumber { i += 1 }
          }
        }
        let text = String(source[start..<i])
        guard let value = Double(text) else { throw error(at: start, "'\(text)' is not a number") }
        tokens.append(Token(kind: .number(value), offset: start, length: i - start))
        continue
      }
      if c.isLetter || c == "_" {
        while i < source.count, source[i].isLetter || source[i].isNumber || source[i] == "_" { i += 1 }
        tokens.append(Token(kind: .identifier(String(source[start..<i])), offset: start, length: i - start))
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

  func error(at offset: Int, _ message: String) -> RuleError {
    var line = 1
    var lineStart = 0
    for (index, character) in source.enumerated() where index < offset && character == "\n" {
      line += 1
      lineStart = index + 1
    }
    let lineEnd = source[lineStart...].firstIndex(of: "\n") ?? source.count
    return RuleError(
      origin: origin, line: line, column: offset - lineStart + 1, message: message, sourceLine: String(source[lineStart..<lineEnd]))
  }
}
