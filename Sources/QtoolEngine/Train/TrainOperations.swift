import Foundation
import QtoolCore
import QtoolData
import QtoolModels
import QtoolStore

/// `qtool train run`: which model spec to train, with which param overrides.
public struct TrainRequest: Codable, Sendable, Equatable {
  public var model: ModelReference
  public var params: [String: Double]
  /// Train on the spec's `walk_forward` windows instead of its `split`.
  public var walkForward: Bool

  public init(model: ModelReference, params: [String: Double] = [:], walkForward: Bool = false) {
    self.model = model
    self.params = params
    self.walkForward = walkForward
  }

  enum CodingKeys: String, CodingKey { case model, params, walkForward = "walk_forward" }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    model = try container.decode(ModelReference.self, forKey: .model)
    params = try container.decodeIfPresent([String: Double].self, forKey: .params) ?? [:]
    walkForward = try container.decodeIfPresent(Bool.self, forKey: .walkForward) ?? false
  }
}

/// Rows of one block.
public struct BlockRows: Codable, Sendable, Equatable {
  public var train: Int
  public var valid: Int
  public var test: Int
  /// Dropped at the boundaries so no training label reads a later block.
  public var purged: Int
}

/// What one fold of a training produced.
public struct FoldReport: Codable, Sendable, Equatable {
  public var fold: Int
  public var train: String
  public var valid: String?
  public var test: String?
  public var rows: BlockRows
  public var bestEpoch: Int
  public var epochs: Int
  public var stoppedEarly: Bool
  public var best: [String: Double]
  /// Loss and accuracy (or RMSE and MAE) on the fold's labelled test rows.
  public var test_: [String: Double]

  enum CodingKeys: String, CodingKey {
    case fold, train, valid, test, rows, bestEpoch = "best_epoch", epochs, stoppedEarly = "stopped_early", best, test_ = "test_metrics"
  }
}

/// What `train run` returns.
public struct TrainReport: Codable, Sendable, Equatable {
  public var model: String
  public var version: Int
  public var jobID: String?
  public var family: String
  public var labelKind: String
  /// `split` or `walk_forward`.
  public var plan: String
  public var features: [String]
  public var datasets: [String]
  public var dataHash: String
  public var libraryVersion: String
  public var rows: BlockRows
  public var folds: [FoldReport]
  /// The best epoch of the last fold (the one a live runner predicts with).
  public var bestEpoch: Int
  public var epochs: Int
  /// The last fold's figures at its best epoch.
  public var best: [String: Double]
  /// Over every fold's labelled test rows together.
  public var test: [String: Double]
  public var parameters: [String: Double]
  /// What the library said while training (unknown parameters, deprecations).
  public var messages: [String]

  enum CodingKeys: String, CodingKey {
    case model, version, jobID = "job_id", family, labelKind = "label_kind", plan, features, datasets, dataHash = "data_hash"
    case libraryVersion = "library_version", rows, folds, bestEpoch = "best_epoch", epochs, best, test, parameters, messages
  }
}

/// A dataset too short for what the spec asks.
public struct TrainingDataError: QtoolError, Equatable {
  public var text: String
  public var dataDetails: [String: JSONValue]
  public var category: ErrorCategory { .invalidInput }
  public var code: String { "training_data_too_short" }
  public var message: String { text }
  public var details: [String: JSONValue] { dataDetails }
  public var hint: ErrorHint? { "move the split's dates, shorten the walk-forward windows, or train on a longer dataset" }
}

/// The `train` operations, shared by the CLI and the server.
public struct TrainOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  /// The bars each series of `spec` trains on: the dataset's, or each universe symbol's.
  func inputs(_ spec: ModelSpec) throws -> (inputs: [ModelInput], datasets: [DatasetSummary]) {
    let names = spec.universe.map { universe in universe.symbols.map { "\($0)-\(universe.timeframe)" } } ?? [spec.dataset!]
    var inputs: [ModelInput] = []
    var datasets: [DatasetSummary] = []
    for name in names {
      let dataset = try database.dataset(named: name)
      inputs.append(ModelInput(symbol: dataset.symbol, bars: try database.bars(datasetID: dataset.id)))
      datasets.append(dataset)
    }
    return (inputs, datasets)
  }

  /// Trains a model as a job: the version exists (status training) from the start with its
  /// per-epoch metrics stored as they come; a failed or cancelled training deletes it.
  public func run(_ request: TrainRequest) throws -> TrainReport {
    try JobRunner.run(.train, request: request, context: context, link: { ["model": .string($0.model), "version": JSONValue($0.version)] }) {
      context in try TrainOperations(context).runNow(request)
    }
  }

  func runNow(_ request: TrainRequest) throws -> TrainReport {
    let loaded = try ModelLoader.resolve(request.model, database: database)
    let compiled = try CompiledModel(loaded.spec, overrides: request.params, walkForward: request.walkForward, origin: loaded.origin)
    let (inputs, datasets) = try inputs(loaded.spec)
    context.progress.begin("features", total: inputs.count, unit: .items)
    var tables: [FeatureTable] = []
    for input in inputs {
      try context.cancellation.check()
      tables.append(FeatureTable(compiled, input: input))
      context.progress.advance(by: 1)
    }
    let folds = ModelData.folds(compiled, tables: tables)
    try Self.checkSizes(compiled, folds: folds, datasets: datasets.map(\.name), bars: inputs.map(\.bars.count).reduce(0, +))
    let classes = try Self.classes(compiled, folds: folds)

    let isWalkForward: Bool = { if case .walkForward = compiled.plan { return true } else { return false } }()
    let stored = StoredTrainingParameters(
      overrides: request.params, walkForward: isWalkForward, parameters: compiled.parameters, model: loaded.spec.model)
    let (versionID, version) = try database.startModelVersion(
      name: loaded.spec.name, path: loaded.path, specText: loaded.text, specHash: loaded.hash, family: compiled.family.rawValue,
      labelKind: compiled.kind.rawValue, features: String(decoding: try JSONCoding.encoder.encode(compiled.featureNames), as: UTF8.self),
      params: String(decoding: try JSONCoding.encoder.encode(stored), as: UTF8.self), plan: isWalkForward ? "walk_forward" : "split",
      jobID: context.jobID, at: context.clock.now())
    do {
      return try train(
        compiled, loaded: loaded, folds: folds, tables: tables, datasets: datasets, classes: classes, versionID: versionID, version: version,
        overrides: request.params, plan: isWalkForward ? "walk_forward" : "split")
    } catch {
      // Nothing of a training that did not finish is kept: no version, no metrics.
      try? database.deleteModelVersion(id: versionID)
      throw error
    }
  }

  static func checkSizes(_ compiled: CompiledModel, folds: [Fold], datasets: [String], bars: Int) throws {
    let needed = max(10, compiled.features.count + 2)
    guard let first = folds.first else {
      throw TrainingDataError(
        text: "\(datasets.joined(separator: ", ")) (\(bars) bars) is too short for one walk-forward window of the spec",
        dataDetails: ["datasets": .array(datasets.map { .string($0) }), "bars": JSONValue(bars)])
    }
    let usable = folds.filter { $0.trainRows.rows >= needed && ($0.validRows.map { $0.rows > 0 } ?? true) }
    guard !usable.isEmpty else {
      let block = first.trainRows.rows < needed ? "train (\(first.train.text))" : "valid (\(first.valid?.text ?? ""))"
      let rows = first.trainRows.rows < needed ? first.trainRows.rows : first.validRows?.rows ?? 0
      throw TrainingDataError(
        text:
          "\(datasets.joined(separator: ", ")) has \(rows) usable rows in \(block), too few to train on (at least \(needed)): rows need every feature warmed up and a label, and \(compiled.purge) bars are purged before each boundary",
        dataDetails: ["datasets": .array(datasets.map { .string($0) }), "rows": JSONValue(rows), "needed": JSONValue(needed)])
    }
    if case .split(_, _, let test) = compiled.plan, let test, (first.testFeatureRows?.rows ?? 0) == 0 {
      throw TrainingDataError(
        text: "\(datasets.joined(separator: ", ")) has no bars with features in the test block (\(test.text))",
        dataDetails: ["datasets": .array(datasets.map { .string($0) })])
    }
  }

  /// The number of classes of a multi-class label (labels must be 0, 1, …); 2 otherwise.
  static func classes(_ compiled: CompiledModel, folds: [Fold]) throws -> Int {
    guard compiled.kind == .multiclass else { return 2 }
    var largest = 0.0
    for fold in folds {
      for label in fold.trainRows.labels + (fold.validRows?.labels ?? []) {
        guard label >= 0, label == label.rounded(), label < 1000 else {
          throw ModelSpecError.invalid("label.expr of a multiclass label must give classes 0, 1, 2, …; it gave \(label)")
        }
        largest = max(largest, label)
      }
    }
    return Int(largest) + 1
  }

  private func train(
    _ compiled: CompiledModel, loaded: LoadedModelSpec, folds allFolds: [Fold], tables: [FeatureTable], datasets: [DatasetSummary], classes: Int,
    versionID: Int64, version: Int, overrides: [String: Double], plan: String
  ) throws -> TrainReport {
    let needed = max(10, compiled.features.count + 2)
    let folds = allFolds.filter { $0.trainRows.rows >= needed && ($0.validRows.map { $0.rows > 0 } ?? true) }
    let columns = compiled.features.count
    var planned = folds.count * compiled.epochs
    context.progress.begin("train", total: planned, unit: .rounds)
    var done = 0
    var records: [ModelFoldRecord] = []
    var reports: [FoldReport] = []
    var messages: [String] = []
    var predictions: [Int: (timestamps: [Int64], values: [Double])] = [:]
    var testPairs: [(prediction: Double, label: Double)] = []
    var lastBest: [String: Double] = [:]
    var lastBestEpoch = 0
    var epochsRun = 0
    for fold in folds {
      let train = TrainingSet(values: fold.trainRows.values, rows: fold.trainRows.rows, columns: columns, labels: fold.trainRows.labels)
      let valid = fold.validRows.flatMap { rows in
        rows.rows > 0 ? TrainingSet(values: rows.values, rows: rows.rows, columns: columns, labels: rows.labels) : nil
      }
      var best: (epoch: Int, figures: EpochFigures)?
      var stoppedEarly = false
      var epochs = 0
      /// Records an epoch and says whether to stop (early stopping).
      func record(_ figures: EpochFigures) throws -> Bool {
        epochs = figures.epoch + 1
        let monitored = figures.validLoss ?? figures.trainLoss
        if valid == nil || best == nil || monitored < (best!.figures.validLoss ?? best!.figures.trainLoss) { best = (figures.epoch, figures) }
        var named = figures.named
        named["epoch"] = Double(figures.epoch + 1)
        named["fold"] = Double(fold.index)
        named["best_epoch"] = Double(best!.epoch + 1)
        if let loss = best!.figures.validLoss { named["best_val_loss"] = loss }
        context.progress.record(named)
        done += 1
        context.progress.update(done: done)
        try database.recordEpoch(
          versionID: versionID, fold: fold.index, epoch: figures.epoch,
          figures: String(decoding: try JSONCoding.encoder.encode(figures), as: UTF8.self))
        if let patience = compiled.earlyStopping, valid != nil, figures.epoch - best!.epoch >= patience {
          stoppedEarly = true
          return true
        }
        return false
      }
      let model: FoldModel
      switch compiled.family {
      case .gbt:
        let trainer = try GBTTrainer(
          train: train, valid: valid, kind: compiled.kind, parameters: compiled.boosterParameters.map { ($0[0], $0[1]) }, classes: classes)
        for epoch in 0..<compiled.epochs {
          try context.cancellation.check()
          try context.hooks.checkpoint("train.epoch", epoch, cancellation: context.cancellation)
          if try record(try trainer.round(epoch)) { break }
        }
        messages += trainer.libraryMessages.filter { !messages.contains($0) }
        model = .gbt(try trainer.model(rounds: best!.epoch + 1))
      case .logistic:
        let trainer = LinearModels.LogisticTrainer(train: train, valid: valid, lambda: compiled.penalty)
        var snapshots: [(model: LinearModel, figures: EpochFigures)] = []
        for epoch in 0..<compiled.epochs {
          try context.cancellation.check()
          try context.hooks.checkpoint("train.epoch", epoch, cancellation: context.cancellation)
          let figures = try trainer.step(epoch, tolerance: compiled.tolerance)
          snapshots.append((trainer.model, figures))
          if try record(figures) || trainer.converged { break }
        }
        // With a valid block the epoch of the lowest val_loss is the model's, as gbt's (and as
        // `train run --help` says); without one, Newton steps only improve the fit: the last.
        let chosen = best!.epoch
        best = (chosen, snapshots[chosen].figures)
        model = .linear(snapshots[chosen].model)
      case .ridge:
        try context.cancellation.check()
        let (fitted, figures) = try LinearModels.ridge(train: train, valid: valid, alpha: compiled.penalty)
        _ = try record(figures)
        model = .linear(fitted)
      }
      epochsRun = epochs
      // The rounds a fold did not need (early stopping, convergence, ridge's one solve) leave
      // the plan: a finished job reads 100 % of the rounds it ran, and its rate stays true.
      if epochs < compiled.epochs {
        planned -= compiled.epochs - epochs
        context.progress.update(done: done, total: planned)
      }
      // Predictions on the test block, with every bar whose features are complete.
      var testFigures: [String: Double] = [:]
      if let testRows = fold.testFeatureRows, testRows.rows > 0 {
        let values = try model.predict(testRows.values, rows: testRows.rows, columns: columns, kind: compiled.kind)
        var pairs: [(Double, Double)] = []
        for (k, s) in testRows.series.enumerated() {
          predictions[s, default: ([], [])].timestamps.append(testRows.timestamps[k])
          predictions[s, default: ([], [])].values.append(values[k])
          if testRows.labels[k].isFinite { pairs.append((values[k], testRows.labels[k])) }
        }
        testFigures = Self.figures(pairs, kind: compiled.kind)
        testPairs += pairs
      }
      let bestFigures = best!.figures.named
      lastBest = bestFigures
      lastBestEpoch = best!.epoch
      let rows = BlockRows(
        train: fold.trainRows.rows, valid: fold.validRows?.rows ?? 0, test: fold.testRows?.rows ?? 0, purged: fold.purged)
      let blocks = FoldBlocks(train: fold.train, valid: fold.valid, test: fold.test)
      records.append(
        ModelFoldRecord(
          fold: fold.index, blocks: String(decoding: try JSONCoding.encoder.encode(blocks), as: UTF8.self), bestEpoch: best!.epoch,
          rows: String(decoding: try JSONCoding.encoder.encode(rows), as: UTF8.self), model: model.data))
      reports.append(
        FoldReport(
          fold: fold.index, train: fold.train.text, valid: fold.valid?.text, test: fold.test?.text, rows: rows, bestEpoch: best!.epoch + 1,
          epochs: epochs, stoppedEarly: stoppedEarly, best: bestFigures, test_: testFigures))
    }
    context.progress.finish()
    let totals = BlockRows(
      train: reports.map(\.rows.train).reduce(0, +), valid: reports.map(\.rows.valid).reduce(0, +), test: reports.map(\.rows.test).reduce(0, +),
      purged: reports.map(\.rows.purged).reduce(0, +))
    let dataHash = Self.dataHash(tables)
    let test = Self.figures(testPairs, kind: compiled.kind)
    let report = TrainReport(
      model: loaded.spec.name, version: version, jobID: context.jobID, family: compiled.family.rawValue, labelKind: compiled.kind.rawValue,
      plan: plan, features: compiled.featureNames, datasets: datasets.map(\.name), dataHash: dataHash,
      libraryVersion: compiled.family == .gbt ? "xgboost \(GBTModel.libraryVersion)" : "qtool linear 1", rows: totals, folds: reports,
      bestEpoch: lastBestEpoch + 1, epochs: epochsRun, best: lastBest, test: test, parameters: compiled.parameters, messages: messages)
    let datasetsJSON = try JSONCoding.encoder.encode(datasets.map { ["name": $0.name, "first": $0.firstTs.map { UTCCalendar.format($0) } ?? ""] })
    let series = predictions.keys.sorted().map { s in
      ModelPredictionSeries(symbol: tables[s].symbol, timestamps: predictions[s]!.timestamps, predictions: predictions[s]!.values)
    }
    try context.hooks.checkpoint("train.record", 0, cancellation: context.cancellation)
    try context.cancellation.check()
    try database.completeModelVersion(
      id: versionID, folds: records, predictions: series,
      completion: ModelCompletion(
        datasets: String(decoding: datasetsJSON, as: UTF8.self), dataHash: dataHash, libraryVersion: report.libraryVersion,
        bestEpoch: report.bestEpoch, epochs: report.epochs, summary: String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)),
      at: context.clock.now())
    return report
  }

  /// Log loss and accuracy (binary), accuracy (multi-class), or RMSE and MAE (regression).
  static func figures(_ pairs: [(prediction: Double, label: Double)], kind: LabelKind) -> [String: Double] {
    guard !pairs.isEmpty else { return [:] }
    let n = Double(pairs.count)
    switch kind {
    case .binary:
      var loss = 0.0
      var right = 0.0
      for (p, y) in pairs {
        let q = min(max(p, 1e-15), 1 - 1e-15)
        loss -= y * log(q) + (1 - y) * log(1 - q)
        if (p >= 0.5 ? 1.0 : 0.0) == y { right += 1 }
      }
      return ["loss": loss / n, "accuracy": right / n, "rows": n]
    case .multiclass:
      return ["accuracy": Double(pairs.filter { $0.prediction == $0.label }.count) / n, "rows": n]
    case .regression:
      let squares = pairs.map { ($0.prediction - $0.label) * ($0.prediction - $0.label) }.reduce(0, +)
      let absolute = pairs.map { abs($0.prediction - $0.label) }.reduce(0, +)
      return ["loss": (squares / n).squareRoot(), "mae": absolute / n, "rows": n]
    }
  }

  /// The hash of every feature and label value the model was built from.
  static func dataHash(_ tables: [FeatureTable]) -> String {
    var data = Data()
    for table in tables {
      data.append(Data(table.symbol.utf8))
      table.timestamps.withUnsafeBytes { data.append(contentsOf: $0) }
      for column in table.columns + [table.label] { column.withUnsafeBytes { data.append(contentsOf: $0) } }
    }
    return ContentHash.sha256Hex(data)
  }
}
