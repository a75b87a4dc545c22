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
  /// - throws: `RuleError` (usage): not a condition, an unknown name, a function over bars.
  public init(_ text: String, origin: String, names: [String], kind: String = "metric") throws {
    self.text = text
    expression = try RuleParser.parseCondition(text, origin: origin, names: names, kind: kind)
    var read: [String] = []
    func walk(_ expression: Expression) {
      switch expression {
      case .constant, .flag, .model: return
      case .column(let name): if !read.contains(name) { read.append(name) }
      case .lag(let inner, _), .negate(let inner), .not(let inner): walk(inner)
      case .binary(_, let lhs, let rhs):
        walk(lhs)
        walk(rhs)
      case .call(_, let arguments): arguments.forEach(walk)
      }
    }
    walk(expression)
    self.names = read
  }

  /// Whether the condition holds for each row; a name a row does not give is undefined (NaN),
  /// and a comparison with an undefined value is false.
  public func holds<Row>(for rows: [Row], value: (Row, String) -> Double?) -> [Bool] {
    guard !rows.isEmpty else { return [] }
    let nothing = [Double](repeating: .nan, count: rows.count)
    var bars = BarSeries(
      timestamps: [Int64](repeating: 0, count: rows.count), open: nothing, high: nothing, low: nothing, close: nothing, volume: nothing)
    for name in names {
      let column = rows.map { value($0, name) ?? .nan }
      // The evaluator reads these five names from the bars' own columns.
      switch name {
      case "open": bars.open = column
      case "high": bars.high = column
      case "low": bars.low = column
      case "close": bars.close = column
      case "volume": bars.volume = column
      default: bars.columns[name] = column
      }
    }
    return RuleEvaluator(bars: bars).condition(expression)
  }

  public func holds(for values: [String: Double]) -> Bool {
    holds(for: [values]) { row, name in row[name] }[0]
  }
}
