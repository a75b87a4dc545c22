/// One series a model is trained on or predicts: a symbol's bars.
public struct ModelInput: Sendable {
  public var symbol: String
  public var bars: BarSeries
  public init(symbol: String, bars: BarSeries) {
    self.symbol = symbol
    self.bars = bars
  }
}

/// A model's features and label on every bar of one series: columns of doubles, NaN where a
/// feature is still warming up or the label reads past the last bar.
public struct FeatureTable: Sendable {
  public var symbol: String
  public var timestamps: [Int64]
  /// One column per feature, in the spec's order.
  public var columns: [[Double]]
  /// Empty when built for prediction only.
  public var label: [Double]
  /// The first row whose features can all have values (the longest look-back): before it a
  /// condition feature reads 0 rather than missing, and is dropped all the same.
  public var firstComplete: Int

  public var count: Int { timestamps.count }

  /// The features of `model` (and its label, unless `labels` is false) on `input`'s bars.
  public init(_ model: CompiledModel, input: ModelInput, labels: Bool = true) {
    let evaluator = RuleEvaluator(bars: input.bars)
    symbol = input.symbol
    timestamps = input.bars.timestamps
    columns = model.features.map { evaluator.evaluate($0.expression) }
    firstComplete = model.featureLookback
    guard labels else {
      label = []
      return
    }
    label = evaluator.evaluate(model.label)
    // The last `horizon` bars have no label: the bars it reads are not there yet (a
    // comparison would read them as false, not as missing).
    for i in max(0, label.count - model.horizon)..<label.count { label[i] = .nan }
  }

  /// Whether every feature of row `i` has a value.
  @inline(__always) public func complete(_ i: Int) -> Bool {
    guard i >= firstComplete else { return false }
    for column in columns where !column[i].isFinite { return false }
    return true
  }

  /// The rows at `indices`, row-major.
  public func values(_ indices: [Int]) -> [Double] {
    let width = columns.count
    var out = [Double](repeating: 0, count: indices.count * width)
    out.withUnsafeMutableBufferPointer { buffer in
      for (j, column) in columns.enumerated() {
        column.withUnsafeBufferPointer { column in
          for (r, i) in indices.enumerated() { buffer[r * width + j] = column[i] }
        }
      }
    }
    return out
  }
}

/// Rows of a model's training data: features row-major, labels, and where each row came from.
public struct RowSet: Sendable {
  public var values: [Double]
  public var labels: [Double]
  public var timestamps: [Int64]
  /// The series (index into the inputs) of each row.
  public var series: [Int]
  public var columns: Int

  public var rows: Int { timestamps.count }

  public init(columns: Int) {
    values = []
    labels = []
    timestamps = []
    series = []
    self.columns = columns
  }

  mutating func append(_ table: FeatureTable, _ indices: [Int], series index: Int) {
    values += table.values(indices)
    labels += indices.map { table.label.isEmpty ? .nan : table.label[$0] }
    timestamps += indices.map { table.timestamps[$0] }
    series += [Int](repeating: index, count: indices.count)
  }

  /// Pooled rows of several series, ordered by time (then by series), so folds read in order.
  mutating func sortByTime() {
    let order = timestamps.indices.sorted { (timestamps[$0], series[$0]) < (timestamps[$1], series[$1]) }
    guard order != Array(timestamps.indices) else { return }
    var sorted = RowSet(columns: columns)
    sorted.values.reserveCapacity(values.count)
    for i in order {
      sorted.values += values[(i * columns)..<((i + 1) * columns)]
      sorted.labels.append(labels[i])
      sorted.timestamps.append(timestamps[i])
      sorted.series.append(series[i])
    }
    self = sorted
  }
}

/// One fold of training: the blocks in time, and the rows of each.
public struct Fold: Sendable {
  public var index: Int
  public var train: TimeBlock
  public var valid: TimeBlock?
  public var test: TimeBlock?
  public var trainRows: RowSet
  public var validRows: RowSet?
  /// Rows of the test block that have a label (for its metrics).
  public var testRows: RowSet?
  /// Rows of the test block with every feature, labelled or not (for its predictions).
  public var testFeatureRows: RowSet?
  /// Rows dropped by the purge at the block boundaries.
  public var purged: Int
}

/// Cuts a model's rows into folds: drops rows with a missing feature or label, assigns each
/// to its block by time, and purges `purge` bars before every boundary between blocks, so no
/// training or validation label reads into a later block. The test block is never trained
/// on nor used for early stopping.
public enum ModelData {
  /// The blocks of each fold of `plan` over data spanning `first...last`.
  public static func blocks(_ plan: TrainingPlan, first: Int64, last: Int64) -> [(train: TimeBlock, valid: TimeBlock?, test: TimeBlock?)] {
    switch plan {
    case .split(let train, let valid, let test): return [(train, valid, test)]
    case .walkForward(let train, let valid, let test, let step, let expanding):
      var result: [(TimeBlock, TimeBlock?, TimeBlock?)] = []
      var anchor = first
      while result.count < 100_000 {
        let trainEnd = train.after(anchor)
        let validEnd = valid.map { $0.after(trainEnd) } ?? trainEnd
        let testEnd = test.after(validEnd)
        guard validEnd <= last else { break }
        result.append(
          (
            TimeBlock(from: expanding ? first : anchor, to: trainEnd), valid.map { _ in TimeBlock(from: trainEnd, to: validEnd) },
            TimeBlock(from: validEnd, to: testEnd)
          ))
        anchor = step.after(anchor)
      }
      return result
    }
  }

  /// The folds of `model` over `tables` (one per series).
  public static func folds(_ model: CompiledModel, tables: [FeatureTable]) -> [Fold] {
    let first = tables.compactMap(\.timestamps.first).min() ?? 0
    let last = tables.compactMap(\.timestamps.last).max() ?? 0
    return blocks(model.plan, first: first, last: last).enumerated().map { index, blocks in
      fold(index, blocks, tables: tables, purge: model.purge, columns: model.features.count)
    }
  }

  static func fold(
    _ index: Int, _ blocks: (train: TimeBlock, valid: TimeBlock?, test: TimeBlock?), tables: [FeatureTable], purge: Int, columns: Int
  ) -> Fold {
    var train = RowSet(columns: columns)
    var valid = RowSet(columns: columns)
    var test = RowSet(columns: columns)
    var testFeatures = RowSet(columns: columns)
    var purged = 0
    for (s, table) in tables.enumerated() {
      let n = table.count
      // 0 train, 1 valid, 2 test, -1 none.
      var block = [Int8](repeating: -1, count: n)
      for i in 0..<n {
        let t = table.timestamps[i]
        if blocks.train.contains(t) {
          block[i] = 0
        } else if blocks.valid?.contains(t) == true {
          block[i] = 1
        } else if blocks.test?.contains(t) == true {
          block[i] = 2
        }
      }
      // The nearest bar of a later block after each train or valid bar.
      var nextLater = [Int](repeating: Int.max, count: n)
      var nearestValid = Int.max
      var nearestTest = Int.max
      for i in stride(from: n - 1, through: 0, by: -1) {
        if block[i] == 0 { nextLater[i] = min(nearestValid, nearestTest) }
        if block[i] == 1 { nextLater[i] = nearestTest }
        if block[i] == 1 { nearestValid = i }
        if block[i] == 2 { nearestTest = i }
      }
      var picked: [[Int]] = [[], [], [], []]
      for i in 0..<n where block[i] >= 0 && table.complete(i) {
        let labelled = !table.label.isEmpty && table.label[i].isFinite
        switch block[i] {
        case 2:
          picked[3].append(i)
          if labelled { picked[2].append(i) }
        default:
          guard labelled else { continue }
          // A training or validation row whose label window reaches the next block is purged.
          if nextLater[i] != Int.max, nextLater[i] - i <= purge {
            purged += 1
            continue
          }
          picked[Int(block[i])].append(i)
        }
      }
      train.append(table, picked[0], series: s)
      valid.append(table, picked[1], series: s)
      test.append(table, picked[2], series: s)
      testFeatures.append(table, picked[3], series: s)
    }
    if tables.count > 1 {
      train.sortByTime()
      valid.sortByTime()
      test.sortByTime()
      testFeatures.sortByTime()
    }
    return Fold(
      index: index, train: blocks.train, valid: blocks.valid, test: blocks.test, trainRows: train, validRows: blocks.valid == nil ? nil : valid,
      testRows: blocks.test == nil ? nil : test, testFeatureRows: blocks.test == nil ? nil : testFeatures, purged: purged)
  }
}
