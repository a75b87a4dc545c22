import Foundation

/// `--assert 'sharpe > 1 and max_drawdown > -0.25'`: conditions on a run's metrics. Each
/// top-level `and` clause is judged on its own, so a failure names the clause that failed.
public enum MetricAssertion {
  public struct Failure: Sendable, Equatable, Codable {
    public var clause: String
    /// The metrics the clause mentions, with their values.
    public var values: [String: Double]
  }

  public static func failures(_ text: String, metrics: [String: Double]) throws -> [Failure] {
    var failures: [Failure] = []
    for clause in clauses(text) {
      let expression = try RuleParser.parse(clause, origin: "assert", parameters: metrics, allowColumns: false)
      guard expression.type == .boolean else {
        throw SpecError.invalid("assertion '\(clause)' is not a condition; write e.g. sharpe > 1")
      }
      if !RuleEvaluator.holds(expression) {
        let mentioned = metrics.filter { name, _ in clause.range(of: "\\b\(name)\\b", options: .regularExpression) != nil }
        failures.append(Failure(clause: clause, values: mentioned))
      }
    }
    return failures
  }

  /// Splits on `and` at the top level (outside parentheses).
  static func clauses(_ text: String) -> [String] {
    var result: [String] = []
    var depth = 0
    var current = ""
    let words = text.replacingOccurrences(of: "(", with: " ( ").replacingOccurrences(of: ")", with: " ) ").split(separator: " ")
    for word in words {
      if word == "(" { depth += 1 }
      if word == ")" { depth -= 1 }
      if (word == "and" || word == "&&") && depth == 0 {
        result.append(current.trimmingCharacters(in: .whitespaces))
        current = ""
      } else {
        current += (current.isEmpty ? "" : " ") + word
      }
    }
    result.append(current.trimmingCharacters(in: .whitespaces))
    return result.filter { !$0.isEmpty }.map { $0.replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")") }
  }
}
