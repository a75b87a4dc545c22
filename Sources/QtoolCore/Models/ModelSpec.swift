import Foundation

/// A model spec (YAML or JSON), registered and versioned like a strategy spec: features are
/// rules-language expressions, the label is one that may look ahead, and the model section
/// names the family and its settings. The same Codable type is the REST request body.
///
/// ```yaml
/// name: goog-up
/// dataset: GOOG-1d
/// params: { h: 5 }
/// features:
///   rsi14: rsi(close, 14)
///   trend: close / sma(close, 50) - 1
/// label: { expr: forward_return(close, h) > 0, kind: binary }
/// model: { family: gbt, rounds: 50, max_depth: 3, eta: 0.1 }
/// split: { train: ..2009-12-31, valid: 2010-01-01..2011-06-30, test: 2011-07-01.., purge: h }
/// ```
public struct ModelSpec: Codable, Sendable, Equatable {
  public struct Feature: Codable, Sendable, Equatable {
    public var name: String
    public var expr: String
    public init(name: String, expr: String) {
      self.name = name
      self.expr = expr
    }
  }

  public struct Label: Codable, Sendable, Equatable {
    public var expr: String
    /// `binary` (default), `regression` or `multiclass`.
    public var kind: String?
    public init(expr: String, kind: String? = nil) {
      self.expr = expr
      self.kind = kind
    }
  }

  /// Several symbols at one timeframe: their rows are pooled into one training set.
  public struct Universe: Codable, Sendable, Equatable {
    public var symbols: [String]
    public var timeframe: String
  }

  /// Date ranges `FROM..TO` (inclusive days, either end open), and the bars purged at each
  /// boundary (a number or a param's name; default: the label's look-ahead).
  public struct Split: Codable, Sendable, Equatable {
    public var train: String?
    public var valid: String?
    public var test: String?
    public var purge: JSONValue?
    public init(train: String?, valid: String? = nil, test: String? = nil, purge: JSONValue? = nil) {
      self.train = train
      self.valid = valid
      self.test = test
      self.purge = purge
    }
  }

  /// Rolling (or expanding) windows: lengths like `2y`, `3m` (months), `2w`, `30d`.
  public struct WalkForward: Codable, Sendable, Equatable {
    public var train: String
    public var valid: String?
    public var test: String
    public var step: String?
    public var expanding: Bool?
    public var purge: JSONValue?
  }

  public var name: String
  public var description: String?
  public var dataset: String?
  public var universe: Universe?
  public var params: [String: Double]?
  /// In the order written: it is the order of the model's columns.
  public var features: [Feature]
  public var label: Label
  /// `family` (gbt, logistic, ridge) and its settings; gbt's pass through to XGBoost.
  public var model: [String: JSONValue]
  public var split: Split?
  public var walkForward: WalkForward?

  enum CodingKeys: String, CodingKey {
    case name, description, dataset, universe, params, features, label, model, split, walkForward = "walk_forward"
  }

  public init(
    name: String, description: String? = nil, dataset: String? = nil, universe: Universe? = nil, params: [String: Double]? = nil,
    features: [Feature], label: Label, model: [String: JSONValue], split: Split? = nil, walkForward: WalkForward? = nil
  ) {
    self.name = name
    self.description = description
    self.dataset = dataset
    self.universe = universe
    self.params = params
    self.features = features
    self.label = label
    self.model = model
    self.split = split
    self.walkForward = walkForward
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    name = try container.decode(String.self, forKey: .name)
    description = try container.decodeIfPresent(String.self, forKey: .description)
    dataset = try container.decodeIfPresent(String.self, forKey: .dataset)
    universe = try container.decodeIfPresent(Universe.self, forKey: .universe)
    params = try container.decodeIfPresent([String: Double].self, forKey: .params)
    // A list of {name, expr}, or a mapping name → expression (the loader keeps its written
    // order; a decoder that cannot sorts the names).
    if let list = try? container.decode([Feature].self, forKey: .features) {
      features = list
    } else {
      let mapping = try container.decode([String: String].self, forKey: .features)
      features = mapping.keys.sorted().map { Feature(name: $0, expr: mapping[$0]!) }
    }
    label = try container.decode(Label.self, forKey: .label)
    model = try container.decode([String: JSONValue].self, forKey: .model)
    split = try container.decodeIfPresent(Split.self, forKey: .split)
    walkForward = try container.decodeIfPresent(WalkForward.self, forKey: .walkForward)
  }
}

/// A length of calendar time for walk-forward windows: `30d`, `2w`, `3m` (months), `2y`.
public struct PeriodSpan: Sendable, Equatable, CustomStringConvertible {
  public var count: Int
  public var unit: Character

  public var description: String { "\(count)\(unit)" }

  public init?(_ text: String) {
    let text = text.trimmingCharacters(in: .whitespaces)
    guard let unit = text.last, "dwmy".contains(unit), let count = Int(text.dropLast()), count > 0, count <= 10_000 else { return nil }
    self.count = count
    self.unit = unit
  }

  /// `timestamp` moved forward by the span (months and years by the calendar).
  public func after(_ timestamp: Int64) -> Int64 {
    switch unit {
    case "d": return timestamp + Int64(count) * 86_400_000
    case "w": return timestamp + Int64(count) * 604_800_000
    default:
      let months = unit == "m" ? count : count * 12
      let (year, month, day, rest) = UTCCalendar.components(timestamp)
      let total = year * 12 + (month - 1) + months
      let (newYear, newMonth) = (total / 12, total % 12 + 1)
      let lastDay = Int(
        UTCCalendar.days(year: newMonth == 12 ? newYear + 1 : newYear, month: newMonth == 12 ? 1 : newMonth + 1, day: 1)
          - UTCCalendar.days(year: newYear, month: newMonth, day: 1))
      return UTCCalendar.timestamp(year: newYear, month: newMonth, day: min(day, lastDay)) + rest
    }
  }
}
