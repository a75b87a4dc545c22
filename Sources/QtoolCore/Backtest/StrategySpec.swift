/// A declarative strategy (DESIGN §5). The same Codable type is the REST request body.
public struct StrategySpec: Codable, Sendable, Equatable {
  public struct Universe: Codable, Sendable, Equatable {
    public var symbols: [String]
    public var timeframe: String
    public var source: String?
    /// A stored dataset to run on (default: SYMBOL-TIMEFRAME).
    public var dataset: String?
  }

  public struct Rules: Codable, Sendable, Equatable {
    public var entry: String?
    public var exit: String?
    public var shortEntry: String?
    public var shortExit: String?
    enum CodingKeys: String, CodingKey { case entry, exit, shortEntry = "short_entry", shortExit = "short_exit" }
  }

  public struct Sizing: Codable, Sendable, Equatable {
    /// Fraction of equity per entry (default 1).
    public var fraction: Double?
    /// A fixed number of units per entry.
    public var units: Double?
    /// A fixed cash amount per entry.
    public var notional: Double?
    /// Caps on a position: at most this many units, and at most this much cash at entry.
    public var maxUnits: Double?
    public var maxNotional: Double?
    enum CodingKeys: String, CodingKey { case fraction, units, notional, maxUnits = "max_units", maxNotional = "max_notional" }
  }

  public struct Costs: Codable, Sendable, Equatable {
    /// Fraction of traded value per fill, e.g. 0.001.
    public var commission: Double?
    /// Fixed cash per fill.
    public var commissionFixed: Double?
    public var slippageBps: Double?
    enum CodingKeys: String, CodingKey { case commission, commissionFixed = "commission_fixed", slippageBps = "slippage_bps" }
  }

  public struct Risk: Codable, Sendable, Equatable {
    public var stopLoss: Double?
    public var takeProfit: Double?
    public var trailingStop: Double?
    public var maxDrawdownHalt: Double?
    enum CodingKeys: String, CodingKey {
      case stopLoss = "stop_loss", takeProfit = "take_profit", trailingStop = "trailing_stop", maxDrawdownHalt = "max_drawdown_halt"
    }
  }

  public struct Execution: Codable, Sendable, Equatable {
    /// `next_open` (default) or `close`.
    public var fill: String?
    /// `fractional` (default) or `whole`.
    public var units: String?
    /// Close a position still open after the last bar at its close (default true).
    public var closeAtEnd: Bool?
    public var capital: Double?
    enum CodingKeys: String, CodingKey { case fill, units, closeAtEnd = "close_at_end", capital }

    public init(fill: String? = nil, units: String? = nil, closeAtEnd: Bool? = nil, capital: Double? = nil) {
      self.fill = fill
      self.units = units
      self.closeAtEnd = closeAtEnd
      self.capital = capital
    }
  }

  /// Several symbols ranked by an expression; the top N held in equal shares.
  public struct Portfolio: Codable, Sendable, Equatable {
    /// A series expression; higher ranks first, e.g. `roc(close, 20)`.
    public var rank: String
    public var top: Int
    /// `daily`, `weekly` (first bar of each week) or `monthly`.
    public var rebalance: String?
  }

  /// How live signals are graded: `strength` is an optional rules expression whose value at
  /// the signal's bar, clipped to 0–100, is the signal's `strength_raw` (100 without one); the
  /// thresholds name its level (strong ≥ strong, medium ≥ medium, weak ≥ weak, else none).
  /// `emit_hold` records a HOLD signal on every bar without a BUY or SELL.
  public struct SignalThresholds: Codable, Sendable, Equatable {
    public var strong: Double?
    public var medium: Double?
    public var weak: Double?
    public var strength: String?
    public var emitHold: Bool?

    public init(strong: Double? = nil, medium: Double? = nil, weak: Double? = nil, strength: String? = nil, emitHold: Bool? = nil) {
      self.strong = strong
      self.medium = medium
      self.weak = weak
      self.strength = strength
      self.emitHold = emitHold
    }

    enum CodingKeys: String, CodingKey { case strong, medium, weak, strength, emitHold = "emit_hold" }
  }

  public var name: String
  public var description: String?
  public var universe: Universe
  public var params: [String: Double]?
  public var rules: Rules
  public var sizing: Sizing?
  public var costs: Costs?
  public var risk: Risk?
  public var execution: Execution?
  public var signals: SignalThresholds?
  public var benchmark: String?
  public var portfolio: Portfolio?
}

/// A spec whose rules are parsed and checked, with every setting resolved.
public struct CompiledStrategy: Sendable {
  /// The largest starting capital a run accepts (backtests and paper accounts alike).
  public static let maxCapital = 1e15
  public var spec: StrategySpec
  /// Where the spec came from (its file), as errors name it.
  public var origin: String
  public var entry: Expression?
  public var exit: Expression?
  public var shortEntry: Expression?
  public var shortExit: Expression?
  /// Portfolio specs: the ranking expression.
  public var rank: Expression?
  /// `signals.strength`: a number or series whose value at a signal's bar is its strength.
  public var strength: Expression?
  public var parameters: [String: Double]
  public var capital: Double
  public var commission: Double
  public var commissionFixed: Double
  public var slippage: Double
  public var fillAtClose: Bool
  public var wholeUnits: Bool
  public var closeAtEnd: Bool
  /// What each `model("name")` of the rules reads, and how many bars its features need
  /// before their first value: attached by the engine (`models` names them).
  public var models: [String: any ModelSeries] = [:]
  public var modelWarmup: [String: Int] = [:]

  /// The feature columns the rules (or the ranking) read: names that are not prices, params
  /// or functions, which the data must have (`checkColumns`).
  public var featureColumns: [String] {
    var names: [String] = []
    for expression in [entry, exit, shortEntry, shortExit, rank].compactMap({ $0 }) {
      for name in expression.featureColumns where !names.contains(name) { names.append(name) }
    }
    return names
  }

  /// Refuses data without the feature columns the rules read, with the error of the rule
  /// parsed against the columns `bars` have (at the name, with a did-you-mean).
  public func checkColumns(of bars: BarSeries) throws {
    let missing = featureColumns.filter { bars.columns[$0] == nil }
    guard !missing.isEmpty else { return }
    let available = bars.columns.keys.sorted()
    let prefix = origin.isEmpty ? "" : origin + ":"
    let rules = [
      ("entry", spec.rules.entry), ("exit", spec.rules.exit), ("short_entry", spec.rules.shortEntry), ("short_exit", spec.rules.shortExit),
    ]
    for case (let name, let text?) in rules {
      _ = try RuleParser.parse(text, origin: "\(prefix)rules.\(name)", parameters: parameters, featureColumns: available)
    }
    if let rank = spec.portfolio?.rank {
      _ = try RuleParser.parse(rank, origin: "\(prefix)portfolio.rank", parameters: parameters, featureColumns: available)
    }
  }

  /// The models the rules (or the ranking) read, in order of first use.
  public var modelNames: [String] {
    var names: [String] = []
    for expression in [entry, exit, shortEntry, shortExit, rank].compactMap({ $0 }) {
      for name in expression.models where !names.contains(name) { names.append(name) }
    }
    return names
  }

  /// Parses the rules with `overrides` applied to the params; errors name the spec's file.
  public init(_ spec: StrategySpec, overrides: [String: Double] = [:], capital: Double? = nil, origin: String = "") throws {
    self.spec = spec
    self.origin = origin
    let prefix = origin.isEmpty ? "" : origin + ":"
    func invalid(_ path: String, _ message: String) -> SpecError { .field(path: path, origin: origin, message: message) }
    var parameters = spec.params ?? [:]
    // A param named like a column or a function is shadowed by it in the rules: `low` would
    // read the bar's low price, never the param.
    for name in parameters.keys.sorted()
    where RuleParser.columns.contains(name) || Functions.signature(name) != nil || ["true", "false"].contains(name) {
      let what =
        RuleParser.columns.contains(name) ? "the price column '\(name)'" : Functions.signature(name) != nil ? "the function '\(name)'" : "'\(name)'"
      throw invalid("params.\(name)", "cannot be a param's name: it reads as \(what) in the rules; rename it (e.g. \(name)_level)")
    }
    for (name, value) in parameters where !value.isFinite {
      throw invalid("params.\(name)", "must be a finite number, got \(value)")
    }
    for (key, value) in overrides {
      guard parameters[key] != nil else {
        throw UnknownParameter(name: key, known: parameters.keys.sorted())
      }
      guard value.isFinite else { throw InvalidParameterValue(name: key, value: value) }
      parameters[key] = value
    }
    self.parameters = parameters
    func rule(_ text: String?, _ name: String) throws -> Expression? {
      guard let text, !text.trimmingCharacters(in: .whitespaces).isEmpty else { return nil }
      let expression = try RuleParser.parse(text, origin: "\(prefix)rules.\(name)", parameters: parameters, allowAnyFeature: true)
      guard expression.type == .boolean else {
        // YAML's other spellings of a boolean (True, yes, on) and 1/0 reach here as names or numbers.
        let spelled = ["true", "yes", "on", "1", "false", "no", "off", "0"].firstIndex(of: text.trimmingCharacters(in: .whitespaces).lowercased())
        let hint = spelled.map { "; write \($0 < 4 ? "true" : "false") (lower case) for a rule that always or never holds" } ?? ""
        throw SpecError.invalid(
          "\(prefix)rules.\(name): a rule must be a condition (true or false), e.g. close > sma(close, 20); got \(expression)\(hint)")
      }
      return expression
    }
    entry = try rule(spec.rules.entry, "entry")
    exit = try rule(spec.rules.exit, "exit")
    shortEntry = try rule(spec.rules.shortEntry, "short_entry")
    shortExit = try rule(spec.rules.shortExit, "short_exit")
    if let portfolio = spec.portfolio {
      let rank = try RuleParser.parse(portfolio.rank, origin: "\(prefix)portfolio.rank", parameters: parameters, allowAnyFeature: true)
      guard rank.type != .boolean else { throw invalid("portfolio.rank", "must be a number to rank by, e.g. roc(close, 20)") }
      guard portfolio.top >= 1 else { throw invalid("portfolio.top", "must be at least 1") }
      guard ["daily", "weekly", "monthly"].contains(portfolio.rebalance ?? "monthly") else {
        throw invalid("portfolio.rebalance", "must be daily, weekly or monthly")
      }
      self.rank = rank
    } else {
      guard entry != nil || shortEntry != nil else { throw invalid("rules", "needs entry or short_entry") }
    }
    if let text = spec.signals?.strength, !text.trimmingCharacters(in: .whitespaces).isEmpty {
      let expression = try RuleParser.parse(text, origin: "\(prefix)signals.strength", parameters: parameters, allowConditionArithmetic: true)
      guard expression.type != .boolean else {
        throw invalid("signals.strength", "must be a number from 0 to 100, e.g. rsi(close, 14), not a condition")
      }
      strength = expression
    }
    if let signals = spec.signals {
      for (name, value) in [("strong", signals.strong), ("medium", signals.medium), ("weak", signals.weak)] {
        if let value, !(value >= 0 && value <= 100) { throw invalid("signals.\(name)", "must be from 0 to 100, got \(DisplayFormat.written(value))") }
      }
      let (strong, medium, weak) = (signals.strong ?? 80, signals.medium ?? 50, signals.weak ?? 20)
      guard strong >= medium, medium >= weak else {
        throw invalid(
          "signals", "thresholds must go down from strong to medium to weak, got \(DisplayFormat.written(strong)), \(DisplayFormat.written(medium)), \(DisplayFormat.written(weak))")
      }
    }
    self.capital = capital ?? spec.execution?.capital ?? 10_000
    // Above 1e15 a fill's units times price loses whole cents (and near 1e308 overflows, so
    // nothing fills and the run reports 0 % with exit 0).
    guard self.capital > 0, self.capital <= Self.maxCapital else {
      let message = "must be above 0 and at most 1e15, got \(DisplayFormat.written(self.capital))"
      // From the spec unless given with the run (--capital).
      throw capital == nil ? invalid("execution.capital", message) : SpecError.invalid("capital " + message)
    }
    commission = spec.costs?.commission ?? 0
    commissionFixed = spec.costs?.commissionFixed ?? 0
    slippage = (spec.costs?.slippageBps ?? 0) / 10_000
    guard commission >= 0, commission < 0.1 else {
      throw invalid("costs.commission", "must be a fraction from 0 to 0.1, e.g. 0.001; got \(DisplayFormat.written(commission))")
    }
    guard commissionFixed >= 0, commissionFixed.isFinite else {
      throw invalid("costs.commission_fixed", "must be 0 or more, in the account's currency; got \(DisplayFormat.written(commissionFixed))")
    }
    // Negative slippage fills better than the market; 1,000 bps (10%) is already absurd.
    guard let bps = Optional(spec.costs?.slippageBps ?? 0), bps >= 0, bps <= 1_000 else {
      throw invalid("costs.slippage_bps", "must be from 0 to 1000 (basis points against each fill), got \(DisplayFormat.written(spec.costs?.slippageBps ?? 0))")
    }
    let fill = spec.execution?.fill ?? "next_open"
    guard fill == "next_open" || fill == "close" else { throw invalid("execution.fill", "must be next_open or close, got \(fill)") }
    fillAtClose = fill == "close"
    let units = spec.execution?.units ?? "fractional"
    guard units == "fractional" || units == "whole" else { throw invalid("execution.units", "must be fractional or whole, got \(units)") }
    wholeUnits = units == "whole"
    closeAtEnd = spec.execution?.closeAtEnd ?? true
    if let fraction = spec.sizing?.fraction, !(fraction > 0 && fraction <= 1) {
      throw invalid("sizing.fraction", "must be above 0 and at most 1 (1 is the whole account), got \(DisplayFormat.written(fraction))")
    }
    for (name, value) in [
      ("stop_loss", spec.risk?.stopLoss), ("take_profit", spec.risk?.takeProfit), ("trailing_stop", spec.risk?.trailingStop),
      ("max_drawdown_halt", spec.risk?.maxDrawdownHalt),
    ] {
      // A long position cannot lose all of itself and more, so its stop or trail of 100% or
      // more never fires (a short's can); a halt of 100% never fires; a target is a gain.
      let shorts = spec.rules.shortEntry != nil
      let limit = name == "take_profit" ? 100.0 : (name == "max_drawdown_halt" || !shorts) ? 1.0 : 10.0
      if let value, !(value > 0 && value < limit) {
        let range = limit == 1 ? "between 0 and 1" : "above 0 and below \(Int(limit))"
        throw invalid("risk.\(name)", "must be a fraction \(range), e.g. 0.05 for 5%; got \(DisplayFormat.written(value))")
      }
    }
  }

  /// The first bar on which decisions are made: one past the longest indicator warm-up (as
  /// backtesting.py does), so no rule ever sees an indicator before it has a value.
  public var firstDecisionBar: Int { warmup.bars }

  /// The bars of history the rules need before a bar on which they decide — one past the
  /// longest look-back of any indicator, nested calls and `x[n]` offsets added up — and the
  /// sub-expression that needs the most (nil when none needs history). A portfolio's come
  /// from its ranking expression. `backtest run --from` loads this many stored bars before
  /// trading starts.
  public var warmup: (bars: Int, expression: String?) {
    var longest = (bars: 0, expression: String?.none)
    func consider(_ bars: Int, _ expression: Expression) {
      if bars > longest.bars { longest = (bars, expression.description) }
    }
    func warmup(_ expression: Expression) -> Int {
      switch expression {
      case .constant, .flag, .column: return 0
      case .model(let name):
        let bars = modelWarmup[name] ?? 0
        consider(bars, expression)
        return bars
      case .lag(let inner, let offset):
        // The one bar past the look-back already covers an offset of 1.
        let bars = warmup(inner) + max(0, offset - 1)
        consider(bars, expression)
        return bars
      case .negate(let inner), .not(let inner): return warmup(inner)
      case .binary(_, let lhs, let rhs): return max(warmup(lhs), warmup(rhs))
      case .call(let name, let arguments):
        let inner = arguments.map(warmup).max() ?? 0
        if ["cross_above", "cross_below", "abs", "min", "max"].contains(name) { return inner }
        let bars = max(inner, expression.lookback)
        consider(bars, expression)
        return bars
      }
    }
    // The strength grades every signal, the first included: a live run deciding before it is
    // warm would store those signals with no strength, and a backtest must decide where it does.
    let rules = (rank.map { [$0] } ?? [entry, exit, shortEntry, shortExit].compactMap { $0 }) + [strength].compactMap { $0 }
    let needed = rules.map(warmup).max() ?? 0
    return (1 + needed, longest.expression)
  }
}

/// A param override names no param of the spec.
public struct UnknownParameter: QtoolError, Equatable {
  public var name: String
  public var known: [String]
  public var category: ErrorCategory { .usage }
  public var code: String { "unknown_param" }
  public var message: String {
    "the strategy has no param '\(name)'" + (Similarity.closest(to: name, among: known).map { " — did you mean '\($0)'?" } ?? "")
      + "; its params: \(known.isEmpty ? "none" : known.joined(separator: ", "))"
  }
  public var details: [String: JSONValue] { ["field": .string("params.\(name)"), "params": .array(known.map { .string($0) })] }
}

/// A param override that is not a finite number.
public struct InvalidParameterValue: QtoolError, Equatable {
  public var name: String
  public var value: Double
  public var category: ErrorCategory { .usage }
  public var code: String { "invalid_param_value" }
  public var message: String { "param \(name): \(value) is not a finite number" }
  public var details: [String: JSONValue] { ["field": .string("params.\(name)")] }
}

extension StrategySpec {
  /// The trading settings a run used, in words, as `backtest show` and the HTML report list
  /// them: what tells two runs of one strategy apart besides its params.
  public func settingsSummary(capital: Double? = nil) -> [(name: String, value: String)] {
    func percent(_ value: Double) -> String {
      let text = String(format: "%.4f", value * 100).replacingOccurrences(of: #"\.?0+$"#, with: "", options: .regularExpression)
      return text + "%"
    }
    func number(_ value: Double) -> String { DisplayFormat.param(value) }
    var lines: [(String, String)] = []
    var costs = ["commission \(percent(self.costs?.commission ?? 0))"]
    if let fixed = self.costs?.commissionFixed, fixed != 0 { costs.append("+ \(number(fixed)) a fill") }
    costs.append("slippage \(number(self.costs?.slippageBps ?? 0)) bps")
    lines.append(("costs", costs.joined(separator: " ")))
    let sizing: String
    if let units = self.sizing?.units {
      sizing = "\(number(units)) units"
    } else if let notional = self.sizing?.notional {
      sizing = "\(number(notional)) a trade"
    } else {
      sizing = "\(percent(self.sizing?.fraction ?? 1)) of equity"
    }
    lines.append(("sizing", sizing))
    let execution = self.execution
    lines.append(
      (
        "execution",
        "fill at \(execution?.fill ?? "next_open"), \(execution?.units ?? "fractional") units, capital \(number(capital ?? execution?.capital ?? 10_000))"
          + ((execution?.closeAtEnd ?? true) ? ", closed at the end" : "")
      ))
    let risk = [
      self.risk?.stopLoss.map { "stop loss \(percent($0))" }, self.risk?.takeProfit.map { "take profit \(percent($0))" },
      self.risk?.trailingStop.map { "trailing stop \(percent($0))" }, self.risk?.maxDrawdownHalt.map { "halt at \(percent($0)) drawdown" },
    ].compactMap { $0 }
    lines.append(("risk", risk.isEmpty ? "none" : risk.joined(separator: ", ")))
    return lines
  }
}

public enum SpecError: QtoolError, Equatable {
  case invalid(String)
  /// A value of the spec out of its range: `path` is where it is (`risk.stop_loss`), so that a
  /// loader holding the YAML can say at which line and column.
  case field(path: String, origin: String, message: String)
  public var category: ErrorCategory { .invalidInput }
  public var code: String { "invalid_spec" }
  public var message: String {
    switch self {
    case .invalid(let message): return message
    case .field(let path, let origin, let message): return "\(origin.isEmpty ? "" : origin + ": ")\(path) \(message)"
    }
  }
}
