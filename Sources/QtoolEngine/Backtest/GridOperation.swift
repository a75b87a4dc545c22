import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Synchronization

/// One param of a grid and the values it takes.
public struct GridAxis: Codable, Sendable, Equatable {
  public var name: String
  public var values: [Double]
  public init(name: String, values: [Double]) {
    self.name = name
    self.values = values
  }
}

/// `qtool backtest grid` and `--walk-forward`.
public struct GridRequest: Codable, Sendable, Equatable {
  public var strategy: StrategyReference
  public var dataset: String?
  @ISOTimestamp public var from: Int64?
  @ISOTimestamp public var to: Int64?
  public var capital: Double?
  public var axes: [GridAxis]
  /// A condition on the params that a combination must satisfy, e.g. `fast < slow`.
  public var condition: String?
  public var rank: String
  public var top: Int
  /// Worker threads; they share the machine's compute slots with every other operation.
  public var jobs: Int
  public var allowGaps: Bool
  /// With `from`: compute the indicators from `from` on, cold (see `BacktestRequest`).
  public var noWarmup: Bool
  /// The most combinations a grid may have; its size is checked before anything is allocated.
  public var maxCombinations: Int

  public static let defaultMaxCombinations = 1_000_000

  public init(
    strategy: StrategyReference, dataset: String? = nil, from: Int64? = nil, to: Int64? = nil, capital: Double? = nil, axes: [GridAxis],
    condition: String? = nil, rank: String = "sharpe", top: Int = 10, jobs: Int = ComputePool.cores, allowGaps: Bool = false,
    noWarmup: Bool = false, maxCombinations: Int = GridRequest.defaultMaxCombinations
  ) {
    self.noWarmup = noWarmup
    self.maxCombinations = maxCombinations
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

  enum CodingKeys: String, CodingKey {
    case strategy, dataset, from, to, capital, axes, condition = "where", rank, top, jobs, allowGaps = "allow_gaps", noWarmup = "no_warmup"
    case maxCombinations = "max_combinations"
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    strategy = try container.decode(StrategyReference.self, forKey: .strategy)
    dataset = try container.decodeIfPresent(String.self, forKey: .dataset)
    _from = try container.decode(ISOTimestamp.self, forKey: .from)
    _to = try container.decode(ISOTimestamp.self, forKey: .to)
    capital = try container.decodeIfPresent(Double.self, forKey: .capital)
    axes = try container.decode([GridAxis].self, forKey: .axes)
    condition = try container.decodeIfPresent(String.self, forKey: .condition)
    rank = try container.decodeIfPresent(String.self, forKey: .rank) ?? "sharpe"
    top = try container.decodeIfPresent(Int.self, forKey: .top) ?? 10
    jobs = try container.decodeIfPresent(Int.self, forKey: .jobs) ?? ComputePool.cores
    allowGaps = try container.decodeIfPresent(Bool.self, forKey: .allowGaps) ?? false
    noWarmup = try container.decodeIfPresent(Bool.self, forKey: .noWarmup) ?? false
    maxCombinations = try container.decodeIfPresent(Int.self, forKey: .maxCombinations) ?? Self.defaultMaxCombinations
  }
}

public struct GridReport: Encodable, Sendable {
  public struct Result: Encodable, Sendable {
    public var parameters: [String: Double]
    public var metrics: Metrics
  }
  public var id: String
  public var jobID: String?
  public var strategy: String
  public var dataset: String
  public var bars: Int
  /// Stored bars before the first traded bar that warmed every combination up (the longest
  /// warm-up among them).
  public var warmupBars: Int
  public var combinations: Int
  public var rank: String
  public var seconds: Double
  public var results: [Result]

  enum CodingKeys: String, CodingKey {
    case id, jobID = "job_id", strategy, dataset, bars, warmupBars = "warmup_bars", combinations, rank, seconds, results
  }
}

extension BacktestOperations {
  /// Runs every combination of the axes on the compute pool and ranks them by `rank` (best
  /// first), as a job; every result is stored.
  public func grid(_ request: GridRequest) throws -> GridReport {
    try Self.checkRank(request.rank)
    return try JobRunner.run(.grid, request: request, context: context, link: { ["grid_id": .string($0.id)] }) { context in
      try BacktestOperations(context).gridNow(request)
    }
  }

  static func checkRank(_ rank: String) throws {
    guard Metrics.names.contains(rank) else {
      throw OperationError.invalidArgument(
        "unknown metric '\(rank)' to rank by" + (Similarity.closest(to: rank, among: Metrics.names).map { " — did you mean '\($0)'?" } ?? ""),
        field: "rank", hint: "`qtool help metrics` lists the metrics")
    }
  }

  func gridNow(_ request: GridRequest) throws -> GridReport {
    let started = context.clock.now()
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    let known = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin).parameters
    let combinations = try Self.combinations(request, known: known)
    // Only a grid that starts at `from` needs its warm-up before it runs: otherwise each
    // combination's look-back is checked as it is compiled, and a grid pays nothing more.
    let warms = request.from != nil && !request.noWarmup
    let data = try loadGridData(loaded, request: request, combinations: warms ? combinations : [])
    let capital = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin).capital
    let metrics = try evaluate(combinations, loaded: loaded, capital: capital, data: data, jobs: request.jobs)
    let order = Self.ranking(metrics, by: request.rank)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let id = "g" + ContentHash.sha256Hex(Data((loaded.hash + "\(started)" + UUID().uuidString).utf8)).prefix(9)
    let axesText = String(decoding: try encoder.encode(Dictionary(uniqueKeysWithValues: request.axes.map { ($0.name, $0.values) })), as: UTF8.self)
    try context.cancellation.check()
    try database.recordGrid(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, dataset: data.datasetName, axes: axesText, rank: request.rank,
      results: try order.map { index in
        (String(decoding: try encoder.encode(combinations[index]), as: UTF8.self), metrics[index].sortedJSON)
      }, jobID: context.jobID, at: context.clock.now())
    return GridReport(
      id: id, jobID: context.jobID, strategy: loaded.spec.name, dataset: data.datasetName, bars: data.tradedCount, warmupBars: data.tradingStart,
      combinations: combinations.count, rank: request.rank, seconds: context.clock.seconds(since: started),
      results: order.prefix(max(1, request.top)).map { GridReport.Result(parameters: known.merging(combinations[$0]) { $1 }, metrics: metrics[$0]) })
  }

  /// The longest warm-up among `combinations` and the expression that needs it: a grid warms
  /// every combination up on the same bars.
  func longestWarmup(_ loaded: LoadedSpec, capital: Double?, combinations: [[String: Double]]) throws -> (bars: Int, expression: String?) {
    var longest = (bars: 0, expression: String?.none)
    let models = try ModelAttachments.load(
      try CompiledStrategy(loaded.spec, capital: capital, origin: loaded.origin).modelNames, database: database, allowInSample: false)
    for combination in combinations {
      var strategy = try CompiledStrategy(loaded.spec, overrides: combination, capital: capital, origin: loaded.origin)
      models.apply(to: &strategy)
      let warmup = strategy.warmup
      if warmup.bars > longest.bars { longest = warmup }
    }
    return longest
  }

  /// A grid's data, warmed up for the longest warm-up among `combinations`.
  func loadGridData(_ loaded: LoadedSpec, request: GridRequest, combinations: [[String: Double]]) throws -> MarketData {
    let (warmup, expression) = try longestWarmup(loaded, capital: request.capital, combinations: combinations)
    return try loadData(
      loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps, warmup: warmup,
      noWarmup: request.noWarmup, expression: expression)
  }

  /// The cartesian product of the axes, less those failing `--where`.
  static func combinations(_ request: GridRequest, known: [String: Double]) throws -> [[String: Double]] {
    var seen = Set<String>()
    var size = 1
    for axis in request.axes {
      guard seen.insert(axis.name).inserted else {
        throw OperationError.invalidArgument("the param '\(axis.name)' is given two ranges of values", field: "axes", hint: "give each param once")
      }
      guard !axis.values.isEmpty, axis.values.allSatisfy(\.isFinite) else {
        throw OperationError.invalidArgument("the values of '\(axis.name)' must be finite numbers, at least one", field: "axes")
      }
      let (product, overflow) = size.multipliedReportingOverflow(by: axis.values.count)
      guard !overflow, product <= request.maxCombinations else {
        let count = overflow ? "more than \(Int.max)" : "\(product)"
        throw OperationError.invalidArgument(
          "the grid has \(count) combinations (before any condition), more than the limit of \(request.maxCombinations)", field: "axes",
          hint: "narrow the ranges, or raise the limit with {max_combinations}")
      }
      size = product
    }
    var combinations: [[String: Double]] = [[:]]
    combinations.reserveCapacity(size)
    for axis in request.axes {
      guard known[axis.name] != nil else {
        throw OperationError.invalidArgument(
          "the strategy has no param '\(axis.name)'"
            + (Similarity.closest(to: axis.name, among: Array(known.keys)).map { " — did you mean '\($0)'?" } ?? ""),
          field: "axes", hint: "its params are \(known.keys.sorted().joined(separator: ", "))")
      }
      combinations = combinations.flatMap { combination in axis.values.map { combination.merging([axis.name: $0]) { $1 } } }
    }
    if let condition = request.condition {
      combinations = try combinations.filter { combination in
        RuleEvaluator.holds(try RuleParser.parse(condition, origin: "where", parameters: known.merging(combination) { $1 }, allowColumns: false))
      }
    }
    guard !combinations.isEmpty else {
      throw OperationError.invalidArgument("no combination satisfies the condition '\(request.condition ?? "")'", field: "where")
    }
    return combinations
  }

  /// Every combination's metrics on `data`, in batches on `jobs` threads that take a compute
  /// slot per batch; each thread reuses one evaluator, so an indicator of a given period is
  /// computed once per thread. Checks cancellation between batches and reports progress.
  func evaluate(_ combinations: [[String: Double]], loaded: LoadedSpec, capital: Double, data: MarketData, jobs: Int) throws -> [Metrics] {
    let total = combinations.count
    let results = Mutex([Metrics?](repeating: nil, count: total))
    let failure = Mutex<(any Error)?>(nil)
    let workers = max(1, min(jobs, total))
    let batchSize = 16
    let (spec, origin) = (loaded.spec, loaded.origin)
    let (cancellation, progress, hooks) = (context.cancellation, context.progress, context.hooks)
    progress.begin("grid", total: total, unit: .combinations)
    let benchmark = data.tradedBars.map { traded in
      let closes = data.benchmarkCloses ?? traded.close
      return BenchmarkReturns(closes.map { $0 / closes[0] * capital })
    }
    let tradingStart = data.tradingStart
    // model(): loaded once, shared by every combination (out-of-sample bars only).
    let models = try ModelAttachments.load(
      try CompiledStrategy(spec, capital: capital, origin: origin).modelNames, database: database, allowInSample: false)
    if data.tradedCount > 0 {
      try models.checkOutOfSample(from: data.timestamps[tradingStart], to: data.timestamps[data.timestamps.count - 1], allowInSample: false)
    }
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      let evaluator = data.single.map { RuleEvaluator(bars: $0, models: models.series) }
      var local: [(Int, Metrics)] = []
      // A batch runs side by side, a block of bars at a time (see `Backtester.metrics(of:)`).
      let mine = Array(stride(from: worker, to: total, by: workers))
      for batch in stride(from: 0, to: mine.count, by: batchSize) {
        let indices = mine[batch..<min(batch + batchSize, mine.count)]
        do {
          try cancellation.check()
          if worker == 0 { try hooks.checkpoint("grid.batch", batch / batchSize, cancellation: cancellation) }
          if failure.withLock({ $0 != nil }) { return }
          let strategies = try indices.map { index in
            var strategy = try CompiledStrategy(spec, overrides: combinations[index], capital: capital, origin: origin)
            models.apply(to: &strategy)
            try Self.checkLookback(strategy, on: data)
            return strategy
          }
          let metrics = try ComputePool.withSlot { () throws -> [Metrics] in
            if let bars = data.single, let evaluator, let benchmark {
              return Backtester.metrics(
                of: strategies, bars: bars, from: tradingStart, evaluator: evaluator, barsPerYear: data.barsPerYear, benchmark: benchmark)
            }
            return try strategies.map { strategy in
              let simulated = try Self.simulate(strategy, on: data, cancellation: cancellation)
              return Metrics.compute(simulated.outcome, bars: simulated.bars, barsPerYear: data.barsPerYear, benchmark: simulated.benchmark)
            }
          }
          local.append(contentsOf: zip(indices, metrics))
          progress.advance(by: indices.count)
        } catch {
          failure.withLock { $0 = $0 ?? error }
          return
        }
      }
      results.withLock { all in for (i, metrics) in local { all[i] = metrics } }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    progress.finish()
    return results.withLock { $0.map { $0! } }
  }

  /// Indices best first by `metric` (lower is better for durations, volatility, losses, costs).
  static func ranking(_ metrics: [Metrics], by metric: String) -> [Int] {
    let descending = !["max_drawdown_duration", "volatility", "losing", "max_consecutive_losses", "commissions"].contains(metric)
    let read = Metrics.reader(metric) ?? { _ in .nan }
    // Infinity ranks as IEEE orders it (a profit factor with no losing trade first); an
    // undefined metric (a combination that never traded) last.
    let score = metrics.map { value -> Double in
      let raw = read(value)
      return descending ? raw : -raw
    }
    return metrics.indices.sorted { a, b in
      let (x, y) = (score[a], score[b])
      if x.isNaN != y.isNaN { return y.isNaN }
      return x != y && !x.isNaN ? x > y : a < b
    }
  }

  /// Rolling walk-forward, as a job: in each window, pick the best combination on `train` bars,
  /// then measure it on the `test` bars that follow; windows advance by the test length.
  public func walkForward(_ request: GridRequest, train: PeriodLength, test: PeriodLength) throws -> WalkForwardReport {
    try Self.checkRank(request.rank)
    struct Request: Encodable {
      var grid: GridRequest
      var train: String
      var test: String
    }
    return try JobRunner.run(
      .walkForward, request: Request(grid: request, train: train.description, test: test.description), context: context, link: { _ in [:] }
    ) { context in
      try BacktestOperations(context).walkForwardNow(request, train: train, test: test)
    }
  }

  func walkForwardNow(_ request: GridRequest, train: PeriodLength, test: PeriodLength) throws -> WalkForwardReport {
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    let base = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin)
    let known = base.parameters
    let combinations = try Self.combinations(request, known: known)
    // Every window warms up on the bars before it, as a run with `from` does: the train
    // windows for the longest warm-up of the grid, each test window for its combination's.
    let (warmup, expression) = try longestWarmup(loaded, capital: request.capital, combinations: combinations)
    let data = try loadData(
      loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps, warmup: warmup,
      noWarmup: request.noWarmup, expression: expression)
    let timestamps = data.timestamps
    guard data.tradedCount >= 2 else { throw BacktestError.noBars(dataset: data.datasetName) }
    var windows: [WalkForwardReport.Window] = []
    var start = timestamps[data.tradingStart]
    var compounded = 1.0
    while true {
      let trainEnd = train.after(start)
      let testEnd = test.after(trainEnd)
      guard testEnd <= timestamps[timestamps.count - 1] + 1 else { break }
      let trainRange = timestamps.firstIndex { $0 >= start }!..<(timestamps.firstIndex { $0 >= trainEnd } ?? timestamps.count)
      let testRange = trainRange.upperBound..<(timestamps.firstIndex { $0 >= testEnd } ?? timestamps.count)
      guard trainRange.count > 2, testRange.count > 2 else { break }
      let inSample = try evaluate(
        combinations, loaded: loaded, capital: base.capital, data: data.window(trainRange, warmup: warmup), jobs: request.jobs)
      let best = Self.ranking(inSample, by: request.rank)[0]
      var bestStrategy = try CompiledStrategy(loaded.spec, overrides: combinations[best], capital: request.capital, origin: loaded.origin)
      try ModelAttachments.load(bestStrategy.modelNames, database: database, allowInSample: false).apply(to: &bestStrategy)
      let bestWarmup = bestStrategy.warmup.bars
      let outOfSample = try evaluate(
        [combinations[best]], loaded: loaded, capital: base.capital, data: data.window(testRange, warmup: bestWarmup), jobs: 1)[0]
      compounded *= 1 + outOfSample.totalReturn
      windows.append(
        WalkForwardReport.Window(
          train: "\(UTCCalendar.format(timestamps[trainRange.lowerBound])) … \(UTCCalendar.format(timestamps[trainRange.upperBound - 1]))",
          test: "\(UTCCalendar.format(timestamps[testRange.lowerBound])) … \(UTCCalendar.format(timestamps[testRange.upperBound - 1]))",
          parameters: known.merging(combinations[best]) { $1 }, inSample: Metrics.reader(request.rank).map { $0(inSample[best]) } ?? .nan,
          outOfSample: outOfSample))
      start = test.after(start)
    }
    guard !windows.isEmpty else {
      throw OperationError(
        .usage, code: "data_shorter_than_window",
        "the data (\(UTCCalendar.format(timestamps[0])) … \(UTCCalendar.format(timestamps[timestamps.count - 1]))) is shorter than one train + test window",
        hint: "choose shorter train and test windows")
    }
    return WalkForwardReport(
      strategy: loaded.spec.name, dataset: data.datasetName, rank: request.rank, combinations: combinations.count,
      warmupBars: data.warmupEnabled ? warmup : 0, windows: windows, outOfSampleReturn: compounded - 1)
  }
}

/// A length of time for walk-forward windows: days and weeks exactly, months and years by the calendar.
public struct PeriodLength: Sendable, Equatable, CustomStringConvertible {
  public var count: Int
  public var unit: Character

  public var description: String { "\(count)\(unit)" }

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

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(train, forKey: .train)
      try container.encode(test, forKey: .test)
      try container.encode(parameters, forKey: .parameters)
      try container.encode(inSample.isFinite ? inSample : nil, forKey: .inSample)  // undefined or infinite: null
      try container.encode(outOfSample, forKey: .outOfSample)
    }
  }
  public var strategy: String
  public var dataset: String
  public var rank: String
  public var combinations: Int
  /// Bars before each window that warm its indicators up (the grid's longest warm-up; a test
  /// window takes its combination's own); 0 with `no_warmup`.
  public var warmupBars: Int
  public var windows: [Window]
  /// The test windows' returns compounded.
  public var outOfSampleReturn: Double
  enum CodingKeys: String, CodingKey {
    case strategy, dataset, rank, combinations, warmupBars = "warmup_bars", windows, outOfSampleReturn = "out_of_sample_return"
  }
}
