import QtoolCore

/// The specs `train new` writes: commented, valid as written.
public enum ModelTemplates {
  public static let names = ["gbt-classifier", "gbt-regressor", "logistic", "ridge"]

  /// The spec text of `template` for `dataset`, split 60/20/20 by time over `first..last`.
  static func render(_ template: String, name: String, dataset: String, first: Int64, last: Int64) -> String? {
    guard names.contains(template) else { return nil }
    let span = last - first
    let day = UTCCalendar.dayMilliseconds
    let validStart = (first + span * 6 / 10) / day * day
    let testStart = (first + span * 8 / 10) / day * day
    let trainEnd = UTCCalendar.format(validStart - day)
    let validEnd = UTCCalendar.format(testStart - day)
    let classifier = template != "gbt-regressor" && template != "ridge"
    let label =
      classifier
      ? "label: { expr: \"forward_return(close, h) > 0\", kind: binary }   # up over the next h bars"
      : "label: { expr: \"forward_return(close, h)\", kind: regression }   # the return over the next h bars"
    let model: String
    switch template {
    case "gbt-classifier", "gbt-regressor":
      model = """
        model:                # XGBoost's own parameter names pass through (subsample, colsample_bytree, lambda, …)
          family: gbt
          rounds: 200         # one round is one epoch
          early_stopping: 20  # stop after 20 rounds without a better validation loss
          max_depth: 3
          eta: 0.05
          seed: 0
          threads: 1          # one thread: the same data and seed give the same model bit for bit
        """
    case "logistic":
      model = """
        model:
          family: logistic    # L2-penalised; one Newton step is one epoch
          lambda: 1.0         # penalty (scikit-learn's C = 1 / lambda)
          max_iter: 100
        """
    default:
      model = """
        model:
          family: ridge       # closed form
          alpha: 1.0
        """
    }
    return """
      # \(name): a model on rules-language features (`qtool help rules`), trained with
      # `qtool train run \(name)` and read by strategies as model("\(name)").
      name: \(name)
      dataset: \(dataset)
      params: { h: 5 }
      features:                    # name: expression; rows with a missing feature are dropped
        rsi14: rsi(close, 14)
        roc5: roc(close, 5)
        trend: close / sma(close, 50) - 1
        vol: atr(14) / close
        ret1: returns(close, 1)
      \(label)
      \(model)
      # Train, validate (early stopping) and test on consecutive dates; `purge` bars are dropped
      # before each boundary so no training label reads the next block. The test block is
      # never seen by training.
      split: { train: "..\(trainEnd)", valid: "\(UTCCalendar.format(validStart))..\(validEnd)", test: "\(UTCCalendar.format(testStart)).." , purge: h }
      # `qtool train run NAME --walk-forward` trains folds instead: each test block by a model
      # trained on the window before it.
      walk_forward: { train: 2y, valid: 3m, test: 6m, step: 6m, purge: h }

      """
  }
}
