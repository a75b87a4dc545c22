import Foundation
import Synchronization
import Testing

@testable import QtoolCore

/// A small seeded generator (SplitMix64), so a failing case can be replayed from its seed.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Random expressions in the form the parser builds: typed, defaults filled in, constants
/// folded, no lag of 0, no minus on a constant.
struct ExpressionGenerator {
  var random: SeededGenerator
  let parameters: [String: Double]

  static let seriesFunctions = Functions.all.filter { $0.value.result == .series }.keys.sorted()
  static let constants: [Double] = [0, 1, 2, 3.5, 0.1, 14, 100, 1e-5, 1e20, 123_456.789, -1, -0.25, 2.5e-300]

  mutating func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
  mutating func chance(_ p: Double) -> Bool { Double.random(in: 0..<1, using: &random) < p }

  mutating func period() -> Double { chance(0.1) ? Double(RuleParser.maxBars) : Double(Int.random(in: 1...60, using: &random)) }

  mutating func constant() -> QtoolCore.Expression {
    if chance(0.3), let name = parameters.keys.sorted().randomElement(using: &random) { return .constant(parameters[name]!) }
    return .constant(pick(Self.constants))
  }

  /// A number or series (what arithmetic and comparisons take).
  mutating func numeric(_ depth: Int) -> QtoolCore.Expression { chance(0.25) ? constant() : series(depth) }

  mutating func series(_ depth: Int) -> QtoolCore.Expression {
    if depth <= 0 { return .column(pick(RuleParser.columns)) }
    switch Int.random(in: 0..<6, using: &random) {
    case 0: return .column(pick(RuleParser.columns))
    case 1:
      let name = pick(Self.seriesFunctions)
      let signature = Functions.signature(name)!
      return .call(name, signature.arguments.map { $0 == .number ? .constant(period()) : numeric(depth - 1) })
    case 2: return .lag(series(depth - 1), chance(0.1) ? RuleParser.maxBars : Int.random(in: 1...5, using: &random))
    case 3: return .negate(series(depth - 1))
    default:
      // Arithmetic with at least one series side: two constants would have been folded.
      let op = pick(["+", "-", "*", "/"])
      return chance(0.5) ? .binary(op, series(depth - 1), numeric(depth - 1)) : .binary(op, numeric(depth - 1), series(depth - 1))
    }
  }

  mutating func condition(_ depth: Int) -> QtoolCore.Expression {
    if depth <= 0 { return .binary(pick(["<", ">"]), .column("close"), constant()) }
    switch Int.random(in: 0..<5, using: &random) {
    case 0: return .binary(pick(["<", "<=", ">", ">=", "==", "!="]), numeric(depth - 1), numeric(depth - 1))
    case 1: return .call(pick(["cross_above", "cross_below"]), [series(depth - 1), series(depth - 1)])
    case 2: return .not(condition(depth - 1))
    default: return .binary(pick(["and", "or"]), condition(depth - 1), condition(depth - 1))
    }
  }
}

typealias Expression = QtoolCore.Expression

@Suite struct RuleParserTests {
  func parse(_ text: String, _ parameters: [String: Double] = [:], origin: String = "rules.entry") throws -> QtoolCore.Expression {
    try RuleParser.parse(text, origin: origin, parameters: parameters)
  }

  func ruleError(_ text: String, _ parameters: [String: Double] = [:], origin: String = "rules.entry") -> RuleError? {
    do {
      _ = try RuleParser.parse(text, origin: origin, parameters: parameters)
      return nil
    } catch let error as RuleError {
      return error
    } catch {
      Issue.record("not a RuleError: \(error)")
      return nil
    }
  }

  // MARK: Depth

  /// 5,000 nested parentheses used to overflow the stack (exit 139); now a caret error at
  /// the 257th.
  /// --where and --assert took a number as a condition (`--where fast` kept everything), ran
  /// indicators over a single value (`sma(sharpe, 3) > 0`: always false), took a blank one, and
  /// called a param-only --where's unknown name an unknown metric.
  @Test func conditionsOnNamedNumbersAreConditionsOnThem() throws {
    let params = ["fast": 10.0, "slow": 30]
    #expect(try NamedCondition("fast < slow and abs(fast - slow) > 5", origin: "where", names: Array(params.keys)).holds(for: params))
    for (text, message) in [
      ("fast", "'fast' is not a condition; write e.g. fast < slow"), ("  ", "empty condition; write e.g. fast < slow"),
      ("sma(fast, 3) > 0", "'sma' runs over bars; a condition here compares params (abs, min and max work on them)"),
    ] {
      #expect(throws: RuleError.self, "\(text)") { try NamedCondition(text, origin: "where", names: Array(params.keys), kind: "param") }
      do { _ = try NamedCondition(text, origin: "where", names: Array(params.keys), kind: "param") } catch let error as RuleError {
        #expect(error.message == message)
        #expect(error.category == .usage)
      }
    }
    do {
      _ = try NamedCondition("sharpe > 1", origin: "where", names: Array(params.keys), kind: "param")
      Issue.record("an unknown param was accepted")
    } catch let error as RuleError {
      #expect(error.message.hasPrefix("unknown param 'sharpe'") && error.message.contains("grid show"), "\(error.message)")
    }
  }

  @Test func deepNestingIsAnErrorAtTheSpot() throws {
    let deep = String(repeating: "(", count: 5_000) + "close" + String(repeating: ")", count: 5_000) + " > 1"
    let error = try #require(ruleError(deep))
    #expect(error.line == 1)
    #expect(error.column == 257)
    #expect(error.message == "the rule nests more than 256 levels deep (parentheses, calls, or a chain of operators); split it into simpler rules")
    #expect(error.exitStatus == .dataError)
    #expect("\(error)".hasPrefix("rules.entry:1:257: the rule nests more than 256 levels deep"))

    let atLimit = String(repeating: "(", count: 256) + "close" + String(repeating: ")", count: 256) + " > 1"
    #expect(try parse(atLimit) == .binary(">", .column("close"), .constant(1)))
  }

  @Test func everyKindOfNestingIsLimited() {
    let cases = [
      String(repeating: "-", count: 5_000) + "close > 1",
      String(repeating: "not ", count: 5_000) + "close > 1",
      String(repeating: "abs(", count: 5_000) + "close" + String(repeating: ")", count: 5_000) + " > 1",
      String(repeating: "sma(", count: 5_000) + "close" + String(repeating: ", 2)", count: 5_000) + " > 1",
      "close" + String(repeating: "[1]", count: 5_000) + " > 1",
      "(close > 1)" + String(repeating: " and (close > 1)", count: 5_000),
    ]
    for text in cases {
      let error = ruleError(text)
      #expect(error?.message.hasPrefix("the rule nests more than 256 levels deep") == true, "\(text.prefix(40))")
    }
  }

  /// The deepest rule allowed parses, prints, compares and evaluates on worker threads (a grid
  /// compiles its rules there), whose stacks are smaller than the main thread's.
  @Test func deepestRulesAreSafeOnWorkerThreads() throws {
    let calls = String(repeating: "abs(", count: 255) + "close" + String(repeating: ")", count: 255) + " > 1"
    let mixed = String(repeating: "-(close + ", count: 127) + "close" + String(repeating: ")", count: 127) + " < 0"
    let bars = BarSeries(timestamps: [0, 1], open: [1, 1], high: [1, 1], low: [1, 1], close: [1, 2], volume: [0, 0])
    let expected = [[false, true], [true, true]]
    let results = Mutex([[Bool]?](repeating: nil, count: 4))
    DispatchQueue.concurrentPerform(iterations: 4) { index in
      let text = index % 2 == 0 ? calls : mixed
      guard let expression = try? RuleParser.parse(text, origin: "r", parameters: [:]) else { return }
      guard (try? RuleParser.parse(expression.source, origin: "r", parameters: [:])) == expression else { return }
      _ = expression.description
      _ = expression.lookback
      let column = RuleEvaluator(bars: bars).condition(expression)
      results.withLock { $0[index] = column }
    }
    #expect(results.withLock { $0 } == [expected[0], expected[1], expected[0], expected[1]])
  }

  /// A chain of operators is as deep as it is long, so 20,000 terms are refused with the
  /// same error, found in one pass (it used to take 17–22 s to parse); 256 levels are fine.
  @Test func longChainsStopAtTheLimitInOnePass() throws {
    let terms = String(repeating: "close + ", count: 20_000) + "close > 0"
    let started = Date()
    let error = try #require(ruleError(terms))
    #expect(Date().timeIntervalSince(started) < 2, "one pass, not quadratic")
    #expect(error.message.hasPrefix("the rule nests more than 256 levels deep"))
    #expect(error.column == 1 + 256 * 8 + 6, "at the operator that made the tree 257 deep")

    let longest = String(repeating: "close + ", count: 255) + "close > 0"
    let expression = try parse(longest)
    let bars = BarSeries(timestamps: [0, 1], open: [1, 1], high: [1, 1], low: [1, 1], close: [1, 2], volume: [0, 0])
    #expect(RuleEvaluator(bars: bars).condition(expression) == [true, true])
  }

  /// The parser works out each node's type once: a wide rule (20,000 terms, balanced so it is
  /// shallow) parses in time proportional to its length.
  @Test func wideRulesParseInLinearTime() throws {
    func balanced(_ count: Int) -> String {
      count == 1 ? "close" : "(\(balanced(count / 2)) + \(balanced(count - count / 2)))"
    }
    func seconds(_ count: Int) throws -> Double {
      let text = balanced(count) + " > 0"
      let started = Date()
      _ = try parse(text)
      return Date().timeIntervalSince(started)
    }
    _ = try seconds(1_000)  // warm up
    let small = try seconds(5_000)
    let large = try seconds(20_000)
    // Linear: 4× the terms, about 4× the time; quadratic would be 16×.
    #expect(large < 10 * small + 0.05, "5,000 terms: \(small) s, 20,000 terms: \(large) s")
  }

  // MARK: Numbers

  @Test func periodsMustBeWholeNumbersInRange() throws {
    for (value, shown) in [
      (Double.infinity, "fast = inf"), (1e20, "fast = 1e+20"), (0.5, "fast = 0.5"), (0, "fast = 0"), (-3, "fast = -3"), (1_000_001, "fast = 1000001"),
    ] {
      let error = try #require(ruleError("cross_above(sma(close, fast), sma(close, 30))", ["fast": value]))
      #expect(
        error.message == "argument 2 of sma must be a whole number of bars from 1 to 1,000,000 (a literal or a param), got \(shown)", "\(value)")
      #expect(error.column == 24, "the caret is under the argument")
    }
    #expect(ruleError("sma(close, 1e20) > 0")?.message.hasSuffix("got 1e20") == true)
    #expect(ruleError("macd(close, 12, 1e999) > 0")?.message.hasPrefix("argument 3 of macd") == true)
    #expect(ruleError("sma(close, 2 * fast) > 0", ["fast": 1e300])?.message.hasSuffix("got 2 * fast = 2e+300") == true)
    #expect(try parse("sma(close, 1000000) > 0") == .binary(">", .call("sma", [.column("close"), .constant(1_000_000)]), .constant(0)))
  }

  @Test func lagsMustBeWholeNumbersInRange() throws {
    #expect(ruleError("close[1e20] > 0")?.message == "a lag needs a whole number of bars from 0 to 1,000,000, e.g. close[1]; got 1e20")
    #expect(ruleError("close[1000001] > 0")?.message.hasPrefix("a lag needs a whole number of bars from 0 to 1,000,000") == true)
    #expect(ruleError("close[1.5] > 0")?.column == 7)
    #expect(try parse("close[1000000] > 0") == .binary(">", .lag(.column("close"), 1_000_000), .constant(0)))
  }

  /// A constant where a series goes is not a period: sma(1e20, 5) used to trap when its
  /// warm-up was worked out.
  @Test func hugeConstantsAsSeriesDoNotTrap() throws {
    let expression = try parse("sma(1e20, 5) > sma(close, 1e6)")
    #expect(expression.lookback == 999_999)
    let bars = BarSeries(timestamps: [0, 1], open: [1, 1], high: [1, 1], low: [1, 1], close: [1, 2], volume: [0, 0])
    #expect(RuleEvaluator(bars: bars).condition(expression) == [false, false])
  }

  /// A condition given with a request (an assertion, a grid's filter) is the caller's usage
  /// error (64); a rule in a spec file is bad input (65).
  @Test func requestConditionsAreUsageErrors() {
    func conditionError(_ text: String, _ parameters: [String: Double]) -> RuleError? {
      do {
        _ = try NamedCondition(text, origin: "assert", names: Array(parameters.keys))
        return nil
      } catch { return error as? RuleError }
    }
    #expect(conditionError("sharp > 1", ["sharpe": 1])?.exitStatus == .usage)
    #expect(conditionError("fast <", ["fast": 1])?.exitStatus == .usage)
    #expect(conditionError("close > 1", ["fast": 1])?.message.contains("close") == true, "no columns in a condition on numbers")
    #expect(ruleError("close <", origin: "s.yaml:rules.entry")?.exitStatus == .dataError)
  }

  // MARK: Printing

  @Test func printerSpellsPrecedenceWithFewestParentheses() throws {
    for (text, printed) in [
      ("not close > 1 + 2 * 3 or open < 1 and high > 2", "not close > 7 or open < 1 and high > 2"),
      ("(close - open) * 2 > -(high - low)[1]", "(close - open) * 2 > -(high - low)[1]"),
      ("close - (open - 1) > 0", "close - (open - 1) > 0"),
      ("(-close)[2] < -3 * close", "(-close)[2] < -3 * close"),
      ("not (close > 1 and open > 1)", "not (close > 1 and open > 1)"),
      ("rsi(close) > 70", "rsi(close, 14) > 70"),
      ("close > 1e999", "close > 1e999"),
    ] {
      #expect(try parse(text).source == printed, "\(text)")
    }
  }

  /// parse(print(x)) == x for 3,000 random expressions of every kind.
  @Test(arguments: [1, 2, 3] as [UInt64]) func parsePrintRoundTrip(seed: UInt64) throws {
    let parameters = ["fast": 10.0, "slow": 30, "k": 2.5]
    var generator = ExpressionGenerator(random: SeededGenerator(seed: seed), parameters: parameters)
    for index in 0..<1_000 {
      let expression = index % 3 == 0 ? generator.series(Int.random(in: 0...6, using: &generator.random)) : generator.condition(5)
      let text = expression.source
      let parsed: QtoolCore.Expression
      do {
        parsed = try parse(text, parameters)
      } catch {
        Issue.record("seed \(seed) #\(index): \(text) does not parse: \(error)")
        continue
      }
      #expect(parsed == expression, "seed \(seed) #\(index): \(text) parsed as \(parsed.source)")
      #expect(parsed.source == text)
    }
  }
}
