import Foundation

/// One step of a preprocessing pipeline, as in the REST body
/// `{"operations":[{"type":"fill_missing","method":"forward_fill","columns":["close"]}, …]}`.
public struct PreprocessOperation: Codable, Sendable, Equatable {
  public var type: String
  public var method: String?
  public var columns: [String]?
  /// resample: the target timeframe.
  public var timeframe: String?
  /// clip_outliers zscore: how many standard deviations.
  public var threshold: Double?
  /// clip_outliers percentile: the kept quantile range, e.g. 0.01 and 0.99.
  public var lower: Double?
  public var upper: Double?
  /// features: named rules-language expressions, e.g. `[{"name": "rsi14", "expr": "rsi(close, 14)"}]`
  /// (the language of strategies and models: `qtool help rules`).
  public var features: [ModelSpec.Feature]?
  /// fill_missing: also fill the 1- and 2-weekday runs a weekdays calendar takes for market
  /// holidays (`Preprocessor.fillRule`).
  public var holidays: Bool?
  /// fill_missing: the most bars it may insert (`Preprocessor.defaultFillLimit` when absent), so a
  /// stray far-future timestamp cannot make it build billions of bars.
  public var maxBars: Int?
  /// normalize: the fitted parameters per column (filled in when the pipeline runs), so the
  /// same scaling can be applied again to new data.
  public var parameters: [String: [Double]]?

  public init(
    type: String, method: String? = nil, columns: [String]? = nil, timeframe: String? = nil, threshold: Double? = nil,
    lower: Double? = nil, upper: Double? = nil, features: [ModelSpec.Feature]? = nil, parameters: [String: [Double]]? = nil, holidays: Bool? = nil,
    maxBars: Int? = nil
  ) {
    self.holidays = holidays
    self.maxBars = maxBars
    self.type = type
    self.method = method
    self.columns = columns
    self.timeframe = timeframe
    self.threshold = threshold
    self.lower = lower
    self.upper = upper
    self.features = features
    self.parameters = parameters
  }

  public static let types = ["fill_missing", "resample", "normalize", "dedupe", "clip_outliers", "features"]

  enum CodingKeys: String, CodingKey { case type, method, columns, timeframe, threshold, lower, upper, features, holidays, maxBars = "max_bars", parameters = "fitted" }
  /// The name pipelines stored before the JSON vocabulary (`qtool help json`) used for `fitted`.
  enum LegacyKeys: String, CodingKey { case parameters }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    type = try container.decode(String.self, forKey: .type)
    method = try container.decodeIfPresent(String.self, forKey: .method)
    columns = try container.decodeIfPresent([String].self, forKey: .columns)
    timeframe = try container.decodeIfPresent(String.self, forKey: .timeframe)
    threshold = try container.decodeIfPresent(Double.self, forKey: .threshold)
    lower = try container.decodeIfPresent(Double.self, forKey: .lower)
    upper = try container.decodeIfPresent(Double.self, forKey: .upper)
    features = try container.decodeIfPresent([ModelSpec.Feature].self, forKey: .features)
    holidays = try container.decodeIfPresent(Bool.self, forKey: .holidays)
    maxBars = try container.decodeIfPresent(Int.self, forKey: .maxBars)
    parameters =
      try container.decodeIfPresent([String: [Double]].self, forKey: .parameters)
      ?? decoder.container(keyedBy: LegacyKeys.self).decodeIfPresent([String: [Double]].self, forKey: .parameters)
  }

  /// Parses the command-line form `type key=value key=a,b`, e.g.
  /// `fill_missing method=forward_fill columns=close,volume`.
  public static func parse(_ text: String) throws -> PreprocessOperation {
    let words = text.split(separator: " ").map(String.init)
    guard let type = words.first else { throw PreprocessError.invalid("an operation is empty; write e.g. 'resample timeframe=4h'") }
    guard types.contains(type) else {
      throw PreprocessError.invalid(
        "unknown operation '\(type)'" + (Similarity.closest(to: type, among: types).map { " — did you mean '\($0)'?" } ?? "")
          + "; operations: \(types.joined(separator: ", "))")
    }
    var operation = PreprocessOperation(type: type)
    if type == "features" {
      // `features rsi14=rsi(close, 14); trend=close / sma(close, 50) - 1`: expressions have
      // spaces and commas, so features are separated by semicolons.
      let body = text.drop { $0 == " " }.dropFirst(type.count)
      operation.features = try body.split(separator: ";").map { part in
        let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
        if pair.first == "indicators" {
          throw PreprocessError.invalid(
            "features: the indicators= list is gone; features are rules-language expressions now, e.g. 'features sma20=sma(close, 20); rsi14=rsi(close, 14)'"
          )
        }
        guard pair.count == 2, !pair[0].isEmpty, !pair[1].isEmpty else {
          throw PreprocessError.invalid(
            "features: expected name=expression pairs separated by ';', e.g. 'features rsi14=rsi(close, 14); trend=close / sma(close, 50) - 1'; got '\(part.trimmingCharacters(in: .whitespaces))'"
          )
        }
        return ModelSpec.Feature(name: pair[0], expr: pair[1])
      }
      return operation
    }
    for word in words.dropFirst() {
      let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2 else { throw PreprocessError.invalid("\(type): expected key=value, got '\(word)'") }
      let list = parts[1].split(separator: ",").map(String.init)
      func number() throws -> Double {
        guard let value = Double(parts[1]) else { throw PreprocessError.invalid("\(type): \(parts[0]) must be a number, got '\(parts[1])'") }
        return value
      }
      switch parts[0] {
      case "method": operation.method = parts[1]
      case "columns": operation.columns = list
      case "timeframe": operation.timeframe = parts[1]
      case "threshold": operation.threshold = try number()
      case "lower": operation.lower = try number()
      case "upper": operation.upper = try number()
      case "holidays":
        guard let value = Bool(parts[1]) else { throw PreprocessError.invalid("\(type): holidays must be true or false, got '\(parts[1])'") }
        operation.holidays = value
      case "max_bars":
        guard let value = Int(parts[1]), value >= 0 else {
          throw PreprocessError.invalid("\(type): max_bars must be a whole number of bars, got '\(parts[1])'")
        }
        operation.maxBars = value
      default:
        throw PreprocessError.invalid(
          "\(type): unknown key '\(parts[0])' (method, columns, timeframe, threshold, lower, upper, holidays, max_bars)")
      }
    }
    return operation
  }
}

public enum PreprocessError: QtoolError, Equatable {
  case invalid(String)

  public var category: ErrorCategory { .usage }
  public var code: String { "invalid_operation" }
  public var message: String {
    switch self {
    case .invalid(let message): return message
    }
  }
}
