import Foundation
import QtoolCore
import QtoolStore
import Testing

@testable import QtoolEngine
@testable import QtoolModels

/// Training end to end on an in-memory store holding the bundled GOOG bars, against the
/// reference PyPI's xgboost 1.7.4 and scikit-learn wrote (`Tests/Reference/make_xgboost_reference.py`).
@Suite(.serialized) struct TrainOperationsTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  static let fixture = XGBoostFixture.load(root)

  static let spec = """
    name: goog-up
    dataset: GOOG-1d
    params: { h: 5 }
    features:
      rsi14: rsi(close, 14)
      roc5: roc(close, 5)
      trend: close / sma(close, 50) - 1
      vol: atr(14) / close
      ret1: returns(close, 1)
    label: { expr: "forward_return(close, h) > 0", kind: binary }
    model: { family: gbt, rounds: 50, max_depth: 3, eta: 0.1, seed: 0, threads: 1 }
    split: { train: "..2009-12-31", valid: "2010-01-01..2011-06-30", test: "2011-07-01..", purge: h }
    """

  /// A store of its own in a temporary directory (its leases beside it), so tests importing
  /// GOOG-1d side by side do not wait for each other's dataset lease.
  static func context() throws -> OperationContext {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-train-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    let context = OperationContext(database: try QtoolDatabase.open(path: directory.appendingPathComponent("qtool.db").path))
    _ = try DataOperations(context).importFiles(
      ImportRequest(files: [root.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path], symbol: "GOOG", timeframe: Timeframe("1d")!))
    return context
  }

  static func compiled(_ text: String = spec) throws -> (CompiledModel, [FeatureTable]) {
    let loaded = try ModelLoader.parse(text, origin: "test")
    let model = try CompiledModel(loaded.spec)
    let bars = try context().database.bars(datasetID: try context().database.dataset(named: "GOOG-1d").id)
    return (model, [FeatureTable(model, input: ModelInput(symbol: "GOOG", bars: bars))])
  }

  @Test func featuresAndRowsAreThoseOfTheReference() throws {
    let (model, tables) = try Self.compiled()
    let fold = ModelData.folds(model, tables: tables)[0]
    #expect(fold.trainRows.rows == Self.fixture.rows["train"])
    #expect(fold.validRows?.rows == Self.fixture.rows["valid"])
    #expect(fold.testRows?.rows == Self.fixture.rows["test"])
    #expect(fold.testFeatureRows?.rows == Self.fixture.rows["test_features"])
    #expect(fold.purged == Self.fixture.rows["purged"])
    let table = tables[0]
    for (date, values) in Self.fixture.featureRows {
      let i = table.timestamps.firstIndex(of: TimestampParser.parse(date)!)!
      #expect(table.columns.map { $0[i] } == values, "features on \(date)")
    }
  }

  @Test func testBlockPredictionsAndEvalMetricsEqualXGBoostsBitForBit() throws {
    let context = try Self.context()
    let report = try TrainOperations(context).run(TrainRequest(model: .inline(spec: Self.spec, origin: nil)))
    #expect(report.bestEpoch == Self.fixture.bestEpoch + 1)
    let metrics = try TrainOperations(context).metrics(name: "goog-up")
    #expect(metrics.epochs.count == 50)
    for epoch in metrics.epochs {
      #expect(epoch.figures.trainLoss == Self.fixture.evals["train"]!["logloss"]![epoch.epoch])
      #expect(epoch.figures.validLoss == Self.fixture.evals["valid"]!["logloss"]![epoch.epoch])
      #expect(epoch.figures.trainAccuracy == 1 - Self.fixture.evals["train"]!["error"]![epoch.epoch])
      #expect(epoch.figures.validAccuracy == 1 - Self.fixture.evals["valid"]!["error"]![epoch.epoch])
    }
    let version = try context.database.readyModelVersion(name: "goog-up")
    let stored = try context.database.modelPredictions(versionID: version.id)[0]
    #expect(stored.timestamps == Self.fixture.testDates.map { TimestampParser.parse($0)! })
    #expect(stored.predictions == Self.fixture.testPredictions)
    // All 50 rounds, as Python's predict() without an iteration range.
    let fold = try context.database.modelFolds(versionID: version.id)[0]
    let all = try GBTModel(data: fold.model, rounds: 0)
    let (model, tables) = try Self.compiled()
    let rows = ModelData.folds(model, tables: tables)[0].testFeatureRows!
    #expect(try all.predict(rows.values, rows: rows.rows, columns: 5).map(Double.init) == Self.fixture.testPredictionsAllRounds)
    // The model Python saved predicts the same rows as it did in Python.
    let python = try GBTModel(data: Self.fixture.pythonModel, rounds: 0)
    #expect(try python.predict(rows.values, rows: rows.rows, columns: 5).map(Double.init) == Self.fixture.pythonPredictions)
  }

  @Test func linearModelsAgreeWithScikitLearn() throws {
    let (model, tables) = try Self.compiled()
    let train = ModelData.folds(model, tables: tables)[0].trainRows
    let set = TrainingSet(values: train.values, rows: train.rows, columns: 5, labels: train.labels)
    let trainer = LinearModels.LogisticTrainer(train: set, valid: nil, lambda: 1)
    for epoch in 0..<100 where !trainer.converged { _ = try trainer.step(epoch) }
    let logistic = trainer.model
    #expect(zip(logistic.standardization.means, Self.fixture.logistic["mean"]!).allSatisfy { abs($0 - $1) <= 1e-12 * max(1, abs($1)) })
    #expect(abs(logistic.intercept - Self.fixture.logistic["intercept"]![0]) < 1e-8)
    for (a, b) in zip(logistic.coefficients, Self.fixture.logistic["coefficients"]!) { #expect(abs(a - b) < 1e-8) }
    // Ridge on the regression label: forward_return(close, 5) itself.
    let regression = try Self.compiled(
      Self.spec.replacingOccurrences(of: "\"forward_return(close, h) > 0\", kind: binary", with: "\"forward_return(close, h)\", kind: regression"))
    let rows = ModelData.folds(regression.0, tables: regression.1)[0].trainRows
    let (ridge, _) = try LinearModels.ridge(
      train: TrainingSet(values: rows.values, rows: rows.rows, columns: 5, labels: rows.labels), valid: nil, alpha: 1)
    #expect(abs(ridge.intercept - Self.fixture.ridge["intercept"]![0]) < 1e-8)
    for (a, b) in zip(ridge.coefficients, Self.fixture.ridge["coefficients"]!) { #expect(abs(a - b) < 1e-8) }
  }

  @Test func noTrainingLabelReadsIntoALaterBlock() throws {
    for spec in [Self.spec, Self.spec.replacingOccurrences(of: "params: { h: 5 }", with: "params: { h: 12 }")] {
      let (model, tables) = try Self.compiled(spec)
      let fold = ModelData.folds(model, tables: tables)[0]
      let timestamps = tables[0].timestamps
      let validStart = timestamps.firstIndex { fold.valid!.contains($0) }!
      let testStart = timestamps.firstIndex { fold.test!.contains($0) }!
      for t in fold.trainRows.timestamps { #expect(timestamps.firstIndex(of: t)! + model.horizon < validStart) }
      for t in fold.validRows!.timestamps { #expect(timestamps.firstIndex(of: t)! + model.horizon < testStart) }
      #expect(fold.purged == 2 * model.horizon)
    }
  }

  @Test func walkForwardFoldsPredictEachTestBlockWithTheFoldBeforeIt() throws {
    let context = try Self.context()
    let spec = Self.spec.replacingOccurrences(of: "rounds: 50", with: "rounds: 5") + "\nwalk_forward: { train: 3y, valid: 6m, test: 6m, purge: h }\n"
    let report = try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil), walkForward: true))
    #expect(report.plan == "walk_forward")
    #expect(report.folds.count >= 8)
    let predictor = try ModelPredictor.load(name: "goog-up", database: context.database)
    let bars = try context.database.bars(datasetID: try context.database.dataset(named: "GOOG-1d").id)
    let (values, inSample) = try predictor.predict(bars, includeInSample: false)
    let firstTest = bars.timestamps.firstIndex { predictor.folds[0].blocks.test!.contains($0) }!
    #expect(values[..<firstTest].allSatisfy { $0.isNaN })
    #expect(inSample[..<firstTest].allSatisfy { $0 })
    #expect(values[firstTest...].allSatisfy { $0.isFinite })
  }

  @Test func aCancelledTrainingLeavesNoVersion() throws {
    let context = try Self.context()
    var hooked = context
    hooked.hooks = OperationHooks(pause: ("train.epoch", 3)) { _ in context.cancellation.cancel(.requested) }
    #expect(throws: OperationCancelled.self) { try TrainOperations(hooked).run(TrainRequest(model: .inline(spec: Self.spec, origin: nil))) }
    #expect(try context.database.modelVersions(name: "goog-up").isEmpty)
    let job = try context.database.jobs(JobFilter()).first { $0.kind == "train" }
    #expect(job?.status == "cancelled")
  }

  /// `jobs list` showed a finished ridge or early-stopped training at a few percent: the share of
  /// the planned rounds it ran.
  @Test func aFinishedTrainingJobReadsAllItsRoundsDone() throws {
    for model in [
      "{ family: ridge, alpha: 1.0 }", "{ family: gbt, rounds: 400, early_stopping: 3, max_depth: 3, eta: 0.3, seed: 0, threads: 1 }",
    ] {
      let context = try Self.context()
      let spec = Self.spec.replacingOccurrences(
        of: "{ family: gbt, rounds: 50, max_depth: 3, eta: 0.1, seed: 0, threads: 1 }", with: model
      ).replacingOccurrences(of: "\"forward_return(close, h) > 0\", kind: binary", with: "\"forward_return(close, h)\", kind: regression")
      _ = try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil)))
      let job = try #require(try context.database.jobs(JobFilter()).first { $0.kind == "train" })
      #expect(job.status == "completed")
      let progress = try #require(try JSONSerialization.jsonObject(with: Data((job.progress ?? "").utf8)) as? [String: Any])
      #expect(progress["phase"] as? String == "train", "\(model)")
      #expect(progress["done"] as? Int == progress["total"] as? Int, "\(model): \(progress)")
      // The total is the rounds run, not the plan's 400: the rate stays rounds per second.
      #expect((progress["total"] as? Int ?? 400) < 400, "\(model): \(progress)")
    }
  }

  @Test func aDatasetTooShortForTheSplitIsBadInput() throws {
    let context = try Self.context()
    let spec = Self.spec.replacingOccurrences(of: "..2009-12-31", with: "..2004-09-30")
    #expect {
      try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil)))
    } throws: { ($0 as? any QtoolError)?.exitStatus == .dataError }
  }
}

/// The reference fixture, decoded.
struct XGBoostFixture: Sendable {
  var rows: [String: Int]
  var featureRows: [(String, [Double])]
  var evals: [String: [String: [Double]]]
  var bestEpoch: Int
  var testDates: [String]
  var testPredictions: [Double]
  var testPredictionsAllRounds: [Double]
  var pythonModel: Data
  var pythonPredictions: [Double]
  var logistic: [String: [Double]]
  var ridge: [String: [Double]]

  static func load(_ root: URL) -> XGBoostFixture {
    let url = root.appendingPathComponent("Fixtures/reference/xgboost-goog-up.json")
    let object = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
    func doubles(_ value: Any?) -> [Double] { (value as? [String] ?? [(value as? String) ?? "nan"]).map { Double($0)! } }
    let evals = (object["evals"] as! [String: [String: [String]]]).mapValues { $0.mapValues { $0.map { Double($0)! } } }
    let linear = { (key: String) -> [String: [Double]] in
      (object[key] as! [String: Any]).compactMapValues { v in v is Double ? nil : doubles(v) }
    }
    return XGBoostFixture(
      rows: object["rows"] as! [String: Int],
      featureRows: (object["feature_rows"] as! [String: [String]]).map { ($0.key, $0.value.map { Double($0)! }) },
      evals: evals, bestEpoch: object["best_epoch"] as! Int, testDates: object["test_dates"] as! [String],
      testPredictions: doubles(object["test_predictions"]), testPredictionsAllRounds: doubles(object["test_predictions_all_rounds"]),
      pythonModel: Data(base64Encoded: object["python_model_ubj"] as! String)!, pythonPredictions: doubles(object["python_model_predictions"]),
      logistic: linear("logistic"), ridge: linear("ridge"))
  }
}

/// Labels of every kind, and a universe's rows pooled.
@Suite struct TrainKindsTests {
  @Test func multiclassLabelsCountConditions() throws {
    let context = try TrainOperationsTests.context()
    let spec = TrainOperationsTests.spec
      .replacingOccurrences(
        of: "label: { expr: \"forward_return(close, h) > 0\", kind: binary }",
        with: "label: { expr: \"(forward_return(close, h) > 0) + (forward_return(close, h) > 0.03)\", kind: multiclass }"
      )
      .replacingOccurrences(of: "rounds: 50", with: "rounds: 5")
    let report = try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil)))
    #expect(report.labelKind == "multiclass")
    let predictions = try TrainOperations(context).predict(
      PredictRequest(model: "goog-up", dataset: "GOOG-1d", from: TimestampParser.parse("2012-01-01")))
    #expect(!predictions.rows.isEmpty && predictions.rows.allSatisfy { [0, 1, 2].contains($0.prediction) })
  }

  @Test func aUniversePoolsItsSymbolsRows() throws {
    let context = try TrainOperationsTests.context()
    _ = try DataOperations(context).importFiles(
      ImportRequest(
        files: [TrainOperationsTests.root.appendingPathComponent("Fixtures/demo-BTCUSDT-1d.csv.gz").path], symbol: "BTCUSDT",
        timeframe: Timeframe("1d")!))
    let pooled = TrainOperationsTests.spec
      .replacingOccurrences(of: "dataset: GOOG-1d", with: "universe: { symbols: [GOOG, BTCUSDT], timeframe: 1d }")
      .replacingOccurrences(of: "..2009-12-31", with: "..2011-12-31").replacingOccurrences(
        of: "2010-01-01..2011-06-30", with: "2012-01-01..2022-06-30"
      )
      .replacingOccurrences(of: "2011-07-01..", with: "2022-07-01..").replacingOccurrences(of: "rounds: 50", with: "rounds: 3")
    let report = try TrainOperations(context).run(TrainRequest(model: .inline(spec: pooled, origin: nil)))
    #expect(report.datasets == ["GOOG-1d", "BTCUSDT-1d"])
    let version = try context.database.readyModelVersion(name: "goog-up")
    #expect(try context.database.modelPredictions(versionID: version.id).map(\.symbol) == ["BTCUSDT"])
    #expect(report.rows.valid > 0 && report.rows.test > 0)
  }
}

/// What the live runner calls: the newest bar's prediction from the latest ready version.
@Suite struct ModelPredictorTests {
  @Test func theLastBarIsPredictedAsTheWholeSeriesPredictsIt() throws {
    let context = try TrainOperationsTests.context()
    let spec = TrainOperationsTests.spec.replacingOccurrences(of: "rounds: 50", with: "rounds: 8")
    _ = try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil)))
    let predictor = try ModelPredictor.load(name: "goog-up", database: context.database)
    #expect(predictor.version == 1)
    let bars = try context.database.bars(datasetID: try context.database.dataset(named: "GOOG-1d").id)
    let all = try predictor.predict(bars, includeInSample: true).values
    #expect(try predictor.predictLast(bars) == all.last!)
    #expect(try predictor.predictLast(bars.slice(0..<30)).isNaN, "features not warmed up yet")
  }

  @Test func aParameterXGBoostRefusesIsBadInputNotAnInternalError() throws {
    let context = try TrainOperationsTests.context()
    let spec = TrainOperationsTests.spec.replacingOccurrences(of: "max_depth: 3", with: "max_depth: -3")
    #expect {
      try TrainOperations(context).run(TrainRequest(model: .inline(spec: spec, origin: nil)))
    } throws: { ($0 as? any QtoolError)?.exitStatus == .dataError }
    #expect(try context.database.modelVersions(name: "goog-up").isEmpty)
  }
}
