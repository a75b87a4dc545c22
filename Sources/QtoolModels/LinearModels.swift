import Foundation
import QtoolCore

/// The scaling a linear model learned on its training rows: each feature minus its mean,
/// over its population standard deviation (1 for a constant feature), as scikit-learn's
/// StandardScaler does. Stored with the model and applied to every row it predicts.
public struct Standardization: Codable, Sendable, Equatable {
  public var means: [Double]
  public var scales: [Double]

  public static func fit(_ set: TrainingSet) -> Standardization {
    var means = [Double](repeating: 0, count: set.columns)
    var scales = [Double](repeating: 0, count: set.columns)
    let n = Double(set.rows)
    for j in 0..<set.columns {
      var sum = 0.0
      for i in 0..<set.rows { sum += set.values[i * set.columns + j] }
      let mean = sum / n
      var squares = 0.0
      for i in 0..<set.rows {
        let d = set.values[i * set.columns + j] - mean
        squares += d * d
      }
      let scale = (squares / n).squareRoot()
      means[j] = mean
      scales[j] = scale > 0 && scale.isFinite ? scale : 1
    }
    return Standardization(means: means, scales: scales)
  }

  /// `values` (row-major, `columns` wide) scaled.
  public func apply(_ values: [Double], columns: Int) -> [Double] {
    var out = values
    for k in out.indices {
      let j = k % columns
      out[k] = (out[k] - means[j]) / scales[j]
    }
    return out
  }
}

/// A fitted linear model: logistic regression (a probability) or ridge regression (a number),
/// on standardised features.
public struct LinearModel: Codable, Sendable, Equatable {
  public enum Kind: String, Codable, Sendable { case logistic, ridge }
  public var kind: Kind
  public var standardization: Standardization
  /// One per feature, on the standardised scale.
  public var coefficients: [Double]
  public var intercept: Double

  /// The prediction for each row (NaN where a feature is missing): a probability for
  /// logistic regression, the value for ridge.
  public func predict(_ values: [Double], rows: Int, columns: Int) -> [Double] {
    precondition(columns == coefficients.count, "a row has one value per feature")
    var out = [Double](repeating: .nan, count: rows)
    for i in 0..<rows {
      var z = intercept
      for j in 0..<columns { z += (values[i * columns + j] - standardization.means[j]) / standardization.scales[j] * coefficients[j] }
      out[i] = kind == .logistic ? LinearModels.sigmoid(z) : z
    }
    return out
  }
}

/// Logistic regression (L2, Newton's method / IRLS) and ridge regression (closed form by
/// Cholesky), written here rather than imported: they are small, and a model must mean the
/// same thing on every machine.
public enum LinearModels {
  static func sigmoid(_ z: Double) -> Double { z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z)) }

  /// Logistic regression minimising Σ log loss + λ/2 ‖w‖² (the intercept not penalised), i.e.
  /// scikit-learn's `LogisticRegression(C: 1/λ)`. One Newton step is one epoch: `step` is
  /// called after each with the model so far, and may throw to stop (cancellation).
  public final class LogisticTrainer {
    let train: TrainingSet
    let valid: TrainingSet?
    let lambda: Double
    public let standardization: Standardization
    let x: [Double]
    let validX: [Double]?
    /// Intercept first, then one weight per feature.
    var weights: [Double]
    public private(set) var converged = false

    public init(train: TrainingSet, valid: TrainingSet?, lambda: Double) {
      self.train = train
      self.valid = valid
      self.lambda = lambda
      let standardization = Standardization.fit(train)
      self.standardization = standardization
      x = standardization.apply(train.values, columns: train.columns)
      validX = valid.map { standardization.apply($0.values, columns: $0.columns) }
      weights = [Double](repeating: 0, count: train.columns + 1)
    }

    public var model: LinearModel {
      LinearModel(kind: .logistic, standardization: standardization, coefficients: Array(weights.dropFirst()), intercept: weights[0])
    }

    /// One Newton step; returns the epoch's figures and whether the weights stopped moving
    /// (every step below `tolerance`).
    public func step(_ epoch: Int, tolerance: Double = 1e-10) throws -> EpochFigures {
      let p = train.columns + 1
      var gradient = [Double](repeating: 0, count: p)
      var hessian = [Double](repeating: 0, count: p * p)
      var row = [Double](repeating: 1, count: p)
      for i in 0..<train.rows {
        for j in 0..<train.columns { row[j + 1] = x[i * train.columns + j] }
        var z = 0.0
        for j in 0..<p { z += row[j] * weights[j] }
        let probability = sigmoid(z)
        let residual = probability - train.labels[i]
        let weight = probability * (1 - probability)
        for a in 0..<p {
          gradient[a] += residual * row[a]
          let wa = weight * row[a]
          for b in 0...a { hessian[a * p + b] += wa * row[b] }
        }
      }
      for a in 0..<p {
        for b in 0..<a { hessian[b * p + a] = hessian[a * p + b] }
      }
      for a in 1..<p {
        gradient[a] += lambda * weights[a]
        hessian[a * p + a] += lambda
      }
      let delta = try LinearModels.solve(hessian, gradient, size: p)
      var largest = 0.0
      for j in 0..<p {
        weights[j] -= delta[j]
        largest = max(largest, abs(delta[j]))
      }
      converged = largest < tolerance
      let (loss, accuracy) = figures(x, train)
      var result = EpochFigures(epoch: epoch, trainLoss: loss, trainAccuracy: accuracy)
      if let valid, let validX {
        let (validLoss, validAccuracy) = figures(validX, valid)
        result.validLoss = validLoss
        result.validAccuracy = validAccuracy
      }
      return result
    }

    /// Mean log loss and accuracy (at 0.5) on standardised rows.
    func figures(_ values: [Double], _ set: TrainingSet) -> (Double, Double) {
      var loss = 0.0
      var right = 0
      for i in 0..<set.rows {
        var z = weights[0]
        for j in 0..<set.columns { z += values[i * set.columns + j] * weights[j + 1] }
        let probability = sigmoid(z)
        let y = set.labels[i]
        let clipped = min(max(probability, 1e-15), 1 - 1e-15)
        loss -= y * log(clipped) + (1 - y) * log(1 - clipped)
        if (probability >= 0.5 ? 1.0 : 0.0) == y { right += 1 }
      }
      return (loss / Double(max(1, set.rows)), Double(right) / Double(max(1, set.rows)))
    }
  }

  /// Ridge regression minimising ‖y − Xw − b‖² + α‖w‖² on standardised features (scikit-learn's
  /// `Ridge(alpha: α)` on the same scaled rows), solved in closed form.
  public static func ridge(train: TrainingSet, valid: TrainingSet?, alpha: Double) throws -> (LinearModel, EpochFigures) {
    let standardization = Standardization.fit(train)
    let x = standardization.apply(train.values, columns: train.columns)
    let p = train.columns
    let n = train.rows
    let meanY = train.labels.reduce(0, +) / Double(max(1, n))
    // Standardised columns have mean 0, so centring y alone fits the intercept.
    var gram = [Double](repeating: 0, count: p * p)
    var moment = [Double](repeating: 0, count: p)
    for i in 0..<n {
      let y = train.labels[i] - meanY
      for a in 0..<p {
        let xa = x[i * p + a]
        moment[a] += xa * y
        for b in 0...a { gram[a * p + b] += xa * x[i * p + b] }
      }
    }
    for a in 0..<p {
      for b in 0..<a { gram[b * p + a] = gram[a * p + b] }
      gram[a * p + a] += alpha
    }
    let coefficients = try solve(gram, moment, size: p)
    let model = LinearModel(kind: .ridge, standardization: standardization, coefficients: coefficients, intercept: meanY)
    func errors(_ set: TrainingSet) -> (Double, Double) {
      let predictions = model.predict(set.values, rows: set.rows, columns: set.columns)
      var squares = 0.0
      var absolute = 0.0
      for i in 0..<set.rows {
        let e = predictions[i] - set.labels[i]
        squares += e * e
        absolute += abs(e)
      }
      let count = Double(max(1, set.rows))
      return ((squares / count).squareRoot(), absolute / count)
    }
    let (rmse, mae) = errors(train)
    var figures = EpochFigures(epoch: 0, trainLoss: rmse, trainMAE: mae)
    if let valid {
      let (validRMSE, validMAE) = errors(valid)
      figures.validLoss = validRMSE
      figures.validMAE = validMAE
    }
    return (model, figures)
  }

  /// Solves A x = b for a symmetric positive definite A (row-major, `size × size`) by Cholesky.
  static func solve(_ a: [Double], _ b: [Double], size n: Int) throws -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    // A pivot this small next to the largest diagonal is rounding noise: the matrix is singular.
    let largest = (0..<n).map { abs(a[$0 * n + $0]) }.max() ?? 0
    for i in 0..<n {
      for j in 0...i {
        var sum = a[i * n + j]
        for k in 0..<j { sum -= l[i * n + k] * l[j * n + k] }
        if i == j {
          guard sum > 1e-12 * largest, sum.isFinite else {
            throw ModelError("the features are collinear or constant, so the model has no unique fit; drop a feature or raise the penalty")
          }
          l[i * n + i] = sum.squareRoot()
        } else {
          l[i * n + j] = sum / l[j * n + j]
        }
      }
    }
    var y = [Double](repeating: 0, count: n)
    for i in 0..<n {
      var sum = b[i]
      for k in 0..<i { sum -= l[i * n + k] * y[k] }
      y[i] = sum / l[i * n + i]
    }
    var x = [Double](repeating: 0, count: n)
    for i in stride(from: n - 1, through: 0, by: -1) {
      var sum = y[i]
      for k in (i + 1)..<n where i + 1 < n { sum -= l[k * n + i] * x[k] }
      x[i] = sum / l[i * n + i]
    }
    return x
  }
}
