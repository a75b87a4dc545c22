import Foundation
import QtoolCore
import QtoolStore

/// A merged walk-forward as its store keeps it: the report's fields, every metric exact
/// (infinite and undefined ones as "inf", "-inf", "nan": JSON has neither) and the grid's axes
/// with their values, so that `backtest grid show` prints what `backtest grid merge` printed and
/// `backtest grid list` lists it. Reports stored before the axes were (plain report JSON, a
/// metric JSON could not carry as null) read back with those metrics undefined and the varied
/// params as axes.
struct StoredWalkForward: Codable {
  struct Window: Codable {
    var train: WalkForwardReport.Span
    var test: WalkForwardReport.Span
    var params: [String: Double]
    var inSample: [String: Double?]
    var outOfSample: [String: Double?]
    enum CodingKeys: String, CodingKey { case train, test, params, inSample = "in_sample", outOfSample = "out_of_sample" }
  }
  var strategy: String
  var dataset: String
  var rank: String
  var combinations: Int
  var warmupBars: Int
  var windows: [Window]
  var outOfSampleReturn: Double
  var id: String?
  var shards: Int?
  /// Each axis's values by name.
  var axes: [String: [Double]]?
  enum CodingKeys: String, CodingKey {
    case strategy, dataset, rank, combinations, warmupBars = "warmup_bars", windows, outOfSampleReturn = "out_of_sample_return", id, shards, axes
  }

  init(_ report: WalkForwardReport, axes: [String: [Double]]) {
    func values(_ metrics: Metrics) -> [String: Double?] { metrics.allValues.mapValues { $0 } }
    strategy = report.strategy
    dataset = report.dataset
    rank = report.rank
    combinations = report.combinations
    warmupBars = report.warmupBars
    windows = report.windows.map {
      Window(train: $0.train, test: $0.test, params: $0.parameters, inSample: values($0.inSample), outOfSample: values($0.outOfSample))
    }
    outOfSampleReturn = report.outOfSampleReturn
    id = report.id
    shards = report.shards
    self.axes = axes
  }

  static func decode(_ text: String) throws -> StoredWalkForward {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try decoder.decode(Self.self, from: Data(text.utf8))
  }

  func encoded() throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(self), as: UTF8.self)
  }

  /// The axes' names: stored, or (an older report) the params whose chosen values differ
  /// between windows, or every param when no two windows differ.
  var axisNames: [String] {
    if let axes { return axes.keys.sorted() }
    let names = Set(windows.flatMap(\.params.keys)).sorted()
    let varied = names.filter { name in Set(windows.map { $0.params[name] }).count > 1 }
    return varied.isEmpty ? names : varied
  }

  var report: WalkForwardReport {
    get throws {
      func metrics(_ values: [String: Double?]) throws -> Metrics {
        try Metrics.exact(Metrics.exactJSON { name in (values[name] ?? nil) ?? (Metrics.isCount(name) ? 0 : .nan) })
      }
      let read = Metrics.reader(rank)
      return WalkForwardReport(
        strategy: strategy, dataset: dataset, rank: rank, combinations: combinations, warmupBars: warmupBars,
        windows: try windows.map { window in
          let inSample = try metrics(window.inSample)
          return WalkForwardReport.Window(
            train: window.train, test: window.test, parameters: window.params, inSample: inSample, outOfSample: try metrics(window.outOfSample),
            inSampleRank: read.map { $0(inSample) } ?? .nan)
        }, outOfSampleReturn: outOfSampleReturn, id: id, shards: shards, axes: axisNames)
    }
  }
}

extension GridSummary {
  /// A merged walk-forward in the list of grids.
  init(_ record: WalkForwardRunRecord, stored: StoredWalkForward) {
    id = record.id
    jobID = record.jobID
    strategy = record.strategyName
    dataset = record.dataset
    axes = stored.axisNames.map { GridAxis(name: $0, values: stored.axes?[$0] ?? []) }
    rank = stored.rank
    combinations = stored.combinations
    createdAt = UTCCalendar.format(record.createdAt, alwaysTime: true)
    walkForward = record.walkForward
  }
}

extension BacktestOperations {
  /// The merged walk-forward `id` names (exactly or by a unique prefix), as the merge reported
  /// it; nil when it names none, e.g. a plain grid.
  public func mergedWalkForward(id: String) throws -> WalkForwardReport? {
    guard let record = try database.walkForwardRun(id: id) else { return nil }
    return try StoredWalkForward.decode(record.report).report
  }

  /// Stored grids and merged walk-forwards, newest first.
  public func grids(strategy: String? = nil) throws -> [GridSummary] {
    let grids = try database.grids().map { (createdAt: $0.createdAt, summary: GridSummary($0)) }
    let walkForwards = try database.walkForwardRuns().map { run in
      (createdAt: run.createdAt, summary: GridSummary(run, stored: try StoredWalkForward.decode(run.report)))
    }
    return (grids + walkForwards)
      .sorted { $0.createdAt != $1.createdAt ? $0.createdAt > $1.createdAt : $0.summary.id < $1.summary.id }
      .map(\.summary)
      .filter { strategy == nil || $0.strategy == strategy }
  }
}
