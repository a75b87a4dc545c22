import Foundation
import QtoolCore

/// Rows of features with their labels: values row-major, `rows × columns`, NaN for missing.
public struct TrainingSet: Sendable {
  public var values: [Double]
  public var rows: Int
  public var columns: Int
  public var labels: [Double]

  public init(values: [Double], rows: Int, columns: Int, labels: [Double]) {
    precondition(values.count == rows * columns && labels.count == rows, "a training set's values fill its rows and columns")
    self.values = values
    self.rows = rows
    self.columns = columns
    self.labels = labels
  }
}

/// One epoch's figures on the training and validation rows: `loss` is log loss (binary,
/// multi-class) or RMSE (regression); `accuracy` is 1 − error for classes; `mae` for regression.
public struct EpochFigures: Codable, Sendable, Equatable {
  public var epoch: Int
  public var trainLoss: Double
  public var trainAccuracy: Double?
  public var trainMAE: Double?
  public var validLoss: Double?
  public var validAccuracy: Double?
  public var validMAE: Double?

  public init(
    epoch: Int, trainLoss: Double, trainAccuracy: Double? = nil, trainMAE: Double? = nil, validLoss: Double? = nil, validAccuracy: Double? = nil,
    validMAE: Double? = nil
  ) {
    self.epoch = epoch
    self.trainLoss = trainLoss
    self.trainAccuracy = trainAccuracy
    self.trainMAE = trainMAE
    self.validLoss = validLoss
    self.validAccuracy = validAccuracy
    self.validMAE = validMAE
  }

  enum CodingKeys: String, CodingKey {
    case epoch, trainLoss = "loss", trainAccuracy = "accuracy", trainMAE = "mae", validLoss = "val_loss", validAccuracy = "val_accuracy"
    case validMAE = "val_mae"
  }

  /// The figures by their stored names (`loss`, `accuracy`, `val_loss`, …), present ones only.
  public var named: [String: Double] {
    var figures = ["loss": trainLoss]
    figures["accuracy"] = trainAccuracy
    figures["mae"] = trainMAE
    figures["val_loss"] = validLoss
    figures["val_accuracy"] = validAccuracy
    figures["val_mae"] = validMAE
    return figures
  }
}

/// Gradient-boosted trees through XGBoost, trained one round (one epoch) at a time so a caller
/// can report, stop early and cancel between rounds.
///
/// ```swift
/// let trainer = try GBTTrainer(train: train, valid: valid, kind: .binary, parameters: ["max_depth": "3", "eta": "0.1"])
/// for round in 0..<50 { print(try trainer.round(round)) }
/// let model = try trainer.model(rounds: 50)
/// ```
public final class GBTTrainer {
  let train: DMatrix
  let valid: DMatrix?
  let booster: Booster
  public let kind: LabelKind
  /// What XGBoost said while it was set up (unknown parameters, deprecations).
  public private(set) var libraryMessages: [String]

  /// The parameters qtool sets unless the spec does: one thread and the histogram method, so
  /// the same data and seed give the same model bit for bit.
  public static let defaults: [(String, String)] = [("tree_method", "hist"), ("nthread", "1"), ("seed", "0")]

  /// - parameter parameters: XGBoost's own names and values, passed through (`max_depth`,
  ///   `eta`, `subsample`, …); `nthread`, `tree_method` and `seed` default as `defaults` say.
  /// - parameter classes: the number of classes of a multi-class label.
  public init(train: TrainingSet, valid: TrainingSet?, kind: LabelKind, parameters: [(String, String)], classes: Int = 2) throws {
    _ = XGBoostLog.drain()
    self.kind = kind
    self.train = try DMatrix(
      values: train.values.map { Float($0) }, rows: train.rows, columns: train.columns, labels: train.labels.map { Float($0) })
    self.valid = try valid.map {
      try DMatrix(values: $0.values.map { Float($0) }, rows: $0.rows, columns: $0.columns, labels: $0.labels.map { Float($0) })
    }
    var settings: [(String, String)] = []
    switch kind {
    case .binary: settings = [("objective", "binary:logistic"), ("eval_metric", "logloss"), ("eval_metric", "error")]
    case .regression: settings = [("objective", "reg:squarederror"), ("eval_metric", "rmse"), ("eval_metric", "mae")]
    case .multiclass:
      settings = [("objective", "multi:softprob"), ("num_class", "\(classes)"), ("eval_metric", "mlogloss"), ("eval_metric", "merror")]
    }
    let given = Set(parameters.map(\.0))
    settings = Self.defaults.filter { !given.contains($0.0) } + settings.filter { !given.contains($0.0) || $0.0 == "eval_metric" } + parameters
    settings.append(("validate_parameters", "1"))
    booster = try Booster(cache: [self.train] + (self.valid.map { [$0] } ?? []), parameters: settings)
    libraryMessages = []
  }

  /// Trains round `index` (from 0) and returns its figures, as the library evaluates them.
  public func round(_ index: Int) throws -> EpochFigures {
    try XGBoostLog.install()
    try booster.updateOneIteration(index, train)
    var sets = [(train, "train")]
    if let valid { sets.append((valid, "valid")) }
    let line = try booster.evaluate(index, sets)
    libraryMessages += XGBoostLog.drain()
    return try Self.figures(line, epoch: index, kind: kind)
  }

  /// Parses `[3]\ttrain-logloss:0.61\ttrain-error:0.3\tvalid-logloss:…`.
  static func figures(_ line: String, epoch: Int, kind: LabelKind) throws -> EpochFigures {
    var values: [String: Double] = [:]
    for field in line.split(separator: "\t").dropFirst() {
      let parts = field.split(separator: ":", maxSplits: 1)
      guard parts.count == 2, let value = Double(parts[1]) else { continue }
      values[String(parts[0])] = value
    }
    func value(_ key: String) -> Double? { values[key] }
    switch kind {
    case .binary, .multiclass:
      let (loss, error) = kind == .binary ? ("logloss", "error") : ("mlogloss", "merror")
      guard let trainLoss = value("train-\(loss)") else { throw ModelError("XGBoost's evaluation had no train-\(loss): \(line)") }
      return EpochFigures(
        epoch: epoch, trainLoss: trainLoss, trainAccuracy: value("train-\(error)").map { 1 - $0 }, validLoss: value("valid-\(loss)"),
        validAccuracy: value("valid-\(error)").map { 1 - $0 })
    case .regression:
      guard let trainLoss = value("train-rmse") else { throw ModelError("XGBoost's evaluation had no train-rmse: \(line)") }
      return EpochFigures(
        epoch: epoch, trainLoss: trainLoss, trainMAE: value("train-mae"), validLoss: value("valid-rmse"), validMAE: value("valid-mae"))
    }
  }

  /// The trained model, predicting with its first `rounds` rounds (the best epoch + 1).
  public func model(rounds: Int) throws -> GBTModel {
    try GBTModel(data: booster.save(format: "ubj"), rounds: rounds)
  }
}

/// A trained booster, saved as XGBoost's UBJSON, predicting with its first `rounds` rounds.
public final class GBTModel: @unchecked Sendable {
  /// The model as XGBoost saved it (UBJSON or JSON).
  public let data: Data
  public let rounds: Int
  let booster: Booster
  /// Serialises predictions: one booster is not to be used by two threads at once.
  private let lock = NSLock()

  public init(data: Data, rounds: Int) throws {
    self.data = data
    self.rounds = rounds
    booster = try Booster(buffer: data)
    // Prediction on one thread: the same every time, and what the live runner can afford.
    try booster.setParameter("nthread", "1")
  }

  /// The library's version, e.g. `1.7.4`.
  public static var libraryVersion: String { XGBoost.version }

  public var featureCount: Int { booster.featureCount }
  public var boostedRounds: Int { booster.boostedRounds }

  /// The raw predictions (32-bit, as XGBoost computes them) for `rows` rows of `columns`
  /// values, row-major; NaN is missing. For a multi-class model, `classes` values per row.
  public func predictRaw(_ values: [Float], rows: Int, columns: Int) throws -> [Float] {
    guard rows > 0 else { return [] }
    let matrix = try DMatrix(values: values, rows: rows, columns: columns)
    try XGBoostLog.install()
    lock.lock()
    defer { lock.unlock() }
    return try booster.predict(matrix, rounds: rounds)
  }

  /// Predictions for rows of doubles.
  public func predict(_ values: [Double], rows: Int, columns: Int) throws -> [Float] {
    try predictRaw(values.map { Float($0) }, rows: rows, columns: columns)
  }
}
