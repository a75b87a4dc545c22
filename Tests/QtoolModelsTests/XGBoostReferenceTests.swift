import Foundation
import QtoolCore
import Testing

@testable import QtoolModels

/// Against `Fixtures/reference/xgboost-goog-up.json`, written by PyPI's xgboost 1.7.4 and
/// scikit-learn (`Tests/Reference/make_xgboost_reference.py`).
@Suite struct XGBoostReferenceTests {
  nonisolated(unsafe) static let fixture: [String: Any] = {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fixtures/reference/xgboost-goog-up.json")
    return try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
  }()

  static func doubles(_ key: String, in object: [String: Any] = fixture) -> [Double] { (object[key] as! [String]).map { Double($0)! } }

  @Test func aModelSavedByPythonLoadsAndPredictsTheSame() throws {
    let data = Data(base64Encoded: Self.fixture["python_model_ubj"] as! String)!
    let model = try GBTModel(data: data, rounds: 0)
    #expect(model.boostedRounds == 10)
    #expect(model.featureCount == 5)
    // The Python model's predictions on the test rows; the rows themselves come from the
    // engine test, which also checks the feature values: here a smoke test that loading works
    // and that predicting a row with missing values follows the trees' default directions.
    let row: [Double] = [.nan, .nan, .nan, .nan, .nan]
    let value = try model.predict(row, rows: 1, columns: 5)
    #expect(value.count == 1 && value[0] > 0 && value[0] < 1)
  }

  @Test func libraryIsTheOneThePythonReferenceUsed() {
    #expect(GBTModel.libraryVersion == Self.fixture["xgboost_version"] as! String)
  }

  @Test func evalLinesParseIntoFigures() throws {
    let figures = try GBTTrainer.figures("[3]\ttrain-logloss:0.61\ttrain-error:0.3\tvalid-logloss:0.66\tvalid-error:0.45", epoch: 3, kind: .binary)
    #expect(figures == EpochFigures(epoch: 3, trainLoss: 0.61, trainAccuracy: 0.7, validLoss: 0.66, validAccuracy: 0.55))
    let regression = try GBTTrainer.figures("[0]\ttrain-rmse:1.5\ttrain-mae:1.2", epoch: 0, kind: .regression)
    #expect(regression.trainLoss == 1.5 && regression.trainMAE == 1.2 && regression.validLoss == nil)
  }

  @Test func sameDataAndSeedGiveTheSameModelBitForBit() throws {
    let rows = 200
    var values: [Double] = []
    var labels: [Double] = []
    for i in 0..<rows {
      let a = sin(Double(i) * 0.37)
      let b = cos(Double(i) * 0.11)
      values += [a, b]
      labels.append(a + 0.3 * b > 0 ? 1 : 0)
    }
    let set = TrainingSet(values: values, rows: rows, columns: 2, labels: labels)
    func train() throws -> Data {
      let trainer = try GBTTrainer(train: set, valid: nil, kind: .binary, parameters: [("max_depth", "2"), ("subsample", "0.8")])
      for round in 0..<10 { _ = try trainer.round(round) }
      return try trainer.model(rounds: 10).data
    }
    #expect(try train() == train())
  }

  @Test func unknownParametersAreReportedNotPrinted() throws {
    let set = TrainingSet(values: [0, 1, 2, 3, 4, 5, 6, 7], rows: 8, columns: 1, labels: [0, 0, 0, 0, 1, 1, 1, 1])
    let trainer = try GBTTrainer(train: set, valid: nil, kind: .binary, parameters: [("max_deph", "2")])
    _ = try trainer.round(0)
    #expect(trainer.libraryMessages.contains { $0.contains("max_deph") })
  }

  @Test func aBadParameterValueIsXGBoostsOwnError() throws {
    let set = TrainingSet(values: [0, 1, 2, 3], rows: 4, columns: 1, labels: [0, 0, 1, 1])
    #expect(throws: ModelError.self) {
      let trainer = try GBTTrainer(train: set, valid: nil, kind: .binary, parameters: [("max_depth", "minus one")])
      _ = try trainer.round(0)
    }
  }
}
