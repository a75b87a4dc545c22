import Foundation
import QtoolCore
import QtoolModels
import QtoolStore

/// The blocks of one fold, as stored with its model.
public struct FoldBlocks: Codable, Sendable, Equatable {
  public var train: TimeBlock
  public var valid: TimeBlock?
  public var test: TimeBlock?
  /// The end of what training saw (labels included after the purge): bars from here on are
  /// out of sample for this fold.
  public var seenUntil: Int64? { valid?.to ?? train.to }
}

/// One fold's trained model: XGBoost trees or a linear model.
enum FoldModel: @unchecked Sendable {
  case gbt(GBTModel)
  case linear(LinearModel)

  /// Decodes a stored model of `family`.
  init(family: ModelFamily, data: Data, bestEpoch: Int) throws {
    switch family {
    case .gbt: self = .gbt(try GBTModel(data: data, rounds: bestEpoch + 1))
    case .logistic, .ridge: self = .linear(try JSONDecoder().decode(LinearModel.self, from: data))
    }
  }

  var data: Data {
    switch self {
    case .gbt(let model): return model.data
    case .linear(let model): return (try? JSONCoding.encoder.encode(model)) ?? Data()
    }
  }

  /// One prediction per row: the probability of a binary label, the value of a regression,
  /// the most likely class of a multi-class label.
  func predict(_ values: [Double], rows: Int, columns: Int, kind: LabelKind) throws -> [Double] {
    guard rows > 0 else { return [] }
    switch self {
    case .linear(let model): return model.predict(values, rows: rows, columns: columns)
    case .gbt(let model):
      let raw = try model.predict(values, rows: rows, columns: columns)
      guard kind == .multiclass, raw.count > rows else { return raw.map { Double($0) } }
      let classes = raw.count / rows
      return (0..<rows).map { r in
        let slice = raw[(r * classes)..<((r + 1) * classes)]
        return Double(slice.indices.max { raw[$0] < raw[$1] }! - r * classes)
      }
    }
  }
}

/// A trained version ready to predict: its compiled spec and its folds' models.
public final class ModelPredictor: ModelSeries, @unchecked Sendable {
  public let name: String
  public let version: Int
  public let compiled: CompiledModel
  let folds: [(blocks: FoldBlocks, model: FoldModel)]
  /// Predict bars training saw too (otherwise they are NaN).
  public let allowInSample: Bool

  init(name: String, version: Int, compiled: CompiledModel, folds: [(blocks: FoldBlocks, model: FoldModel)], allowInSample: Bool) {
    self.name = name
    self.version = version
    self.compiled = compiled
    self.folds = folds
    self.allowInSample = allowInSample
  }

  /// Loads a ready version (the latest unless `version`) of `name`.
  public static func load(name: String, version: Int? = nil, database: QtoolDatabase, allowInSample: Bool = false) throws -> ModelPredictor {
    let record = try database.readyModelVersion(name: name, version: version)
    let parameters = try JSONDecoder().decode(StoredTrainingParameters.self, from: Data(record.params.utf8))
    let loaded = try ModelLoader.parse(record.specText, origin: "model \(name) v\(record.version)")
    let compiled = try CompiledModel(loaded.spec, overrides: parameters.overrides, walkForward: parameters.walkForward, origin: loaded.origin)
    let folds = try database.modelFolds(versionID: record.id).map { fold in
      (
        blocks: try JSONDecoder().decode(FoldBlocks.self, from: Data(fold.blocks.utf8)),
        model: try FoldModel(family: compiled.family, data: fold.model, bestEpoch: fold.bestEpoch)
      )
    }
    return ModelPredictor(name: name, version: record.version, compiled: compiled, folds: folds, allowInSample: allowInSample)
  }

  public var isWalkForward: Bool { if case .walkForward = compiled.plan { return true } else { return false } }

  /// The fold that predicts a bar at `t`, and whether training saw it: the latest fold whose
  /// training ended at or before `t` (a walk-forward's stitched test blocks); for a split, the
  /// one model, in sample inside its train and valid blocks.
  func fold(for t: Int64) -> (index: Int, inSample: Bool) {
    if !isWalkForward {
      let blocks = folds[0].blocks
      return (0, blocks.train.contains(t) || blocks.valid?.contains(t) == true)
    }
    var chosen: Int?
    for (index, fold) in folds.enumerated() where (fold.blocks.seenUntil ?? .max) <= t { chosen = index }
    return chosen.map { ($0, false) } ?? (0, true)
  }

  /// What training saw, as blocks (split: train and valid; walk-forward: before the first test block).
  public var inSampleBlocks: [TimeBlock] {
    if isWalkForward { return [TimeBlock(from: nil, to: folds.first?.blocks.seenUntil)] }
    return [folds[0].blocks.train] + (folds[0].blocks.valid.map { [$0] } ?? [])
  }

  /// Predictions on every bar of `bars`, with whether each is in sample (NaN where the
  /// features are not warmed up).
  public func predict(_ bars: BarSeries, symbol: String = "", includeInSample: Bool) throws -> (values: [Double], inSample: [Bool]) {
    let table = FeatureTable(compiled, input: ModelInput(symbol: symbol, bars: bars), labels: false)
    var out = [Double](repeating: .nan, count: bars.count)
    var inSample = [Bool](repeating: false, count: bars.count)
    var rowsByFold = [[Int]](repeating: [], count: folds.count)
    for i in 0..<bars.count {
      let (index, seen) = fold(for: bars.timestamps[i])
      inSample[i] = seen
      guard !seen || includeInSample, table.complete(i) else { continue }
      rowsByFold[index].append(i)
    }
    for (index, rows) in rowsByFold.enumerated() where !rows.isEmpty {
      let values = try folds[index].model.predict(table.values(rows), rows: rows.count, columns: compiled.features.count, kind: compiled.kind)
      for (k, i) in rows.enumerated() { out[i] = values[k] }
    }
    return (out, inSample)
  }

  /// The prediction on the last bar of `bars` (the newest): what the live runner asks for.
  /// The features are computed on all of `bars` (recursive ones — rsi, ema, atr — need more
  /// history than their period to settle), and only the last row is predicted.
  public func predictLast(_ bars: BarSeries, symbol: String = "") throws -> Double {
    guard !bars.isEmpty else { return .nan }
    let table = FeatureTable(compiled, input: ModelInput(symbol: symbol, bars: bars), labels: false)
    let last = bars.count - 1
    guard table.complete(last) else { return .nan }
    let index = fold(for: bars.timestamps[last]).index
    return try folds[index].model.predict(table.values([last]), rows: 1, columns: compiled.features.count, kind: compiled.kind)[0]
  }

  public func predictions(for bars: BarSeries) -> [Double] {
    (try? predict(bars, includeInSample: allowInSample).values) ?? [Double](repeating: .nan, count: bars.count)
  }
}

/// The settings a version was trained with, stored in its `params`.
struct StoredTrainingParameters: Codable {
  var overrides: [String: Double]
  var walkForward: Bool
  var parameters: [String: Double]
  var model: [String: JSONValue]
  enum CodingKeys: String, CodingKey { case overrides, walkForward = "walk_forward", parameters, model }
}

/// A backtest touches bars its model trained on.
public struct InSampleError: QtoolError, Equatable {
  public var model: String
  public var version: Int
  public var block: String
  public var traded: String
  /// The run can be told to go on anyway (`backtest --allow-in-sample`); a paper account cannot.
  public var overridable: Bool = true
  public var category: ErrorCategory { .invalidInput }
  public var code: String { "model_in_sample" }
  public var message: String {
    "the run trades \(traded), which overlaps \(block) that model \(model) v\(version) was trained on: its predictions there are in sample"
  }
  public var details: [String: JSONValue] {
    ["model": .string(model), "version": JSONValue(version), "in_sample": .string(block), "traded": .string(traded)]
  }
  public var hint: ErrorHint? {
    overridable
      ? "start after it with {from}, or run anyway with {allow_in_sample}"
      : "start the account after it with {from} and {new_account}, or use a walk-forward model (train run --walk-forward)"
  }
}

/// The models a strategy's rules read, loaded and attached to its compiled form.
struct ModelAttachments: Sendable {
  var predictors: [String: ModelPredictor] = [:]

  /// What each `model("name")` reads.
  var series: [String: any ModelSeries] { predictors.mapValues { $0 } }

  static func load(_ names: [String], database: QtoolDatabase, allowInSample: Bool) throws -> ModelAttachments {
    var result = ModelAttachments()
    for name in names { result.predictors[name] = try ModelPredictor.load(name: name, database: database, allowInSample: allowInSample) }
    return result
  }

  func apply(to strategy: inout CompiledStrategy) {
    for (name, predictor) in predictors {
      strategy.models[name] = predictor
      strategy.modelWarmup[name] = predictor.compiled.featureLookback
    }
  }

  /// Refuses a run trading `[from, to]` (`to` nil: from `from` on, a live account) on bars a
  /// split model trained on, unless allowed. `backtest run` and the live runner both ask this.
  func checkOutOfSample(from: Int64, to: Int64?, allowInSample: Bool) throws {
    guard !allowInSample else { return }
    for name in predictors.keys.sorted() {
      let predictor = predictors[name]!
      guard !predictor.isWalkForward else { continue }
      for block in predictor.inSampleBlocks where (block.from ?? .min) <= (to ?? .max) && from < (block.to ?? .max) {
        throw InSampleError(
          model: name, version: predictor.version, block: block.text,
          traded: to.map { "\(UTCCalendar.format(from))..\(UTCCalendar.format($0))" } ?? "from \(UTCCalendar.format(from)) on",
          overridable: to != nil)
      }
    }
  }

  /// The versions read, by name: what each live signal records.
  var uses: [ModelUse] { predictors.keys.sorted().map { ModelUse(name: $0, version: predictors[$0]!.version) } }
}
