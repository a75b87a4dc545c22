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
    self.names = expression.columnNames
  }

  /// Whether the condition holds for each row; a name a row does not give is undefined (NaN),
  /// and a comparison with an undefined value is false.
  public func holds<Row>(for rows: [Row], value: (Row, String) -> Double?) -> [Bool] {
    guard !rows.isEmpty else { return [] }
    let nothing = [Double](repeating: .nan, count: rows.count)
    var bars = BarSeries(
      timestamps: [Int64](repeating: 0, count: rows.count), open: nothing, high: nothing, low: nothing, close: nothing, volume: nothing)
    // A param named like a price column lands there, where the evaluator reads that name.
    for name in names { bars.setColumn(named: name, rows.map { value($0, name) ?? .nan }) }
    return RuleEvaluator(bars: bars).condition(expression)
  }

  public func holds(for values: [String: Double]) -> Bool {
    holds(for: [values]) { row, name in row[name] }[0]
  }
}
