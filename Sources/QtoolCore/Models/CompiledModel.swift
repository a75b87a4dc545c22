import Foundation

/// What a label is: a class (binary, multi-class) or a number (regression).
public enum LabelKind: String, Codable, Sendable, CaseIterable {
  case binary, regression, multiclass
}

/// The model families: gradient-boosted trees (XGBoost), logistic and ridge regression.
public enum ModelFamily: String, Codable, Sendable, CaseIterable {
  case gbt, logistic, ridge
}

/// A feature: its column name and parsed expression.
public struct NamedExpression: Sendable, Equatable {
  public var name: String
  public var expression: Expression
}

/// A time range `[from, to)` in epoch milliseconds; nil ends are open.
public struct TimeBlock: Codable, Sendable, Equatable {
  public var from: Int64?
  public var to: Int64?
  public init(from: Int64?, to: Int64?) {
    self.from = from
    self.to = to
  }
  public func contains(_ t: Int64) -> Bool { (from.map { t >= $0 } ?? true) && (to.map { t < $0 } ?? true) }

  /// `2010-01-01..2011-06-30`, `..2009-12-31`, `2011-07-01..`.
  public var text: String {
    // An end at midnight is the day before's end: `..2009-12-31`, as a spec writes it.
    let end = to.map { $0 % UTCCalendar.dayMilliseconds == 0 ? UTCCalendar.format($0 - UTCCalendar.dayMilliseconds) : UTCCalendar.format($0 - 1) }
    return "\(from.map { UTCCalendar.format($0) } ?? "")..\(end ?? "")"
  }
}

/// How a model's rows are cut in time: one train/valid/test split, or walk-forward windows.
public enum TrainingPlan: Sendable, Equatable {
  case split(train: TimeBlock, valid: TimeBlock?, test: TimeBlock?)
  case walkForward(train: PeriodSpan, valid: PeriodSpan?, test: PeriodSpan, step: PeriodSpan, expanding: Bool)
}

/// A model spec with its expressions parsed and every setting checked and resolved.
public struct CompiledModel: Sendable {
  public var spec: ModelSpec
  public var parameters: [String: Double]
  public var features: [NamedExpression]
  public var label: Expression
  public var kind: LabelKind
  /// Bars after each row the label reads (`forward_return(close, 5)`: 5).
  public var horizon: Int
  public var family: ModelFamily
  /// Boosting rounds (gbt), Newton steps at most (logistic), 1 (ridge): the epochs.
  public var epochs: Int
  /// Stop after this many epochs without a better validation loss (needs a valid block).
  public var earlyStopping: Int?
  /// gbt: XGBoost's parameters as given (names and values passed through), in a stable order.
  public var boosterParameters: [[String]]
  /// logistic: the L2 penalty λ (scikit-learn's C = 1/λ); ridge: α.
  public var penalty: Double
  public var tolerance: Double
  public var plan: TrainingPlan
  /// Bars dropped before each boundary between blocks, so no training label reads a later block.
  public var purge: Int

  /// Settings of the model section each family takes (gbt passes any other key to XGBoost).
  static let qtoolKeys: [ModelFamily: [String]] = [
    .gbt: ["family", "rounds", "early_stopping", "threads", "seed"],
    .logistic: ["family", "lambda", "max_iter", "tol", "early_stopping"],
    .ridge: ["family", "alpha"],
  ]
  /// XGBoost settings qtool sets itself from the label.
  static let reservedBoosterKeys = ["objective", "eval_metric", "num_class", "validate_parameters"]

  /// The bars of history the features need before their first value (the longest look-back).
  public var featureLookback: Int { features.map(\.expression.lookback).max() ?? 0 }

  public var featureNames: [String] { features.map(\.name) }

  /// - parameter walkForward: use the spec's `walk_forward` section even when it has a `split`.
  public init(_ spec: ModelSpec, overrides: [String: Double] = [:], walkForward: Bool = false, origin: String = "") throws {
    self.spec = spec
    let prefix = origin.isEmpty ? "" : origin + ":"
    func invalid(_ message: String) -> ModelSpecError { ModelSpecError.invalid(prefix + message) }
    do {
      try Identifier.check(spec.name, as: .model)
    } catch let error as InvalidName {
      throw invalid(error.message)
    }
    var parameters = spec.params ?? [:]
    for (name, value) in parameters where !value.isFinite { throw invalid("params.\(name): \(value) is not a finite number") }
    for name in parameters.keys.sorted() where RuleParser.columns.contains(name) || Functions.signature(name) != nil {
      throw invalid("params.\(name): a param cannot be named like a column or a function; rename it")
    }
    for (key, value) in overrides {
      guard parameters[key] != nil else { throw UnknownParameter(name: key, known: parameters.keys.sorted()) }
      guard value.isFinite else { throw InvalidParameterValue(name: key, value: value) }
      parameters[key] = value
    }
    self.parameters = parameters

    func parse(_ text: String, _ place: String, lookahead: Bool) throws -> Expression {
      try RuleParser.parse(text, origin: prefix + place, parameters: parameters, allowLookahead: lookahead, allowModels: false)
    }
    guard !spec.features.isEmpty else { throw invalid("features: a model needs at least one feature, e.g. rsi14: rsi(close, 14)") }
    var seen = Set<String>()
    var features: [NamedExpression] = []
    for feature in spec.features {
      guard Self.isColumnName(feature.name) else {
        throw invalid("features.\(feature.name): a feature's name is letters, digits and _, starting with a letter")
      }
      guard seen.insert(feature.name).inserted else { throw invalid("features.\(feature.name) is given twice") }
      let expression = try parse(feature.expr, "features.\(feature.name)", lookahead: false)
      guard expression.type != .number else {
        throw invalid("features.\(feature.name): \(expression) is the same on every bar; a feature reads the bars, e.g. rsi(close, 14)")
      }
      features.append(NamedExpression(name: feature.name, expression: expression))
    }
    guard features.count <= 10_000 else { throw invalid("features: at most 10000") }
    self.features = features

    guard let kind = LabelKind(rawValue: spec.label.kind ?? "binary") else {
      throw invalid("label.kind must be binary, regression or multiclass, got \(spec.label.kind ?? "")")
    }
    self.kind = kind
    label = try parse(spec.label.expr, "label.expr", lookahead: true)
    horizon = label.lookahead
    guard horizon > 0 else {
      throw invalid(
        "label.expr reads no later bar: a label says what happens next, e.g. forward_return(close, 5) > 0 or future(close, 1) > close")
    }
    if kind == .binary, label.type != .boolean {
      throw invalid("label.expr of a binary label is a condition, e.g. forward_return(close, \(horizon)) > 0; got \(label)")
    }
    if kind != .binary, label.type == .boolean {
      throw invalid("label.expr of a \(kind.rawValue) label is a number, not a condition; use kind: binary for a condition")
    }

    guard case .string(let familyName) = spec.model["family"] ?? .string("gbt"), let family = ModelFamily(rawValue: familyName) else {
      throw invalid("model.family must be gbt, logistic or ridge")
    }
    self.family = family
    if family == .logistic, kind != .binary { throw invalid("model.family logistic needs a binary label; use ridge or gbt for \(kind.rawValue)") }
    if family == .ridge, kind != .regression {
      throw invalid("model.family ridge needs a regression label; use logistic or gbt for \(kind.rawValue)")
    }
    func number(_ key: String) throws -> Double? {
      guard let value = spec.model[key] else { return nil }
      switch value {
      case .int(let v): return Double(v)
      case .number(let v) where v.isFinite: return v
      case .string(let name) where parameters[name] != nil: return parameters[name]
      default: throw invalid("model.\(key) must be a number, got \(Self.text(value))")
      }
    }
    func whole(_ key: String, _ range: ClosedRange<Int>) throws -> Int? {
      guard let value = try number(key) else { return nil }
      guard value == value.rounded(), value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
        throw invalid("model.\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound), got \(value)")
      }
      return Int(value)
    }
    earlyStopping = try whole("early_stopping", 1...100_000)
    var booster: [[String]] = []
    penalty = 0
    tolerance = 1e-10
    switch family {
    case .gbt:
      epochs = try whole("rounds", 1...100_000) ?? 100
      if let threads = try whole("threads", 1...1024) { booster.append(["nthread", "\(threads)"]) }
      if let seed = try whole("seed", 0...Int(Int32.max)) { booster.append(["seed", "\(seed)"]) }
      for key in spec.model.keys.sorted() where !(Self.qtoolKeys[.gbt]!.contains(key)) {
        guard !Self.reservedBoosterKeys.contains(key) else {
          throw invalid("model.\(key) is set by qtool from label.kind (\(kind.rawValue)); leave it out")
        }
        let value: String
        switch spec.model[key]! {
        case .int(let v): value = "\(v)"
        case .number(let v) where v.isFinite: value = "\(v)"
        case .bool(let v): value = v ? "1" : "0"
        case .string(let s): value = parameters[s].map(DisplayFormat.written) ?? s
        default: throw invalid("model.\(key) must be a number, a word or true/false")
        }
        booster.append([key, value])
      }
    case .logistic:
      try Self.checkKeys(spec.model, family, invalid)
      epochs = try whole("max_iter", 1...10_000) ?? 100
      penalty = try number("lambda") ?? 1
      tolerance = try number("tol") ?? 1e-10
      guard penalty >= 0 else { throw invalid("model.lambda must be 0 or more (the L2 penalty; scikit-learn's C is 1/lambda)") }
      guard tolerance > 0 else { throw invalid("model.tol must be positive") }
    case .ridge:
      try Self.checkKeys(spec.model, family, invalid)
      epochs = 1
      penalty = try number("alpha") ?? 1
      guard penalty >= 0 else { throw invalid("model.alpha must be 0 or more") }
    }
    boosterParameters = booster

    let horizon = self.horizon
    func purgeBars(_ value: JSONValue?, _ place: String) throws -> Int {
      guard let value else { return horizon }
      let bars: Double
      switch value {
      case .int(let v): bars = Double(v)
      case .number(let v): bars = v
      case .string(let name):
        guard let v = parameters[name] else { throw invalid("\(place).purge: '\(name)' is not a param; give a number of bars or a param's name") }
        bars = v
      default: throw invalid("\(place).purge must be a number of bars or a param's name")
      }
      guard bars == bars.rounded(), bars >= 0, bars <= 1_000_000 else { throw invalid("\(place).purge must be a whole number of bars") }
      guard Int(bars) >= horizon else {
        throw invalid(
          "\(place).purge is \(Int(bars)) bars but the label reads \(horizon) bars ahead: training labels would see the next block; purge at least \(horizon)"
        )
      }
      return Int(bars)
    }
    if walkForward || spec.split == nil {
      guard let windows = spec.walkForward else {
        throw invalid(
          walkForward
            ? "walk-forward training needs a walk_forward section, e.g. walk_forward: { train: 2y, valid: 3m, test: 1m, step: 1m }"
            : "the spec needs a split (train/valid/test dates) or a walk_forward section")
      }
      func span(_ text: String?, _ key: String) throws -> PeriodSpan? {
        guard let text else { return nil }
        guard let span = PeriodSpan(text) else { throw invalid("walk_forward.\(key): expected a length like 2y, 6m, 4w or 30d, got '\(text)'") }
        return span
      }
      let train = try span(windows.train, "train")!
      let test = try span(windows.test, "test")!
      let step = try span(windows.step, "step") ?? test
      let probe: Int64 = 0
      guard step.after(probe) >= test.after(probe) else {
        throw invalid("walk_forward.step (\(step)) is shorter than test (\(test)): test blocks would overlap; make step at least test")
      }
      plan = .walkForward(train: train, valid: try span(windows.valid, "valid"), test: test, step: step, expanding: windows.expanding ?? false)
      purge = try purgeBars(windows.purge, "walk_forward")
      if earlyStopping != nil, windows.valid == nil { throw invalid("model.early_stopping needs a valid window in walk_forward") }
    } else {
      let split = spec.split!
      func block(_ text: String?, _ key: String) throws -> TimeBlock? {
        guard let text else { return nil }
        guard let block = Self.parseRange(text) else {
          throw invalid("split.\(key): expected FROM..TO with dates (either may be left out), e.g. 2010-01-01..2011-06-30; got '\(text)'")
        }
        return block
      }
      guard let train = try block(split.train, "train") else { throw invalid("split.train is missing, e.g. train: ..2009-12-31") }
      let valid = try block(split.valid, "valid")
      let test = try block(split.test, "test")
      let ordered = [("train", train), ("valid", valid), ("test", test)].compactMap { name, block in block.map { (name, $0) } }
      for (a, b) in zip(ordered, ordered.dropFirst()) {
        guard let end = a.1.to, let start = b.1.from, end <= start else {
          throw invalid("split.\(a.0) (\(a.1.text)) must end before split.\(b.0) (\(b.1.text)) begins")
        }
      }
      plan = .split(train: train, valid: valid, test: test)
      purge = try purgeBars(split.purge, "split")
      if earlyStopping != nil, valid == nil { throw invalid("model.early_stopping needs split.valid: early stopping watches the validation loss") }
    }
  }

  static func checkKeys(_ model: [String: JSONValue], _ family: ModelFamily, _ invalid: (String) -> ModelSpecError) throws {
    let known = qtoolKeys[family]!
    for key in model.keys.sorted() where !known.contains(key) {
      throw invalid(
        "model.\(key) is not a setting of \(family.rawValue)" + (Similarity.closest(to: key, among: known).map { " — did you mean '\($0)'?" } ?? "")
          + "; its settings: \(known.dropFirst().joined(separator: ", "))")
    }
  }

  static func isColumnName(_ name: String) -> Bool {
    guard let first = name.unicodeScalars.first, first.isASCII, CharacterSet.letters.contains(first), name.count <= 64 else { return false }
    return name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }
  }

  static func text(_ value: JSONValue) -> String {
    switch value {
    case .string(let s): return "'\(s)'"
    case .int(let v): return "\(v)"
    case .number(let v): return "\(v)"
    case .bool(let v): return "\(v)"
    default: return "a list or mapping"
    }
  }

  /// `A..B` with inclusive dates (or times); either end may be left out.
  public static func parseRange(_ text: String) -> TimeBlock? {
    let parts = text.trimmingCharacters(in: .whitespaces).components(separatedBy: "..")
    guard parts.count == 2 else { return nil }
    func instant(_ part: String, end: Bool) -> Int64?? {
      let part = part.trimmingCharacters(in: .whitespaces)
      if part.isEmpty { return .some(nil) }
      guard let t = TimestampParser.parse(part) else { return nil }
      // A date's end is the end of its day; a time's is that instant.
      if end { return .some(part.count <= 10 ? t + UTCCalendar.dayMilliseconds : t + 1) }
      return .some(t)
    }
    guard let from = instant(parts[0], end: false), let to = instant(parts[1], end: true) else { return nil }
    if let from, let to, to <= from { return nil }
    return TimeBlock(from: from, to: to)
  }
}

/// A model spec that cannot be trained as written: invalid input (65), as a strategy spec's
/// errors are, pointing at the field.
public enum ModelSpecError: QtoolError, Equatable {
  case invalid(String)
  public var category: ErrorCategory { .invalidInput }
  public var code: String { "invalid_model_spec" }
  public var message: String {
    switch self {
    case .invalid(let message): return message
    }
  }
}
