import Foundation

/// `--assert 'sharpe > 1 and max_drawdown > -0.25'`: conditions on a run's metrics. Each
/// top-level `and` clause is judged on its own, so a failure names the clause that failed.
/// Infinite metrics compare as IEEE says (`profit_factor > 2` holds with no losing trade); a
/// comparison with an undefined (NaN) metric is false, and the failure says why it is undefined.
public enum MetricAssertion {
  public struct Failure: Sendable, Equatable, Codable {
    public var clause: String
    /// The metrics the clause mentions, with their values (NaN when undefined, null in JSON).
    public var values: [String: Double]
    /// Why the clause could not hold, when it mentions an undefined metric, e.g.
    /// `sharpe is undefined: 0 trades`.
    public var reason: String?

    public init(clause: String, values: [String: Double], reason: String? = nil) {
      self.clause = clause
      self.values = values
      self.reason = reason
    }

    enum CodingKeys: String, CodingKey { case clause, values, reason }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(clause, forKey: .clause)
      try container.encode(values.mapValues { $0.isFinite ? Optional($0) : nil }, forKey: .values)
      try container.encode(reason, forKey: .reason)
    }

    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      clause = try container.decode(String.self, forKey: .clause)
      values = try container.decode([String: Double?].self, forKey: .values).mapValues { $0 ?? .nan }
      reason = try container.decodeIfPresent(String.self, forKey: .reason)
    }
  }

  /// Refuses, before any run, an assertion that could never be judged: blank (a CI gate whose
  /// variable came out empty would pass everything) or not a condition on metric names.
  public static func check(_ text: String) throws {
    guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
      throw RuleError(
        origin: "assert", line: 1, column: 1, message: "an assertion is empty; write a condition on the metrics, e.g. sharpe > 1",
        sourceLine: text, category: .usage)
    }
    for clause in clauses(text) { _ = try NamedCondition(clause, origin: "assert", names: Metrics.names) }
  }

  /// The clauses of `text` that `metrics` do not satisfy.
  public static func failures(_ text: String, metrics: Metrics) throws -> [Failure] {
    let values = metrics.allValues
    var failures: [Failure] = []
    for clause in clauses(text) {
      if try !NamedCondition(clause, origin: "assert", names: Metrics.names).holds(for: values) {
        let mentioned = values.filter { name, _ in clause.range(of: "\\b\(name)\\b", options: .regularExpression) != nil }
        let undefined = mentioned.keys.sorted().compactMap { name in metrics.undefinedReason(name).map { "\(name) is undefined: \($0)" } }
        failures.append(Failure(clause: clause, values: mentioned, reason: undefined.isEmpty ? nil : undefined.joined(separator: "; ")))
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
    // An empty clause stays, to be refused: `trades > 0 and` (a CI variable cut short) must not
    // pass as `trades > 0`.
    return result.map { $0.replacingOccurrences(of: "( ", with: "(").replacingOccurrences(of: " )", with: ")") }
  }
}
