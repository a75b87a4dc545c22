import Foundation
import QtoolCore
import QtoolEngine
import QtoolModels

extension Bench {
  /// The model spec of the training benchmarks: 20 features on a random walk.
  static let trainFeatures: [(String, String)] = [
    ("rsi7", "rsi(close, 7)"), ("rsi14", "rsi(close, 14)"), ("rsi21", "rsi(close, 21)"), ("roc5", "roc(close, 5)"), ("roc10", "roc(close, 10)"),
    ("roc20", "roc(close, 20)"), ("sma10", "close / sma(close, 10) - 1"), ("sma20", "close / sma(close, 20) - 1"),
    ("sma50", "close / sma(close, 50) - 1"), ("sma100", "close / sma(close, 100) - 1"), ("atr", "atr(14) / close"),
    ("sd20", "stddev(close, 20) / close"), ("z20", "zscore(close, 20)"), ("ret1", "returns(close, 1)"), ("ret2", "returns(close, 2)"),
    ("ret5", "returns(close, 5)"), ("macd", "macd(close) / close"), ("hist", "macd_hist(close) / close"), ("hi20", "highest(high, 20) / close"),
    ("lo20", "lowest(low, 20) / close"),
  ]

  func train() throws {
    let count = 140_000
    print("\ntrain (\(count / 1000)k bars × \(Self.trainFeatures.count) features, gbt, one thread)")
    let bars = Self.randomWalk(count: count, seed: 7)
    let spec = ModelSpec(
      name: "bench", dataset: "RW-1m", features: Self.trainFeatures.map { ModelSpec.Feature(name: $0.0, expr: $0.1) },
      label: ModelSpec.Label(expr: "forward_return(close, 5) > 0", kind: "binary"),
      model: ["family": "gbt", "rounds": 200, "max_depth": 6, "eta": 0.1, "threads": 1, "seed": 0],
      split: ModelSpec.Split(train: "..", valid: nil, test: nil, purge: nil))
    let model = try CompiledModel(spec)

    // The feature matrix: 20 expressions over every bar, rows with a missing value dropped.
    var rows = RowSet(columns: 20)
    var best = Double.infinity
    for _ in 0..<3 {
      best = min(
        best,
        try time {
          let table = FeatureTable(model, input: ModelInput(symbol: "RW", bars: bars))
          rows = ModelData.folds(model, tables: [table])[0].trainRows
        })
    }
    let cells = Double(count * Self.trainFeatures.count)
    let copy = try time { _ = rows.values.map { $0 + 0 } }
    report("feature matrix (evaluate + assemble rows)", String(format: "%.1fM cells/s", cells / best / 1e6), "target ≥ 5M cells/s; \(ms(best))")
    report("baseline: one pass copying the matrix", String(format: "%.1fM cells/s", Double(rows.values.count) / copy / 1e6))

    let set = TrainingSet(values: rows.values, rows: rows.rows, columns: 20, labels: rows.labels)
    let parameters = model.boosterParameters.map { ($0[0], $0[1]) }
    var trained: GBTModel?
    let qtoolSeconds = try time {
      let trainer = try GBTTrainer(train: set, valid: nil, kind: .binary, parameters: parameters)
      for round in 0..<200 { _ = try trainer.round(round) }
      trained = try trainer.model(rounds: 200)
    }
    let python = try pythonTraining(set, parameters: parameters)
    report("qtool: 200 rounds through the C API", String(format: "%.2f s", qtoolSeconds), "\(rows.rows) rows, with per-round evaluation")
    if let python {
      report(
        "baseline: Python xgboost, same matrix", String(format: "%.2f s", python),
        "ratio qtool/python \(String(format: "%.3f", qtoolSeconds / python)) (target ≤ 1.05)")
    } else {
      report("baseline: Python xgboost", "not run", "python3 with xgboost==1.7.4 is not installed here")
    }

    guard let trained else { return }
    let one = Array(rows.values[0..<20])
    var times: [Double] = []
    for _ in 0..<2001 { times.append(try time { _ = try trained.predict(one, rows: 1, columns: 20) }) }
    times.sort()
    let baseline = try time { for _ in 0..<2001 { _ = one.reduce(0, +) } } / 2001
    report(
      "one-row prediction (median of 2001)", String(format: "%.1f µs", times[1000] * 1e6),
      "target < 100 µs; summing the row: \(String(format: "%.0f ns", baseline * 1e9))")
    let million = 1_000_000
    var batch = [Double](repeating: 0, count: million * 20)
    for i in 0..<million { for j in 0..<20 { batch[i * 20 + j] = rows.values[(i % rows.rows) * 20 + j] } }
    let batchTime = try time { _ = try trained.predict(batch, rows: million, columns: 20) }
    report("batch prediction, 1M rows", String(format: "%.2f s", batchTime), String(format: "%.2fM rows/s", Double(million) / batchTime / 1e6))
  }

  /// The same training from Python's xgboost on the same float32 matrix, in seconds; nil when
  /// python3 or xgboost is not there.
  func pythonTraining(_ set: TrainingSet, parameters: [(String, String)]) throws -> Double? {
    let matrix = scratch.appendingPathComponent("train.f32")
    let labels = scratch.appendingPathComponent("labels.f32")
    try set.values.map { Float($0) }.withUnsafeBytes { Data($0) }.write(to: matrix)
    try set.labels.map { Float($0) }.withUnsafeBytes { Data($0) }.write(to: labels)
    // What GBTTrainer sets: its defaults, the binary objective and both metrics, then the spec's.
    let params =
      (GBTTrainer.defaults + [("objective", "binary:logistic")] + parameters).map { "'\($0.0)': '\($0.1)'" }.joined(separator: ", ")
      + ", 'eval_metric': ['logloss', 'error']"
    let script = """
      import sys, time
      try:
          import numpy as np, xgboost as xgb
      except ImportError:
          sys.exit(3)
      x = np.fromfile('\(matrix.path)', dtype=np.float32).reshape(-1, 20)
      y = np.fromfile('\(labels.path)', dtype=np.float32)
      d = xgb.DMatrix(x, label=y, missing=np.nan)
      start = time.perf_counter()
      xgb.train({\(params)}, d, num_boost_round=200, evals=[(d, 'train')], verbose_eval=False)
      print(time.perf_counter() - start)
      """
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script]
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    do { try process.run() } catch { return nil }
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { return nil }
    return Double(String(decoding: output, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
  }
}
