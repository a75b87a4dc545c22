import Foundation
import QtoolCore
import Testing

@testable import QtoolModels

@Suite struct LinearModelsTests {
  /// y = 2 + 3·x₁ − x₂ exactly: ridge with α = 0 finds it.
  @Test func ridgeWithoutPenaltyRecoversAnExactLine() throws {
    let x: [[Double]] = (0..<20).map { i in [Double(i), Double((i * 7) % 5)] }
    let y = x.map { 2 + 3 * $0[0] - $0[1] }
    let set = TrainingSet(values: x.flatMap { $0 }, rows: 20, columns: 2, labels: y)
    let (model, figures) = try LinearModels.ridge(train: set, valid: nil, alpha: 0)
    let predictions = model.predict(set.values, rows: 20, columns: 2)
    for (p, t) in zip(predictions, y) { #expect(abs(p - t) < 1e-9) }
    #expect(figures.trainLoss < 1e-9)
  }

  @Test func logisticStepsLowerTheLossUntilTheyConverge() throws {
    let x: [Double] = (0..<40).map { Double($0) / 4 }
    let y: [Double] = x.enumerated().map { $0.offset % 7 == 0 ? ($0.element > 5 ? 0 : 1) : ($0.element > 5 ? 1 : 0) }
    let trainer = LinearModels.LogisticTrainer(train: TrainingSet(values: x, rows: 40, columns: 1, labels: y), valid: nil, lambda: 1)
    var losses: [Double] = []
    for epoch in 0..<50 {
      losses.append(try trainer.step(epoch).trainLoss)
      if trainer.converged { break }
    }
    #expect(trainer.converged)
    #expect(zip(losses, losses.dropFirst()).allSatisfy { $1 <= $0 + 1e-15 })
  }

  @Test func collinearFeaturesWithoutPenaltyAreRefused() {
    let x: [Double] = (0..<10).flatMap { [Double($0), Double($0) * 2] }
    let set = TrainingSet(values: x, rows: 10, columns: 2, labels: (0..<10).map(Double.init))
    #expect(throws: ModelError.self) { try LinearModels.ridge(train: set, valid: nil, alpha: 0) }
  }
}
