/// The typed syntax tree of a rule.
public indirect enum Expression: Equatable, Sendable, CustomStringConvertible {
  public enum ValueType: String, Sendable { case number, series, boolean }

  /// A constant: a literal or a strategy parameter.
  case constant(Double)
  /// `true` or `false`: a condition that always or never holds (`entry: true` buys and holds,
  /// `exit: false` leaves exits to stops and targets).
  case flag(Bool)
  /// open, high, low, close or volume.
  case column(String)
  /// A function over series, e.g. sma(close, 20); arguments already checked.
  case call(String, [Expression])
  /// `x[n]`: the value n bars ago.
  case lag(Expression, Int)
  case negate(Expression)
  case binary(String, Expression, Expression)
  case not(Expression)
  /// `model("name")`: the named model's prediction on each bar (a probability for a binary
  /// label), supplied by whoever runs the rules.
  case model(String)

  public var type: ValueType {
    switch self {
    case .constant: return .number
    case .flag: return .boolean
    case .lag(let inner, _): return inner.type == .boolean ? .boolean : .series
    case .column, .negate, .model: return .series
    case .call(let name, _): return Functions.signature(name)!.result
    case .binary(let op, let lhs, let rhs):
      if ["and", "or", "<", "<=", ">", ">=", "==", "!="].contains(op) { return .boolean }
      return lhs.type == .number && rhs.type == .number ? .number : .series
    case .not: return .boolean
    }
  }

  /// A canonical spelling: equal text means equal values, so it keys the indicator cache.
  public var description: String {
    switch self {
    case .constant(let value): return DisplayFormat.written(value)
    case .flag(let value): return value ? "true" : "false"
    case .column(let name): return name
    case .call(let name, let arguments): return "\(name)(\(arguments.map(\.description).joined(separator: ", ")))"
    case .lag(let inner, let bars): return "\(inner)[\(bars)]"
    case .negate(let inner): return "-(\(inner))"
    case .binary(let op, let lhs, let rhs): return "(\(lhs) \(op) \(rhs))"
    case .not(let inner): return "not \(inner)"
    case .model(let name): return "model(\"\(name)\")"
    }
  }

  /// Every column the expression reads (price columns included), in order of first use.
  public var columnNames: [String] {
    leaves { if case .column(let name) = $0 { name } else { nil } }
  }

  /// The feature columns (names other than open, high, low, close, volume) the expression
  /// reads, in order of first use.
  public var featureColumns: [String] {
    columnNames.filter { !RuleParser.columns.contains($0) }
  }

  /// The names of the models the expression reads, in order of first use.
  public var models: [String] {
    leaves { if case .model(let name) = $0 { name } else { nil } }
  }

  /// The distinct names `name` finds on the leaves of the tree, in order of first use.
  private func leaves(_ name: (Expression) -> String?) -> [String] {
    var names: [String] = []
    func walk(_ expression: Expression) {
      switch expression {
      case .constant, .flag, .column, .model:
        if let found = name(expression), !names.contains(found) { names.append(found) }
      case .lag(let inner, _), .negate(let inner), .not(let inner): walk(inner)
      case .binary(_, let lhs, let rhs):
        walk(lhs)
        walk(rhs)
      case .call(_, let arguments): arguments.forEach(walk)
      }
    }
    walk(self)
    return names
  }

  /// Bars after the current one the expression reads: `forward_return(close, 5)` reads 5.
  /// Only a model's label may read any (the parser refuses them elsewhere).
  public var lookahead: Int {
    switch self {
    case .constant, .flag, .column, .model: return 0
    case .lag(let inner, let bars): return max(0, inner.lookahead - bars)
    case .negate(let inner), .not(let inner): return inner.lookahead
    case .binary(_, let lhs, let rhs): return max(lhs.lookahead, rhs.lookahead)
    case .call(let name, let arguments):
      let inner = arguments.map(\.lookahead).max() ?? 0
      guard Functions.lookahead[name] != nil, arguments.count > 1, case .constant(let bars) = arguments[1] else { return inner }
      return inner + Int(bars)
    }
  }

  /// Bars of history the expression needs before its first value (used for warm-up checks).
  public var lookback: Int {
    switch self {
    case .constant, .flag, .column, .model: return 0
    case .lag(let inner, let bars): return inner.lookback + bars
    case .negate(let inner), .not(let inner): return inner.lookback
    case .binary(_, let lhs, let rhs): return max(lhs.lookback, rhs.lookback)
    case .call(let name, let arguments):
      let inner = arguments.map(\.lookback).max() ?? 0
      // Periods are the constant arguments in number positions (a series argument may be a
      // constant too, e.g. sma(1e20, 5): it is not a period).
      let positions = Functions.signature(name)?.arguments ?? []
      let periods = arguments.indices.compactMap { index -> Int? in
        guard index < positions.count, positions[index] == .number, case .constant(let v) = arguments[index] else { return nil }
        return Expression.bars(v)
      }
      return inner + Functions.lookback(name, periods)
    }
  }

  /// A period or lag as a count of bars: the parser only lets whole numbers from 0 to
  /// `RuleParser.maxBars` through; anything else (a tree built by hand) is clamped, never trapped on.
  static func bars(_ value: Double) -> Int {
    guard value.isFinite else { return value > 0 ? RuleParser.maxBars : 0 }
    return Int(Swift.min(Swift.max(value.rounded(.down), 0), Double(RuleParser.maxBars)))
  }

  /// Rule text that parses back to this very expression (given the same params): the
  /// printer the property tests hold the parser to. Parentheses only where precedence needs them.
  /// Non-finite constants print as `1e999` / `-1e999`; NaN has no spelling and prints as `(0 / 0)`.
  public var source: String { Self.print(self, level: .or) }

  /// Binding strength, loosest first, as `RuleParser` reads it.
  enum Level: Int, Comparable {
    case or = 1, and, not, comparison, additive, multiplicative, unary, postfix, primary
    static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
  }

  var level: Level {
    switch self {
    case .constant(let value): return value < 0 ? .unary : .primary
    case .flag, .column, .call, .model: return .primary
    case .lag: return .postfix
    case .negate: return .unary
    case .not: return .not
    case .binary(let op, _, _):
      switch op {
      case "or": return .or
      case "and": return .and
      case "+", "-": return .additive
      case "*", "/": return .multiplicative
      default: return .comparison
      }
    }
  }

  /// `expression` spelled so that it binds at least as tightly as `level`.
  static func print(_ expression: Expression, level: Level) -> String {
    let text: String
    switch expression {
    case .constant(let value):
      if value.isNaN { return "(0 / 0)" }
      text = value.isInfinite ? (value > 0 ? "1e999" : "-1e999") : DisplayFormat.written(value)
    case .flag(let value): text = value ? "true" : "false"
    case .column(let name): text = name
    case .model(let name): text = "model(\"\(name)\")"
    case .call(let name, let arguments): text = "\(name)(\(arguments.map { print($0, level: .or) }.joined(separator: ", ")))"
    case .lag(let inner, let bars): text = "\(print(inner, level: .postfix))[\(bars)]"
    case .negate(let inner): text = "-\(print(inner, level: .unary))"
    case .not(let inner): text = "not \(print(inner, level: .not))"
    case .binary(let op, let lhs, let rhs):
      let own = expression.level
      // and, or, + - * / group to the left; a comparison takes no comparison on either side.
      let left: Level = own == .comparison ? .additive : own
      let right = Level(rawValue: own.rawValue + 1)!
      text = "\(print(lhs, level: left)) \(op) \(print(rhs, level: right))"
    }
    return expression.level < level ? "(\(text))" : text
  }
}

/// The functions of the rules language and their signatures.
public enum Functions {
  public struct Signature: Sendable {
    public var arguments: [Expression.ValueType]
    /// How many trailing arguments may be left out (they have defaults).
    public var optional: [Double]
    public var result: Expression.ValueType
    public var help: String
  }

  static let s = Expression.ValueType.series
  static let n = Expression.ValueType.number

  public static let all: [String: Signature] = [
    "sma": Signature(arguments: [s, n], optional: [], result: s, help: "simple moving average"),
    "ema": Signature(arguments: [s, n], optional: [], result: s, help: "exponential moving average (SMA-seeded)"),
    "wma": Signature(arguments: [s, n], optional: [], result: s, help: "linearly weighted moving average"),
    "rsi": Signature(arguments: [s, n], optional: [14], result: s, help: "relative strength index (Wilder)"),
    "macd": Signature(arguments: [s, n, n, n], optional: [12, 26, 9], result: s, help: "MACD line"),
    "macd_signal": Signature(arguments: [s, n, n, n], optional: [12, 26, 9], result: s, help: "MACD signal line"),
    "macd_hist": Signature(arguments: [s, n, n, n], optional: [12, 26, 9], result: s, help: "MACD histogram"),
    "bb_upper": Signature(arguments: [s, n, n], optional: [20, 2], result: s, help: "upper Bollinger band"),
    "bb_mid": Signature(arguments: [s, n, n], optional: [20, 2], result: s, help: "middle Bollinger band"),
    "bb_lower": Signature(arguments: [s, n, n], optional: [20, 2], result: s, help: "lower Bollinger band"),
    "atr": Signature(arguments: [n], optional: [14], result: s, help: "average true range of the bars (Wilder)"),
    "stddev": Signature(arguments: [s, n], optional: [], result: s, help: "population standard deviation"),
    "zscore": Signature(arguments: [s, n], optional: [], result: s, help: "(x - SMA) / stddev"),
    "roc": Signature(arguments: [s, n], optional: [], result: s, help: "rate of change in percent"),
    "highest": Signature(arguments: [s, n], optional: [], result: s, help: "highest value of the last n bars"),
    "lowest": Signature(arguments: [s, n], optional: [], result: s, help: "lowest value of the last n bars"),
    "returns": Signature(arguments: [s, n], optional: [1], result: s, help: "return over n bars"),
    "log_returns": Signature(arguments: [s, n], optional: [1], result: s, help: "log return over n bars"),
    "cross_above": Signature(arguments: [s, s], optional: [], result: .boolean, help: "a was below b on the previous bar and is above it now"),
    "cross_below": Signature(arguments: [s, s], optional: [], result: .boolean, help: "a was above b on the previous bar and is below it now"),
    "abs": Signature(arguments: [s], optional: [], result: s, help: "absolute value"),
    "min": Signature(arguments: [s, s], optional: [], result: s, help: "the smaller of two values"),
    "max": Signature(arguments: [s, s], optional: [], result: s, help: "the larger of two values"),
  ]

  /// Functions that read later bars: legal only in a model's label, where looking ahead is the point.
  public static let lookahead: [String: Signature] = [
    "forward_return": Signature(
      arguments: [s, n], optional: [], result: s, help: "return from this bar to n bars later: x[t+n] / x[t] − 1 (labels only)"),
    "future": Signature(arguments: [s, n], optional: [], result: s, help: "the value n bars later: x[t+n] (labels only)"),
  ]

  public static func signature(_ name: String) -> Signature? { all[name] ?? lookahead[name] }

  /// A number argument that is a width, not a period: any positive real (Bollinger bands'
  /// k standard deviations, e.g. bb_lower(close, 20, 2.5)), not a whole number of bars.
  public static func isWidth(_ name: String, argument index: Int) -> Bool { name.hasPrefix("bb_") && index == 2 }

  /// The help's spelling of a signature: x for a series, n for a period, k for a width, and
  /// the default of each trailing argument that may be left out, e.g. `bb_lower(x, n=20, k=2)`.
  public static func usage(_ name: String) -> String {
    guard let signature = signature(name) else { return name }
    let firstOptional = signature.arguments.count - signature.optional.count
    let parts = signature.arguments.enumerated().map { index, type -> String in
      let word = type == .number ? (isWidth(name, argument: index) ? "k" : "n") : "x"
      guard index >= firstOptional else { return word }
      let value = signature.optional[index - firstOptional]
      return word + "=" + (value == value.rounded() ? String(Int(value)) : String(value))
    }
    return "\(name)(\(parts.joined(separator: ", ")))"
  }

  static func lookback(_ name: String, _ periods: [Int]) -> Int {
    switch name {
    case "macd", "macd_signal", "macd_hist": return (periods.count > 1 ? periods[1] : 26) + (periods.count > 2 ? periods[2] : 9) - 2
    case "rsi", "atr", "returns", "log_returns", "roc": return periods.first ?? 14
    case "cross_above", "cross_below": return 1
    case "abs", "min", "max", "forward_return", "future": return 0
    default: return max(0, (periods.first ?? 1) - 1)
    }
  }
}
