/// A condition on named numbers given with a request: a grid's `--where` on its params (which
/// combinations run) or on its results' metrics (which rows show), an assertion on a run's
/// metrics. Parsed once, then judged for any number of rows of values in one pass over
/// columns, with the rules' own arithmetic: a grid shard judges every combination of the whole
/// grid to find its own, and a 100,000-row grid is filtered without 100,000 parses.
public struct NamedCondition: Sendable {
  public let text: String
  let expression: Expression
  /// The names the condition reads, each once.
  let names: [String]

  /// - parameters:
  ///   - names: the names a row may give a value (a strategy's params, the metrics).
  ///   - kind: what the names are, "param" or "metric", for the errors' sake.
  ///   - ambiguous: names that may not be read, each with why (one naming two things).
  /// - throws: `RuleError` (usage): not a condition, an unknown or ambiguous name, a function
  ///   over bars.
  public init(_ text: String, origin: String, names: [String], kind: String = "metric", ambiguous: [String: String] = [:]) throws {
    self.text = text
    expression = try RuleParser.parseCondition(text, origin: origin, names: names, kind: kind, ambiguous: ambiguous)
    self.names = expression.columnNames
  }

  /// Whether the condition holds for each row; a name a row does not give is undefined (NaN),
  /// and a row holds only if its truth does not hang on an undefined value (see `judge`).
  public func holds<Row>(for rows: [Row], value: (Row, String) -> Double?) -> [Bool] {
    guard !rows.isEmpty else { return [] }
    let nothing = [Double](repeating: .nan, count: rows.count)
    var bars = BarSeries(
      timestamps: [Int64](repeating: 0, count: rows.count), open: nothing, high: nothing, low: nothing, close: nothing, volume: nothing)
    // A param named like a price column lands there, where the evaluator reads that name.
    for name in names { bars.setColumn(named: name, rows.map { value($0, name) ?? .nan }) }
    let evaluator = RuleEvaluator(bars: bars)
    let (truth, known) = Self.judge(expression, evaluator)
    return zip(truth, known).map { $0 && $1 }
  }

  /// Three-valued, as SQL judges NULL: a comparison with an undefined (NaN) value is unknown,
  /// `not` of unknown is unknown, `false and unknown` is false, `true or unknown` is true, and a
  /// row holds only when the whole is known to be true. Two values ("NaN compares false") would
  /// pass `not (sharpe > 1)` for a run whose sharpe is undefined. (A strategy's rules keep two
  /// values, as backtesting.py's do; they judge no bar before their warm-up.)
  private static func judge(_ expression: Expression, _ evaluator: RuleEvaluator) -> (truth: [Bool], known: [Bool]) {
    switch expression {
    case .binary(let op, let lhs, let rhs) where op == "and" || op == "or":
      let a = judge(lhs, evaluator)
      let b = judge(rhs, evaluator)
      var truth = [Bool](repeating: false, count: a.truth.count)
      var known = truth
      for i in truth.indices {
        // The side that decides alone: a known false for `and`, a known true for `or`.
        let decisive = op == "or"
        if (a.known[i] && a.truth[i] == decisive) || (b.known[i] && b.truth[i] == decisive) {
          (truth[i], known[i]) = (decisive, true)
        } else if a.known[i] && b.known[i] {
          (truth[i], known[i]) = (!decisive, true)
        }
      }
      return (truth, known)
    case .not(let inner):
      let a = judge(inner, evaluator)
      return (a.truth.map { !$0 }, a.known)
    case .binary(let op, let lhs, let rhs) where ["<", "<=", ">", ">=", "==", "!="].contains(op):
      let a = evaluator.evaluate(lhs)
      let b = evaluator.evaluate(rhs)
      let compare: (Double, Double) -> Bool =
        switch op {
        case "<": (<)
        case "<=": (<=)
        case ">": (>)
        case ">=": (>=)
        case "==": (==)
        default: (!=)
        }
      return (zip(a, b).map(compare), zip(a, b).map { !$0.isNaN && !$1.isNaN })
    default:
      let truth = evaluator.condition(expression)
      return (truth, [Bool](repeating: true, count: truth.count))
    }
  }

  public func holds(for values: [String: Double]) -> Bool {
    holds(for: [values]) { row, name in row[name] }[0]
  }
}
