/// Parses rule text into a typed expression.
///
/// Precedence, loosest first: `or`, `and`, `not`, comparisons, `+ -`, `* /`, unary `-`,
/// lag `[n]`. Identifiers are OHLCV columns, strategy parameters or function names.
public struct RuleParser {
  public static let columns = ["open", "high", "low", "close", "volume"]

  let lexer: Lexer
  let tokens: [Token]
  let parameters: [String: Double]
  var allowColumns = true
  /// Look-ahead functions (`forward_return`, `future`): only a model's label may use them.
  var allowLookahead = false
  /// `model("name")`: strategies may read models; a model's own features and label may not.
  var allowModels = true
  /// Arithmetic on conditions (read as 1 and 0): a multi-class label counts them.
  var allowConditionArithmetic = false
  var position = 0

  /// - parameters:
  ///   - origin: how errors name the rule, e.g. `rules.entry`.
  ///   - parameters: the strategy's params, usable as constants.
  ///   - allowLookahead: accept `forward_return` and `future`, and arithmetic on conditions
  ///     (read as 1 and 0): a model's label.
  ///   - allowModels: accept `model("name")`.
  public static func parse(
    _ text: String, origin: String, parameters: [String: Double], allowColumns: Bool = true, allowLookahead: Bool = false,
    allowModels: Bool = true
  ) throws -> Expression {
    let lexer = Lexer(text, origin: origin)
    var parser = RuleParser(
      lexer: lexer, tokens: try lexer.tokens(), parameters: parameters, allowColumns: allowColumns, allowLookahead: allowLookahead,
      allowModels: allowModels, allowConditionArithmetic: allowLookahead)
    guard parser.tokens.count > 1 else { throw lexer.error(at: 0, "empty rule") }
    let expression = try parser.parseOr()
    if case .end = parser.current.kind {} else { throw parser.error("unexpected \(parser.describe(parser.current)) after a complete expression") }
    return expression
  }

  var current: Token { tokens[position] }

  func error(_ message: String, at token: Token? = nil) -> RuleError { lexer.error(at: (token ?? current).offset, message) }

  func describe(_ token: Token) -> String {
    switch token.kind {
    case .number(let value): return "number \(value)"
    case .identifier(let name): return "'\(name)'"
    case .symbol(let symbol): return "'\(symbol)'"
    case .string(let text): return "the string \"\(text)\""
    case .end: return "end of rule"
    }
  }

  mutating func accept(_ symbol: String) -> Bool {
    switch current.kind {
    case .symbol(symbol), .identifier(symbol):
      position += 1
      return true
    default: return false
    }
  }

  mutating func expect(_ symbol: String, _ context: String) throws {
    guard accept(symbol) else { throw error("expected '\(symbol)' \(context), found \(describe(current))") }
  }

  mutating func parseOr() throws -> Expression {
    var lhs = try parseAnd()
    while true {
      let token = current
      guard accept("or") else { return lhs }
      let rhs = try parseAnd()
      try requireBoolean(lhs, "or", token)
      try requireBoolean(rhs, "or", token)
      lhs = .binary("or", lhs, rhs)
    }
  }

  mutating func parseAnd() throws -> Expression {
    var lhs = try parseNot()
    while true {
      let token = current
      guard accept("and") else { return lhs }
      let rhs = try parseNot()
      try requireBoolean(lhs, "and", token)
      try requireBoolean(rhs, "and", token)
      lhs = .binary("and", lhs, rhs)
    }
  }

  mutating func parseNot() throws -> Expression {
    let token = current
    if accept("not") {
      let inner = try parseNot()
      try requireBoolean(inner, "not", token)
      return .not(inner)
    }
    return try parseComparison()
  }

  mutating func parseComparison() throws -> Expression {
    let lhs = try parseAdditive()
    for op in ["<=", ">=", "==", "!=", "<", ">"] {
      let token = current
      if accept(op) {
        let rhs = try parseAdditive()
        try requireNumeric(lhs, op, token)
        try requireNumeric(rhs, op, token)
        return .binary(op, lhs, rhs)
      }
    }
    return lhs
  }

  mutating func parseAdditive() throws -> Expression {
    var lhs = try parseMultiplicative()
    while true {
      let token = current
      let op = accept("+") ? "+" : accept("-") ? "-" : nil
      guard let op else { return lhs }
      let rhs = try parseMultiplicative()
      try requireNumeric(lhs, op, token)
      try requireNumeric(rhs, op, token)
      lhs = Self.fold(op, lhs, rhs)
    }
  }

  mutating func parseMultiplicative() throws -> Expression {
    var lhs = try parseUnary()
    while true {
      let token = current
      let op = accept("*") ? "*" : accept("/") ? "/" : nil
      guard let op else { return lhs }
      let rhs = try parseUnary()
      try requireNumeric(lhs, op, token)
      try requireNumeric(rhs, op, token)
      lhs = Self.fold(op, lhs, rhs)
    }
  }

  mutating func parseUnary() throws -> Expression {
    let token = current
    if accept("-") {
      let inner = try parseUnary()
      try requireNumeric(inner, "-", token)
      if case .constant(let value) = inner { return .constant(-value) }
      return .negate(inner)
    }
    return try parsePostfix()
  }

  mutating func parsePostfix() throws -> Expression {
    var expression = try parsePrimary()
    while true {
      let open = current
      guard accept("[") else { return expression }
      guard case .number(let value) = current.kind, value >= 0, value == value.rounded() else {
        throw error("a lag needs a whole number of bars, e.g. close[1]")
      }
      position += 1
      try expect("]", "to close the lag")
      guard expression.type != .number else { throw error("only series can be lagged; \(expression) is a constant", at: open) }
      expression = value == 0 ? expression : .lag(expression, Int(value))
    }
  }

  mutating func parsePrimary() throws -> Expression {
    let token = current
    switch token.kind {
    case .number(let value):
      position += 1
      return .constant(value)
    case .symbol("("):
      position += 1
      let inner = try parseOr()
      try expect(")", "to close '('")
      return inner
    case .identifier(let name):
      position += 1
      if case .symbol("(") = current.kind {
        position += 1
        return try parseCall(name, token)
      }
      if allowColumns, Self.columns.contains(name) { return .column(name) }
      if let value = parameters[name] { return .constant(value) }
      if name == "true" { return .constant(1) }
      if name == "false" { return .constant(0) }
      if Functions.signature(name) != nil { throw error("'\(name)' is a function: call it, e.g. \(name)(close, 14)", at: token) }
      guard allowColumns else {
        throw error("unknown metric '\(name)'" + hint(name, parameters.keys.sorted()) + "; `qtool help metrics` lists them", at: token)
      }
      let candidates = Self.columns + parameters.keys.sorted()
      throw error("unknown name '\(name)'" + hint(name, candidates) + "; names are open, high, low, close, volume and the params", at: token)
    case .string:
      throw error("a quoted string is only the name in model(\"name\"); numbers and names are written without quotes")
    default:
      throw error("expected a value, found \(describe(token))")
    }
  }

  /// `model("name")`, after `model(`.
  mutating func parseModel(_ token: Token) throws -> Expression {
    guard allowModels else {
      throw error("model() reads another model's predictions; a model's features and label are computed from the bars only", at: token)
    }
    guard case .string(let name) = current.kind, !name.isEmpty else {
      throw error("model takes the model's name in quotes, e.g. model(\"goog-up\"); found \(describe(current))")
    }
    position += 1
    try expect(")", "to close the call to model")
    return .model(name)
  }

  mutating func parseCall(_ name: String, _ token: Token) throws -> Expression {
    if name == "model" { return try parseModel(token) }
    guard let signature = Functions.signature(name) else {
      throw error("unknown function '\(name)'" + hint(name, Array(Functions.all.keys) + ["model"]), at: token)
    }
    if Functions.lookahead[name] != nil, !allowLookahead {
      throw error(
        "\(name) reads bars after the one it is computed on (look-ahead): it is allowed only in a model's label, never in a strategy's rules or a feature",
        at: token)
    }
    var arguments: [Expression] = []
    if !accept(")") {
      repeat {
        arguments.append(try parseOr())
      } while accept(",")
      try expect(")", "to close the call to \(name)")
    }
    let required = signature.arguments.count - signature.optional.count
    guard arguments.count >= required, arguments.count <= signature.arguments.count else {
      let expected = required == signature.arguments.count ? "\(required)" : "\(required) to \(signature.arguments.count)"
      throw error("\(name) takes \(expected) arguments, got \(arguments.count)", at: token)
    }
    for (index, argument) in arguments.enumerated() {
      let wanted = signature.arguments[index]
      if wanted == .number {
        guard case .constant(let value) = argument, value >= 1, value == value.rounded() else {
          throw error("argument \(index + 1) of \(name) must be a whole-number period (a literal or a param), got \(argument)", at: token)
        }
      } else if argument.type == .boolean {
        throw error("argument \(index + 1) of \(name) must be a number or series, not a condition", at: token)
      }
    }
    let missing = signature.arguments.count - arguments.count
    arguments += signature.optional.suffix(missing).map { Expression.constant($0) }
    return .call(name, arguments)
  }

  func hint(_ name: String, _ candidates: [String]) -> String {
    Similarity.closest(to: name, among: candidates).map { " — did you mean '\($0)'?" } ?? ""
  }

  func requireBoolean(_ expression: Expression, _ op: String, _ token: Token) throws {
    guard expression.type == .boolean else { throw error("'\(op)' needs conditions on both sides; \(expression) is a number", at: token) }
  }

  func requireNumeric(_ expression: Expression, _ op: String, _ token: Token) throws {
    guard expression.type != .boolean || (allowConditionArithmetic && ["+", "-", "*"].contains(op)) else {
      throw error("'\(op)' needs numbers; \(expression) is a condition", at: token)
    }
  }

  /// Folds arithmetic on constants, so `fast * 2` is a constant period.
  static func fold(_ op: String, _ lhs: Expression, _ rhs: Expression) -> Expression {
    guard case .constant(let a) = lhs, case .constant(let b) = rhs else { return .binary(op, lhs, rhs) }
    switch op {
    case "+": return .constant(a + b)
    case "-": return .constant(a - b)
    case "*": return .constant(a * b)
    default: return .constant(a / b)
    }
  }
}
