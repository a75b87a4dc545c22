/// An error in a rule expression, pointing at the spot:
///
///     rules.entry:1:12: unknown function 'smaa' — did you mean 'sma'?
///       cross_above(smaa(close, 10), sma(close, 30))
///                   ^
public struct RuleError: QtoolError, Equatable {
  /// Where the expression came from, e.g. `rules.entry` or `strategy.yaml:rules.entry`.
  public var origin: String
  public var line: Int
  public var column: Int
  public var message: String
  public var sourceLine: String

  /// Bad input (65) in a strategy spec; a condition given with a request (`--where`, `--assert`)
  /// is a usage error (64), as are a model spec's rules: `RuleParser.parseCondition` and the
  /// model loader say so.
  public var category: ErrorCategory = .invalidInput
  public var code: String { "rule_error" }
  public var details: [String: JSONValue] {
    ["origin": .string(origin), "line": JSONValue(line), "column": JSONValue(column), "source_line": .string(sourceLine)]
  }

  public var description: String {
    // A tab before the spot stays a tab under it, so the caret lines up on a terminal.
    let indent = sourceLine.prefix(max(0, column - 1)).map { $0 == "\t" ? "\t" : " " }.joined()
    return "\(origin):\(line):\(column): \(message)\n  \(sourceLine)\n  \(indent)^"
  }
}
