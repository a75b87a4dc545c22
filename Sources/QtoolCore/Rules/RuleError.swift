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

  /// A rule given on the command line (`--assert`, `--where`) is a usage error (64); one in a
  /// spec file is bad input data (65).
  public var exitStatus: ExitStatus { origin.hasPrefix("--") ? .usage : .dataError }

  public var description: String {
    "\(origin):\(line):\(column): \(message)\n  \(sourceLine)\n  \(String(repeating: " ", count: max(0, column - 1)))^"
  }
}
