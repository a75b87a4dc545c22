import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Synchronization

public struct GridRequest: Sendable {
  public var strategy: String
  public var dataset: String?
  public var from: Int64?
  public var to: Int64?
  public var capital: Double?
  /// Param name → values to try.
  public var axes: [(name: String, values: [Double])]
  /// A condition on the params that a combination must satisfy, e.g. `fast < slow`.
  public var condition: String?
  public var rank: String
  public var top: Int
  public var jobs: Int
  public var allowGaps: Bool

  public init(
    strategy: String, dataset: String?, from: Int64?, to: Int64?, capital: Double?, axes: [(name: String, values: [Double])], condition: String?,
    rank: String, top: Int, jobs: Int, allowGaps: Bool
  ) {
    self.strategy = strategy
    self.dataset = dataset
    self.from = from
    self.to = to
    self.capital = capital
    self.axes = axes
    self.condition = condition
    self.rank = rank
    self.top = top
    self.jobs = jobs
    self.allowGaps = allowGaps
  }

  /// `5..50:1` (from, to inclusive, step) or `5,10,20`.
  public static func parseAxis(_ text: String) throws -> (name: String, values: [Double]) {
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty else {
      throw OperationError.invalidArgument("--grid: expected name=FROM..TO:STEP or name=a,b,c, got '\(text)'")
    }
    let body = parts[1]
    if let range = body.range(of: "..") {
      let lower = Double(body[..<range.lowerBound])
      let rest = body[range.upperBound...].split(separator: ":", maxSplits: 1)
      let upper = rest.first.flatMap { Double($0) }
      let step = rest.count > 1 ? Double(rest[1]) : 1
      guard let lower, let upper, let step, step > 0, upper >= lower else {
        throw OperationError.invalidArgument("--grid \(parts[0]): expected FROM..TO:STEP with FROM ≤ TO and STEP > 0, got '\(body)'")
      }
      let count = Int(((upper - lower) / step + 1e-9).rounded(.down)) + 1
      guard count <= 100_000 else { throw OperationError.invalidArgument("--grid \(parts[0]): \(count) values is too many") }
      return (parts[0], (0..<count).map { lower + Double($0) * step })
    }
    let values = body.split(separator: ",").map { Double($0) }
    guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else {
      throw OperationError.invalidArgument("--grid \(parts[0]): '\(body)' is not a list of numbers")
    }
    return (parts[0], values.map { $0! })
  }
}

public struct GridReport: Encodable, Sendable {
  public struct Result: Encodable, Sendable {
    public var parameters: [String: Double]
    public var metrics: Metrics
  }
  public var id: String
  public var strategy: String
  public var dataset: String
  public var bars: Int
  public var combinations: Int
  public var rank: String
  public var seconds: Double
  public var results: [Result]
}

extension BacktestOperations {
  /// Runs every combination of the axes on all cores and ranks them by `rank` (best first).
  public func grid(_ request: GridRequest) throws -> GridReport {
    let started = Date()
    guard Metrics.names.contains(request.rank) else {
      throw OperationError.invalidArgument(
        "--rank: unknown metric '\(request.rank)'"
          + (Similarity.closest(to: request.rank, among: Metrics.names).map { " — did you mean '\($0)'?" } ?? ""))
    }
    let loaded = try StrategyLoader.load(request.strategy, database: database)
    // Runs one combination first: it checks the spec, the data and the gaps once.
    let first = try execute(
      loaded, parameters: [:], capital: request.capital, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps)
    let known = first.strategy.parameters
    let combinations = try Self.combinations(request, known: known)

    let bars = first.bars
    let dataset = try database.dataset(named: first.datasetName)
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    let capital = first.strategy.capital
    let spec = loaded.spec
    let total = combinations.count
    let metrics = try Self.evaluate(
      combinations, spec: spec, origin: loaded.origin, capital: capital, bars: bars, barsPerYear: barsPerYear, jobs: request.jobs)
    let order = Self.ranking(metrics, by: request.rank)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let id = "g" + ContentHash.sha256Hex(Data((loaded.hash + "\(Date().timeIntervalSince1970)" + UUID().uuidString).utf8)).prefix(9)
    let axesText = String(decoding: try encoder.encode(Dictionary(uniqueKeysWithValues: request.axes.map { ($0.name, $0.values) })), as: UTF8.self)
    try database.recordGrid(
      id: id, strategyName: spec.name, specText: loaded.text, dataset: first.datasetName, axes: axesText, rank: request.rank,
      results: try order.map { index in
        (
          String(decoding: try encoder.encode(combinations[index]), as: UTF8.self),
          metrics[index].sortedJSON
        )
      })
    return GridReport(
      id: id, strategy: spec.name, dataset: first.datasetName, bars: bars.count, combinations: total, rank: request.rank,
      seconds: Date().timeIntervalSince(started),
      results: order.prefix(max(1, request.top)).map { GridReport.Result(parameters: known.merging(combinations[$0]) { $1 }, metrics: metrics[$0]) })
  }

  /// The cartesian product of the axes, less those failing `--where`.
  static func combinations(_ request: GridRequest, known: [String: Double]) throws -> [[String: Double]] {
    var combinations: [[String: Double]] = [[:]]
    for axis in request.axes {
      guard known[axis.name] != nil else {
        throw OperationError.invalidArgument(
          "--grid \(axis.name): the strategy has no param '\(axis.name)'"
            + (Similarity.closest(to: axis.name, among: Array(known.keys)).map { " — did you mean '\($0)'?" } ?? ""))
      }
      combinations = combinations.flatMap { combination in axis.values.map { combination.merging([axis.name: $0]) { $1 } } }
    }
    if let condition = request.condition {
      combinations = try combinations.filter { combination in
        RuleEvaluator.holds(try RuleParser.parse(condition, origin: "--where", parameters: known.merging(combination) { $1 }, allowColumns: false))
      }
    }
    guard !combinations.isEmpty else { throw OperationError.invalidArgument("no combination satisfies --where \(request.condition ?? "")") }
    return combinations
  }

  /// Every combination's metrics on `bars`, computed on `jobs` threads, each reusing one
  /// evaluator so an indicator of a given period is computed once per thread.
  static func evaluate(
    _ combinations: [[String: Double]], spec: StrategySpec, origin: String, capital: Double, bars: BarSeries, barsPerYear: Double, jobs: Int
  ) throws -> [Metrics] {
    let total = combinations.count
    let benchmark = BenchmarkReturns(bars.close.map { $0 / bars.close[0] * capital })
    let results = Mutex([Metrics?](repeating: nil, count: total))
    let failure = Mutex<(any Error)?>(nil)
    let workers = max(1, min(jobs, total))
    let batchSize = 16
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      let evaluator = RuleEvaluator(bars: bars)
      var local: [(Int, Metrics)] = []
      // A batch runs side by side, a block of bars at a time (see `Backtester.metrics(of:)`).
      let mine = Array(stride(from: worker, to: total, by: workers))
      for batch in stride(from: 0, to: mine.count, by: batchSize) {
        let indices = mine[batch..<min(batch + batchSize, mine.count)]
        do {
          let strategies = try indices.map { try CompiledStrategy(spec, overrides: combinations[$0], capital: capital, origin: origin) }
          let metrics = Backtester.metrics(of: strategies, bars: bars, evaluator: evaluator, barsPerYear: barsPerYear, benchmark: benchmark)
          local.append(contentsOf: zip(indices, metrics))
        } catch {
          failure.withLock { $0 = $0 ?? error }
          return
        }
      }
      results.withLock { all in for (i, metrics) in local { all[i] = metrics } }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    return results.withLock { $0.map { $0! } }
  }

  /// Indices best first by `metric` (lower is better for durations, volatility, losses, costs).
  static func ranking(_ metrics: [Metrics], by metric: String) -> [Int] {
    let descending = !["max_drawdown_duration", "volatility", "losing", "max_consecutive_losses", "commissions"].contains(metric)
    let read = Metrics.reader(metric) ?? { _ in .nan }
    let score = metrics.map { value -> Double in
      let raw = read(value)
      return raw.isFinite ? (descending ? raw : -raw) : -.infinity
    }
    return metrics.indices.sorted { score[$0] != score[$1] ? score[$0] > score[$1] : $0 < $1 }
  }

  /// Rolling walk-forward: in each window, pick the best combination on `train` bars, then
  /// measure it on the `test` bars that follow; windows advance by the test length.
  public func walkForward(_ request: GridRequest, train: PeriodLength, test: PeriodLength) throws -> WalkForwardReport {
    let loaded = try StrategyLoader.load(request.strategy, database: database)
    let first = try execute(
      loaded, parameters: [:], capital: request.capital, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps)
    let known = first.strategy.parameters
    let combinations = try Self.combinations(request, known: known)
    let dataset = try database.dataset(named: first.datasetName)
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    let bars = first.bars
    var windows: [WalkForwardReport.Window] = []
    var start = bars.timestamps[0]
    var compounded = 1.0
    while true {
      let trainEnd = train.after(start)
      let testEnd = test.after(trainEnd)
      guard testEnd <= bars.timestamps[bars.count - 1] + 1 else { break }
      let trainRange = bars.timestamps.firstIndex { $0 >= start }!..<(bars.timestamps.firstIndex { $0 >= trainEnd } ?? bars.count)
      let testRange = trainRange.upperBound..<(bars.timestamps.firstIndex { $0 >= testEnd } ?? bars.count)
      guard trainRange.count > 2, testRange.count > 2 else { break }
      let trainBars = bars.slice(trainRange)
      let inSample = try Self.evaluate(
        combinations, spec: loaded.spec, origin: loaded.origin, capital: first.strategy.capital, bars: trainBars, barsPerYear: barsPerYear,
        jobs: request.jobs)
      let best = Self.ranking(inSample, by: request.rank)[0]
      let outOfSample = try Self.evaluate(
        [combinations[best]], spec: loaded.spec, origin: loaded.origin, capital: first.strategy.capital, bars: bars.slice(testRange),
        barsPerYear: barsPerYear, jobs: 1)[0]
      compounded *= 1 + outOfSample.totalReturn
      windows.append(
        WalkForwardReport.Window(
          train: "\(UTCCalendar.format(trainBars.timestamps[0])) … \(UTCCalendar.format(trainBars.timestamps[trainBars.count - 1]))",
          test: "\(UTCCalendar.format(bars.timestamps[testRange.lowerBound])) … \(UTCCalendar.format(bars.timestamps[testRange.upperBound - 1]))",
          parameters: known.merging(combinations[best]) { $1 }, inSample: inSample[best].value(request.rank) ?? .nan, outOfSample: outOfSample))
      start = test.after(start)
    }
    guard !windows.isEmpty else {
      throw OperationError.invalidArgument(
        "the data (\(UTCCalendar.format(bars.timestamps[0])) … \(UTCCalendar.format(bars.timestamps[bars.count - 1]))) is shorter than one train + test window"
      )
    }
    return WalkForwardReport(
      strategy: loaded.spec.name, dataset: first.datasetName, rank: request.rank, combinations: combinations.count, windows: windows,
      outOfSampleReturn: compounded - 1)
  }
}

/// A length of time for walk-forward windows: days and weeks exactly, months and years by the calendar.
public struct PeriodLength: Sendable, Equatable {
  public var count: Int
  public var unit: Character

  /// `90d`, `12w`, `6m`, `2y`.
  public init?(_ text: String) {
    guard let unit = text.last, "dwmy".contains(unit), let count = Int(text.dropLast()), count > 0 else { return nil }
    self.count = count
    self.unit = unit
  }

  func after(_ timestamp: Int64) -> Int64 {
    switch unit {
    case "d": return timestamp + Int64(count) * 86_400_000
    case "w": return timestamp + Int64(count) * 604_800_000
    case "m": return Timeframe(count: count, unit: .month).next(after: timestamp)
    default: return Timeframe(count: count * 12, unit: .month).next(after: timestamp)
    }
  }
}

public struct WalkForwardReport: Encodable, Sendable {
  public struct Window: Encodable, Sendable {
    public var train: String
    public var test: String
    public var parameters: [String: Double]
    /// The ranking metric of the chosen combination on its training window.
    public var inSample: Double
    public var outOfSample: Metrics
    enum CodingKeys: String, CodingKey { case train, test, parameters, inSample = "in_sample", outOfSample = "out_of_sample" }
  }
  public var strategy: String
  public var dataset: String
  public var rank: String
  public var combinations: Int
  public var windows: [Window]
  /// The test windows' returns compounded.
  public var outOfSampleReturn: Double
  enum CodingKeys: String, CodingKey { case strategy, dataset, rank, combinations, windows, outOfSampleReturn = "out_of_sample_return" }
}
