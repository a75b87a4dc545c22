/// Parses rule text into a typed expression.
///
/// Precedence, loosest first: `or`, `and`, `not`, comparisons, `+ -`, `* /`, unary `-`,
/// lag `[n]`. Identifiers are OHLCV columns, strategy parameters or function names.
///
/// Limits that keep every walk over a rule bounded: parentheses, calls and unary operators
/// nest at most `maxDepth` deep, and so does the tree (a chain of 300 `+` is 300 deep). Parsing
/// is linear in the length of the rule: each node's type is worked out once, as it is built.
public struct RuleParser {
  public static let columns = ["open", "high", "low", "close", "volume"]
  /// How deep a rule may nest; past it, a RuleError (not a stack overflow).
  public static let maxDepth = 256
  /// The largest period (`sma(close, n)`) or lag (`close[n]`), in bars.
  public static let maxBars = 1_000_000

  let lexer: Lexer
  let tokens: [Token]
  let parameters: [String: Double]
  /// False for a condition on named numbers (`parseCondition`): no OHLCV, no indicators but
  /// abs, min and max, no lags; each name is a slot for its value.
  var allowColumns = true
  /// Look-ahead functions (`forward_return`, `future`): only a model's label may use them.
  var allowLookahead = false
  /// `model("name")`: strategies may read models; a model's own features and label may not.
  var allowModels = true
  /// Arithmetic on conditions (read as 1 and 0): a multi-class label counts them.
  var allowConditionArithmetic = false
  /// Feature columns of the data the rule runs on (`data preprocess --op 'features …'`).
  var featureColumns: [String] = []
  /// Any other name is read as a feature column, checked once the data is known
  /// (`CompiledStrategy.checkColumns`): a strategy is parsed before its data is loaded.
  var allowAnyFeature = false
  /// What a condition's names are (`parseCondition`): "metric" for an assertion or a grid's
  /// results, "param" for the combinations a grid runs.
  var conditionNames = "metric"
  /// Names a condition may not read because they name two things, with why.
  var ambiguousNames: [String: String] = [:]
  var position = 0
  /// Parentheses, calls, `-` and `not` the parser is inside of.
  var nesting = 0

  /// An expression with its type and the depth of its tree, known without walking it.
  struct Typed {
    var expression: Expression
    var type: Expression.ValueType
    var depth: Int
  }

  /// A condition over named numbers given with a request (a grid's `where`, an assertion), not
  /// read from a spec: its mistakes are the caller's usage errors. Each name is read as a
  /// column of that name (`NamedCondition` binds them), so one parse serves every row of
  /// values and errors name the names, not whatever values they had.
  /// `kind` says what the names are ("metric" or "param"), for the errors' sake; the result
  /// must be a condition, not a number that would pass as true whenever it is not 0.
  static func parseCondition(
    _ text: String, origin: String, names: [String], kind: String = "metric", ambiguous: [String: String] = [:]
  ) throws -> Expression {
    do {
      let lexer = Lexer(text, origin: origin)
      let slots = Dictionary(names.map { ($0, 0.0) }) { first, _ in first }
      var parser = RuleParser(lexer: lexer, tokens: try lexer.tokens(), parameters: slots, allowColumns: false)
      parser.conditionNames = kind
      parser.ambiguousNames = ambiguous
      let example = kind == "param" ? "fast < slow" : "sharpe > 1"
      let expression = try parser.parseWhole(empty: "empty condition; write e.g. \(example)")
      guard expression.type == .boolean else { throw lexer.error(at: 0, "'\(text)' is not a condition; write e.g. \(example)") }
      return expression.expression
    } catch var error as RuleError {
      error.category = .usage
      throw error
    }
  }

  /// - parameters:
  ///   - origin: how errors name the rule, e.g. `rules.entry`.
  ///   - parameters: the strategy's params, usable as constants.
  ///   - allowLookahead: accept `forward_return` and `future`, and arithmetic on conditions
  ///     (read as 1 and 0): a model's label.
  ///   - allowModels: accept `model("name")`.
  ///   - featureColumns: the names of the data's feature columns, read like `close`.
  ///   - allowAnyFeature: read any unknown name as a feature column, to be checked against
  ///     the data later.
  ///   - allowConditionArithmetic: accept `+ - *` on conditions (read as 1 and 0) without
  ///     lookahead: a signal's strength, e.g. `(rsi(close, 14) < 30) * 50 + 50`.
  public static func parse(
    _ text: String, origin: String, parameters: [String: Double], allowColumns: Bool = true, allowLookahead: Bool = false,
    allowModels: Bool = true, featureColumns: [String] = [], allowAnyFeature: Bool = false, allowConditionArithmetic: Bool = false
  ) throws -> Expression {
    let lexer = Lexer(text, origin: origin)
    var parser = RuleParser(
      lexer: lexer, tokens: try lexer.tokens(), parameters: parameters, allowColumns: allowColumns, allowLookahead: allowLookahead,
      allowModels: allowModels, allowConditionArithmetic: allowLookahead || allowConditionArithmetic, featureColumns: featureColumns,
      allowAnyFeature: allowAnyFeature)
    return try parser.parseWhole(empty: "empty rule").expression
  }

  /// The whole text as one expression: not empty, nothing after it.
  mutating func parseWhole(empty: String) throws -> Typed {
    guard tokens.count > 1 else { throw lexer.error(at: 0, empty) }
    let expression = try parseOr()
    if case .end = current.kind {} else { throw error("unexpected \(describe(current)) after a complete expression") }
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

  func tooDeep(_ token: Token) -> RuleError {
    error(
      "the rule nests more than \(Self.maxDepth) levels deep (parentheses, calls, or a chain of operators); split it into simpler rules",
      at: token)
  }

  /// Runs `body` one level deeper, refusing to go past `maxDepth`.
  mutating func nested<T>(_ token: Token, _ body: (inout RuleParser) throws -> T) throws -> T {
    guard nesting < Self.maxDepth else { throw tooDeep(token) }
    nesting += 1
    defer { nesting -= 1 }
    return try body(&self)
  }

  /// A node over `children`, with its depth checked.
  func node(_ expression: Expression, _ type: Expression.ValueType, _ children: Typed..., at token: Token) throws -> Typed {
    let depth = 1 + (children.map(\.depth).max() ?? 0)
    guard depth <= Self.maxDepth else { throw tooDeep(token) }
    return Typed(expression: expression, type: type, depth: depth)
  }

  mutating func parseOr() throws -> Typed {
    var lhs = try parseAnd()
    while true {
      let token = current
      guard accept("or") else { return lhs }
      let rhs = try parseAnd()
      try requireBoolean(lhs, "or", token)
      try requireBoolean(rhs, "or", token)
      lhs = try node(.binary("or", lhs.expression, rhs.expression), .boolean, lhs, rhs, at: token)
    }
  }

  mutating func parseAnd() throws -> Typed {
    var lhs = try parseNot()
    while true {
      let token = current
      guard accept("and") else { return lhs }
      let rhs = try parseNot()
      try requireBoolean(lhs, "and", token)
      try requireBoolean(rhs, "and", token)
      lhs = try node(.binary("and", lhs.expression, rhs.expression), .boolean, lhs, rhs, at: token)
    }
  }

  mutating func parseNot() throws -> Typed {
    let token = current
    if accept("not") {
      let inner = try nested(token) { try $0.parseNot() }
      try requireBoolean(inner, "not", token)
      return try node(.not(inner.expression), .boolean, inner, at: token)
    }
    return try parseComparison()
  }

  mutating func parseComparison() throws -> Typed {
    let lhs = try parseAdditive()
    for op in ["<=", ">=", "==", "!=", "<", ">"] {
      let token = current
      if accept(op) {
        let rhs = try parseAdditive()
        try requireNumeric(lhs, op, token)
        try requireNumeric(rhs, op, token)
        return try node(.binary(op, lhs.expression, rhs.expression), .boolean, lhs, rhs, at: token)
      }
    }
    return lhs
  }

  mutating func parseAdditive() throws -> Typed {
    var lhs = try parseMultiplicative()
    while true {
      let token = current
      let op = accept("+") ? "+" : accept("-") ? "-" : nil
      guard let op else { return lhs }
      let rhs = try parseMultiplicative()
      try requireNumeric(lhs, op, token)
      try requireNumeric(rhs, op, token)
      lhs = try fold(op, lhs, rhs, at: token)
    }
  }

  mutating func parseMultiplicative() throws -> Typed {
    var lhs = try parseUnary()
    while true {
      let token = current
      let op = accept("*") ? "*" : accept("/") ? "/" : nil
      guard let op else { return lhs }
      let rhs = try parseUnary()
      try requireNumeric(lhs, op, token)
      try requireNumeric(rhs, op, token)
      lhs = try fold(op, lhs, rhs, at: token)
    }
  }

  mutating func parseUnary() throws -> Typed {
    let token = current
    if accept("-") {
      let inner = try nested(token) { try $0.parseUnary() }
      try requireNumeric(inner, "-", token)
      if case .constant(let value) = inner.expression { return Typed(expression: .constant(-value), type: .number, depth: 0) }
      return try node(.negate(inner.expression), .series, inner, at: token)
    }
    return try parsePostfix()
  }

  mutating func parsePostfix() throws -> Typed {
    var expression = try parsePrimary()
    while true {
      let open = current
      guard accept("[") else { return expression }
      guard allowColumns else {
        throw error("a condition on \(conditionNames)s has no bars to look back over; drop the [n]", at: open)
      }
      guard case .number(let value) = current.kind else { throw error("a lag needs a whole number of bars, e.g. close[1]") }
      guard value >= 0, value <= Double(Self.maxBars), value == value.rounded() else {
        throw error("a lag needs a whole number of bars from 0 to 1,000,000, e.g. close[1]; got \(lexer.text(of: current))")
      }
      position += 1
      try expect("]", "to close the lag")
      let isFlag = { if case .flag = expression.expression { return true } else { return false } }()
      guard expression.type != .number, !isFlag else { throw error("only series can be lagged; \(expression.expression) is a constant", at: open) }
      // A condition n bars ago is still a condition: (close > open)[1] reads yesterday's.
      if value != 0 {
        expression = try node(.lag(expression.expression, Int(value)), expression.type == .boolean ? .boolean : .series, expression, at: open)
      }
    }
  }

  mutating func parsePrimary() throws -> Typed {
    let token = current
    switch token.kind {
    case .number(let value):
      position += 1
      return Typed(expression: .constant(value), type: .number, depth: 0)
    case .symbol("("):
      position += 1
      let inner = try nested(token) { try $0.parseOr() }
      try expect(")", "to close '('")
      return inner
    case .identifier(let name) where name == "and" || name == "or":
      // `and trades > 0`: the operand before it is missing, not a name unknown.
      throw error("expected a value before '\(name)', found none")
    case .identifier(let name):
      position += 1
      if case .symbol("(") = current.kind {
        // A condition on numbers has no bars for an indicator to run over: sma(sharpe, 3) was
        // always undefined, so always false.
        if !allowColumns, parameters[name] != nil {
          throw error("'\(name)' is a \(conditionNames), not a function; compare it, e.g. \(name) > 1", at: token)
        }
        guard allowColumns || ["abs", "min", "max"].contains(name) || Functions.signature(name) == nil else {
          throw error("'\(name)' runs over bars; a condition here compares \(conditionNames)s (abs, min and max work on them)", at: token)
        }
        position += 1
        return try nested(token) { try $0.parseCall(name, token) }
      }
      if allowColumns, Self.columns.contains(name) { return Typed(expression: .column(name), type: .series, depth: 0) }
      if let why = ambiguousNames[name] { throw error(why, at: token) }
      if let value = parameters[name] {
        // In a condition on named numbers a name is a slot for its value, bound row by row.
        return Typed(expression: allowColumns ? .constant(value) : .column(name), type: .number, depth: 0)
      }
      if name == "true" || name == "false" { return Typed(expression: .flag(name == "true"), type: .boolean, depth: 0) }
      if Functions.signature(name) != nil { throw error("'\(name)' is a function: call it, e.g. \(name)(close, 14)", at: token) }
      guard allowColumns else {
        throw error(
          conditionNames == "param"
            ? "unknown param '\(name)'" + hint(name, parameters.keys.sorted())
              + "; here --where picks combinations by the strategy's params (\(parameters.keys.sorted().joined(separator: ", "))) — filter results by their metrics with `qtool backtest grid show GRID --where`"
            : "unknown metric '\(name)'" + hint(name, parameters.keys.sorted()) + "; `qtool help metrics` lists them", at: token)
      }
      if allowAnyFeature || featureColumns.contains(name) { return Typed(expression: .column(name), type: .series, depth: 0) }
      let candidates = Self.columns + parameters.keys.sorted() + featureColumns
      let features = featureColumns.isEmpty ? "" : ", the data's feature columns (\(featureColumns.sorted().joined(separator: ", ")))"
      throw error(
        "unknown name '\(name)'" + hint(name, candidates) + "; names are open, high, low, close, volume\(features) and the params", at: token)
    case .string:
      throw error("a quoted string is only the name in model(\"name\"); numbers and names are written without quotes")
    default:
      throw error("expected a value, found \(describe(token))")
    }
  }

  /// `model("name")`, after `model(`.
  mutating func parseModel(_ token: Token) throws -> Typed {
    guard allowModels else {
      throw error("model() reads another model's predictions; a model's features and label are computed from the bars only", at: token)
    }
    guard case .string(let name) = current.kind, !name.isEmpty else {
      throw error("model takes the model's name in quotes, e.g. model(\"goog-up\"); found \(describe(current))")
    }
    position += 1
    try expect(")", "to close the call to model")
    return Typed(expression: .model(name), type: .series, depth: 1)
  }

  mutating func parseCall(_ name: String, _ token: Token) throws -> Typed {
    if name == "model" { return try parseModel(token) }
    guard let signature = Functions.signature(name) else {
      throw error("unknown function '\(name)'" + hint(name, Array(Functions.all.keys) + ["model"]), at: token)
    }
    if Functions.lookahead[name] != nil, !allowLookahead {
      throw error(
        "\(name) reads bars after the one it is computed on (look-ahead): it is allowed only in a model's label, never in a strategy's rules or a feature",
        at: token)
    }
    var arguments: [Typed] = []
    /// Where each argument starts and ends in the source, for errors that quote it.
    var spans: [(first: Token, end: Int)] = []
    if !accept(")") {
      repeat {
        let first = current
        arguments.append(try parseOr())
        let last = tokens[position - 1]
        spans.append((first, last.offset + last.length))
      } while accept(",")
      try expect(")", "to close the call to \(name)")
    }
    let required = signature.arguments.count - signature.optional.count
    guard arguments.count >= required, arguments.count <= signature.arguments.count else {
      let expected = required == signature.arguments.count ? "\(required)" : "\(required) to \(signature.arguments.count)"
      throw error("\(name) takes \(expected) argument\(expected == "1" ? "" : "s"), got \(arguments.count)", at: token)
    }
    for (index, argument) in arguments.enumerated() {
      let wanted = signature.arguments[index]
      if wanted == .number, Functions.isWidth(name, argument: index) {
        guard case .constant(let value) = argument.expression, value.isFinite, value > 0 else {
          let text = lexer.text(from: spans[index].first.offset, to: spans[index].end)
          throw error("argument \(index + 1) of \(name) is a width: a positive number such as 2 or 2.5 (a literal or a param), got \(text)", at: spans[index].first)
        }
      } else if wanted == .number {
        guard case .constant(let value) = argument.expression else {
          throw error(
            "argument \(index + 1) of \(name) must be a whole-number period (a literal or a param), got \(argument.expression)", at: token)
        }
        guard value >= 1, value <= Double(Self.maxBars), value == value.rounded() else {
          let text = lexer.text(from: spans[index].first.offset, to: spans[index].end)
          let shown = Double(text) == value ? text : "\(text) = \(DisplayFormat.written(value))"
          throw error(
            "argument \(index + 1) of \(name) must be a whole number of bars from 1 to 1,000,000 (a literal or a param), got \(shown)",
            at: spans[index].first)
        }
      } else if argument.type == .boolean {
        throw error("argument \(index + 1) of \(name) must be a number or series, not a condition", at: token)
      }
    }
    let missing = signature.arguments.count - arguments.count
    arguments += signature.optional.suffix(missing).map { Typed(expression: .constant($0), type: .number, depth: 0) }
    let depth = 1 + (arguments.map(\.depth).max() ?? 0)
    guard depth <= Self.maxDepth else { throw tooDeep(token) }
    return Typed(expression: .call(name, arguments.map(\.expression)), type: signature.result, depth: depth)
  }

  func hint(_ name: String, _ candidates: [String]) -> String {
    Similarity.closest(to: name, among: candidates).map { " — did you mean '\($0)'?" } ?? ""
  }

  func requireBoolean(_ operand: Typed, _ op: String, _ token: Token) throws {
    guard operand.type == .boolean else {
      throw error("'\(op)' needs \(op == "not" ? "a condition" : "conditions on both sides"); \(operand.expression) is a number", at: token)
    }
  }

  func requireNumeric(_ operand: Typed, _ op: String, _ token: Token) throws {
    guard operand.type != .boolean || (allowConditionArithmetic && ["+", "-", "*"].contains(op)) else {
      throw error("'\(op)' needs numbers; \(operand.expression) is a condition", at: token)
    }
  }

  /// Arithmetic, with constants folded, so `fast * 2` is a constant period.
  func fold(_ op: String, _ lhs: Typed, _ rhs: Typed, at token: Token) throws -> Typed {
    let expression = Self.fold(op, lhs.expression, rhs.expression)
    if case .constant = expression { return Typed(expression: expression, type: .number, depth: 0) }
    return try node(expression, lhs.type == .number && rhs.type == .number ? .number : .series, lhs, rhs, at: token)
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
