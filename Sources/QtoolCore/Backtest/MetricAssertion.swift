import Foundation

/// `--assert 'sharpe > 1 and max_drawdown > -0.25'`: conditions on a run's metrics. Each
/// top-level `and` clause is judged on its own, so a failure names the clause that failed.
/// Infinite metrics compare as IEEE says (`profit_factor > 2` holds with no losing trade); a
/// clause whose truth hangs on an undefined (NaN) metric fails, `not (sharpe > 1)` too, and the
/// failure says why it is undefined.
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
    _ = try clauses(text)
  }

  /// The clauses of `text` that `metrics` do not satisfy.
  public static func failures(_ text: String, metrics: Metrics) throws -> [Failure] {
    let values = metrics.allValues
    var failures: [Failure] = []
    for (clause, condition) in try clauses(text) where !condition.holds(for: values) {
      let mentioned = values.filter { name, _ in condition.names.contains(name) }
      let undefined = mentioned.keys.sorted().compactMap { name in metrics.undefinedReason(name).map { "\(name) is undefined: \($0)" } }
      failures.append(Failure(clause: clause, values: mentioned, reason: undefined.isEmpty ? nil : undefined.joined(separator: "; ")))
    }
    return failures
  }

  /// The whole condition is parsed first, so an error points into what the user wrote and a
  /// clause cut short (`trades > 0 and`) is refused rather than dropped. It is then cut at its
  /// top-level `and`s, as written, only where that is what the parse means: in
  /// `trades > 100 and trades > 0 or sharpe > 1` the top level is the `or` (it binds looser), so
  /// that assertion is one clause, judged whole.
  static func clauses(_ text: String) throws -> [(text: String, condition: NamedCondition)] {
    guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
      throw RuleError(
        origin: "assert", line: 1, column: 1, message: "an assertion is empty; write a condition on the metrics, e.g. sharpe > 1",
        sourceLine: text, category: .usage)
    }
    let whole = try NamedCondition(text, origin: "assert", names: Metrics.names)
    let source = Array(text)
    var pieces: [String] = []
    var depth = 0
    var start = 0
    for token in try Lexer(text, origin: "assert").tokens() {
      switch token.kind {
      case .symbol("("): depth += 1
      case .symbol(")"): depth -= 1
      case .identifier("and") where depth == 0:
        pieces.append(String(source[start..<token.offset]))
        start = token.offset + token.length
      default: break
      }
    }
    pieces.append(String(source[start...]))
    let conditions = pieces.compactMap { try? NamedCondition($0, origin: "assert", names: Metrics.names) }
    guard pieces.count > 1, conditions.count == pieces.count,
      // Compared as text: a folded `0/0` is a NaN constant, and NaN is not == itself.
      "\(conditions.dropFirst().reduce(conditions[0].expression, { .binary("and", $0, $1.expression) }))" == "\(whole.expression)"
    else { return [(text.trimmingCharacters(in: .whitespacesAndNewlines), whole)] }
    return zip(pieces, conditions).map { ($0.trimmingCharacters(in: .whitespacesAndNewlines), $1) }
  }
}
