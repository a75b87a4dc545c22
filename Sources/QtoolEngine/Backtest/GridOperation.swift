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
    enum CodingKeys: String, CodingKey { case parameters = "params", metrics }
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
    let loaded = try checkGrid(request)
    return try JobRunner.run(.grid, request: request, context: context, link: { ["grid_id": .string($0.id)] }) { context in
      try BacktestOperations(context).gridNow(request, loaded: loaded)
    }
  }

  /// Refuses before a grid's job is recorded, as `backtest run` refuses a bad assertion, what
  /// no run of it could get past: the ranking metric, the dates, the strategy, and the axes and
  /// `--where` against the strategy's params.
  /// Returns the spec as loaded, for the job to run (read once, not again inside it).
  func checkGrid(_ request: GridRequest) throws -> LoadedSpec {
    try Self.checkRank(request.rank)
    try OperationError.checkRange(from: request.from, to: request.to)
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    _ = try Self.checkAxes(request, known: try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin).parameters)
    return loaded
  }

  static func checkRank(_ rank: String) throws {
    guard Metrics.names.contains(rank) else {
      throw OperationError.invalidArgument(
        "unknown metric '\(rank)' to rank by" + (Similarity.closest(to: rank, among: Metrics.names).map { " — did you mean '\($0)'?" } ?? ""),
        field: "rank", hint: "`qtool help metrics` lists the metrics")
    }
  }

  func gridNow(_ request: GridRequest, loaded: LoadedSpec) throws -> GridReport {
    let started = context.clock.now()
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
    let axesText = try Self.axesText(request)
    try context.cancellation.check()
    try database.recordGrid(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, dataset: data.datasetName, axes: axesText, rank: request.rank,
      results: try order.map { index in
        (String(decoding: try encoder.encode(combinations[index]), as: UTF8.self), metrics[index].sortedJSON)
      }, jobID: context.jobID, settings: try Self.settingsText(request), at: context.clock.now())
    return GridReport(
      id: id, jobID: context.jobID, strategy: loaded.spec.name, dataset: data.datasetName, bars: data.tradedCount, warmupBars: data.tradingStart,
      combinations: combinations.count, rank: request.rank, seconds: context.clock.seconds(since: started),
      results: order.prefix(max(1, request.top)).map { GridReport.Result(parameters: known.merging(combinations[$0]) { $1 }, metrics: metrics[$0]) })
  }

  /// The axes as stored with a grid: `{"fast":[5,10],"slow":[20]}`, keys sorted.
  static func axesText(_ request: GridRequest) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(decoding: try encoder.encode(Dictionary(uniqueKeysWithValues: request.axes.map { ($0.name, $0.values) })), as: UTF8.self)
  }

  /// What a grid ran with besides spec and axes, as stored with it (`GridSettings`).
  static func settingsText(_ request: GridRequest) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    return String(
      decoding: try encoder.encode(
        GridSettings(
          dataset: request.dataset, from: request.from, to: request.to, capital: request.capital, allowGaps: request.allowGaps,
          noWarmup: request.noWarmup)), as: UTF8.self)
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
    let condition = try checkAxes(request, known: known)
    var combinations: [[String: Double]] = [[:]]
    combinations.reserveCapacity(request.axes.reduce(1) { $0 * $1.values.count })
    for axis in request.axes {
      combinations = combinations.flatMap { combination in axis.values.map { combination.merging([axis.name: $0]) { $1 } } }
    }
    if let condition {
      let holds = condition.holds(for: combinations) { combination, name in combination[name] ?? known[name] }
      combinations = zip(combinations, holds).filter(\.1).map(\.0)
    }
    guard !combinations.isEmpty else {
      throw OperationError.invalidArgument("no combination satisfies the condition '\(request.condition ?? "")'", field: "where")
    }
    return combinations
  }

  /// The axes' names, values and size, and the parsed `--where`.
  static func checkAxes(_ request: GridRequest, known: [String: Double]) throws -> NamedCondition? {
    var seen = Set<String>()
    var size = 1
    for axis in request.axes {
      guard seen.insert(axis.name).inserted else {
        throw OperationError.invalidArgument("the param '\(axis.name)' is given two ranges of values", field: "axes", hint: "give each param once")
      }
      guard !axis.values.isEmpty, axis.values.allSatisfy(\.isFinite) else {
        throw OperationError.invalidArgument("the values of '\(axis.name)' must be finite numbers, at least one", field: "axes")
      }
      // The same value twice would run the same combinations twice and rank them twice.
      var distinct = Set<Double>()
      if let repeated = axis.values.first(where: { !distinct.insert($0).inserted }) {
        throw OperationError.invalidArgument(
          "the value \(DisplayFormat.param(repeated)) of '\(axis.name)' comes twice (listed twice, or a range whose steps a double cannot tell apart at that size)",
          field: "axes", hint: "give each value once")
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
    for axis in request.axes where known[axis.name] == nil {
      throw OperationError.invalidArgument(
        "the strategy has no param '\(axis.name)'"
          + (Similarity.closest(to: axis.name, among: Array(known.keys)).map { " — did you mean '\($0)'?" } ?? ""),
        field: "axes", hint: "its params are \(known.keys.sorted().joined(separator: ", "))")
    }
    return try request.condition.map { try NamedCondition($0, origin: "where", names: Array(known.keys), kind: "param") }
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
    let read = Metrics.reader(metric) ?? { _ in .nan }
    return ranking(scores: metrics.map(read), by: metric)
  }

  /// Indices best first by the raw values of `metric` (NaN: undefined); a merge of shards
  /// ranks with this too, so its order is the local grid's.
  static func ranking(scores raw: [Double], by metric: String) -> [Int] {
    let descending = !["max_drawdown_duration", "volatility", "losing", "max_consecutive_losses", "commissions"].contains(metric)
    // Infinity ranks as IEEE orders it (a profit factor with no losing trade first); an
    // undefined metric (a combination that never traded) last.
    let score = raw.map { descending ? $0 : -$0 }
    return score.indices.sorted { a, b in
      let (x, y) = (score[a], score[b])
      if x.isNaN != y.isNaN { return y.isNaN }
      return x != y && !x.isNaN ? x > y : a < b
    }
  }

  /// Rolling walk-forward, as a job: in each window, pick the best combination on `train` bars,
  /// then measure it on the `test` bars that follow; windows advance by the test length.
  public func walkForward(_ request: GridRequest, train: PeriodLength, test: PeriodLength) throws -> WalkForwardReport {
    let loaded = try checkGrid(request)
    struct Request: Encodable {
      var grid: GridRequest
      var train: String
      var test: String
    }
    return try JobRunner.run(
      .walkForward, request: Request(grid: request, train: train.description, test: test.description), context: context, link: { _ in [:] }
    ) { context in
      try BacktestOperations(context).walkForwardNow(request, loaded: loaded, train: train, test: test)
    }
  }

  func walkForwardNow(_ request: GridRequest, loaded: LoadedSpec, train: PeriodLength, test: PeriodLength) throws -> WalkForwardReport {
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
    var compounded = 1.0
    let folds = Self.walkForwardFolds(data, train: train, test: test)
    for (trainRange, testRange) in folds {
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
          train: Self.span(timestamps, trainRange), test: Self.span(timestamps, testRange), parameters: known.merging(combinations[best]) { $1 },
          inSample: inSample[best], outOfSample: outOfSample, inSampleRank: Metrics.reader(request.rank).map { $0(inSample[best]) } ?? .nan))
    }
    guard !windows.isEmpty else { throw Self.shorterThanOneWindow(timestamps) }
    return WalkForwardReport(
      strategy: loaded.spec.name, dataset: data.datasetName, rank: request.rank, combinations: combinations.count,
      warmupBars: data.warmupEnabled ? warmup : 0, windows: windows, outOfSampleReturn: compounded - 1)
  }
}

extension BacktestOperations {
  /// A walk-forward's folds: each window's train and test bars (indices into the timeline). The
  /// first train window starts at the first traded bar; windows advance by the test length
  /// while a whole test window fits in the data and both windows hold more than two bars.
  static func walkForwardFolds(_ data: MarketData, train: PeriodLength, test: PeriodLength) -> [(train: Range<Int>, test: Range<Int>)] {
    let timestamps = data.timestamps
    guard data.tradedCount >= 2 else { return [] }
    var folds: [(train: Range<Int>, test: Range<Int>)] = []
    var start = timestamps[data.tradingStart]
    while true {
      let trainEnd = train.after(start)
      let testEnd = test.after(trainEnd)
      guard testEnd <= timestamps[timestamps.count - 1] + 1 else { break }
      let trainRange = timestamps.firstIndex { $0 >= start }!..<(timestamps.firstIndex { $0 >= trainEnd } ?? timestamps.count)
      let testRange = trainRange.upperBound..<(timestamps.firstIndex { $0 >= testEnd } ?? timestamps.count)
      guard trainRange.count > 2, testRange.count > 2 else { break }
      folds.append((trainRange, testRange))
      start = test.after(start)
    }
    return folds
  }

  static func span(_ timestamps: [Int64], _ range: Range<Int>) -> WalkForwardReport.Span {
    WalkForwardReport.Span(
      first: UTCCalendar.format(timestamps[range.lowerBound], alwaysTime: true),
      last: UTCCalendar.format(timestamps[range.upperBound - 1], alwaysTime: true))
  }

  static func shorterThanOneWindow(_ timestamps: [Int64]) -> OperationError {
    OperationError(
      .usage, code: "data_shorter_than_window",
      "the data (\(UTCCalendar.format(timestamps[0])) … \(UTCCalendar.format(timestamps[timestamps.count - 1]))) is shorter than one train + test window",
      hint: "choose shorter train and test windows")
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
  /// A window's first and last bar (ISO-8601).
  public struct Span: Codable, Sendable, Equatable {
    public var first: String
    public var last: String
    /// `2004-08-19 … 2006-08-18` for people.
    public var text: String {
      func short(_ iso: String) -> String { iso.hasSuffix("T00:00:00Z") ? String(iso.dropLast(10)) : iso }
      return "\(short(first)) … \(short(last))"
    }
  }

  public struct Window: Encodable, Sendable {
    public var train: Span
    public var test: Span
    public var parameters: [String: Double]
    /// The chosen combination's metrics on its training window, and on the test window after it.
    public var inSample: Metrics
    public var outOfSample: Metrics
    /// The ranking metric's value in sample.
    public var inSampleRank: Double
    enum CodingKeys: String, CodingKey { case train, test, parameters = "params", inSample = "in_sample", outOfSample = "out_of_sample" }

    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(train, forKey: .train)
      try container.encode(test, forKey: .test)
      try container.encode(parameters, forKey: .parameters)
      try container.encode(inSample, forKey: .inSample)
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
  /// A merged sharded walk-forward's grid id and number of shards (absent from a local run's).
  public var id: String?
  public var shards: Int?
  /// The params a merged walk-forward varies, by name (for its table; not in JSON).
  public var axes: [String]?
  enum CodingKeys: String, CodingKey {
    case strategy, dataset, rank, combinations, warmupBars = "warmup_bars", windows, outOfSampleReturn = "out_of_sample_return", id, shards
  }
}

/// What a grid ran with besides its spec and axes, stored so a row can be run again.
struct GridSettings: Codable, Equatable {
  var dataset: String?
  @ISOTimestamp var from: Int64?
  @ISOTimestamp var to: Int64?
  var capital: Double?
  var allowGaps: Bool
  var noWarmup: Bool
  enum CodingKeys: String, CodingKey { case dataset, from, to, capital, allowGaps = "allow_gaps", noWarmup = "no_warmup" }
}

/// A stored grid as `backtest grid list` shows it.
public struct GridSummary: Encodable, Sendable, Equatable {
  public var id: String
  public var jobID: String?
  public var strategy: String
  public var dataset: String
  public var axes: [GridAxis]
  public var rank: String
  public var combinations: Int
  public var createdAt: String
  /// A merged walk-forward's `TRAIN/TEST` (absent for a grid).
  public var walkForward: String?

  enum CodingKeys: String, CodingKey {
    case id, jobID = "job_id", strategy, dataset, axes, rank, combinations, createdAt = "created_at", walkForward = "walk_forward"
  }

  init(_ record: GridRecord) {
    id = record.id
    jobID = record.jobID
    strategy = record.strategyName
    dataset = record.dataset
    let decoded = (try? JSONDecoder().decode([String: [Double]].self, from: Data(record.axes.utf8))) ?? [:]
    axes = decoded.keys.sorted().map { GridAxis(name: $0, values: decoded[$0]!) }
    rank = record.rank
    combinations = record.combinations
    createdAt = UTCCalendar.format(record.createdAt, alwaysTime: true)
  }
}

/// Which rows of a stored grid to show, and in which order.
public struct GridQuery: Sendable, Equatable {
  /// A metric to order by (default: the grid's own ranking).
  public var sort: String?
  /// A condition on params and metrics, e.g. `trades >= 10 and fast < 20`.
  public var condition: String?
  public var top: Int
  /// Worst first instead of best first.
  public var worst: Bool
  public init(sort: String? = nil, condition: String? = nil, top: Int = 20, worst: Bool = false) {
    self.sort = sort
    self.condition = condition
    self.top = top
    self.worst = worst
  }
}

/// Rows of a stored grid: each with its place in the grid's ranking, its params and metrics.
public struct GridRows: Encodable, Sendable {
  public struct Row: Encodable, Sendable {
    /// 1-based, in the grid's own ranking: what `backtest grid open ID ROW` takes.
    public var row: Int
    public var params: [String: Double]
    /// Infinite ones restored (`Metrics.stored`); JSON writes them null, as the store does.
    public var metrics: [String: Double?]

    enum CodingKeys: String, CodingKey { case row, params, metrics }
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(row, forKey: .row)
      try container.encode(params, forKey: .params)
      try container.encode(metrics.mapValues { $0.flatMap { $0.isFinite ? $0 : nil } }, forKey: .metrics)
    }
  }
  public var grid: GridSummary
  /// Rows that met the condition (before `top` was applied).
  public var matching: Int
  public var sort: String
  public var rows: [Row]
}

extension BacktestOperations {
  /// A stored grid's rows, filtered and ordered; the row numbers stay those of its ranking.
  public func gridRows(id: String, query: GridQuery) throws -> GridRows {
    let record = try database.grid(id: id)
    let sort = query.sort ?? record.rank
    try Self.checkRank(sort)
    let loaded = try StrategyLoader.parse(record.specText, origin: "grid \(record.id)")
    let known = loaded.spec.params ?? [:]
    var rows: [GridRows.Row] = []
    for (index, result) in try database.gridResults(gridID: record.id).enumerated() {
      let overrides = (try? JSONDecoder().decode([String: Double].self, from: Data(result.params.utf8))) ?? [:]
      let metrics = Metrics.stored(result.metrics)
      rows.append(GridRows.Row(row: index + 1, params: known.merging(overrides) { $1 }, metrics: metrics))
    }
    if let text = query.condition {
      // A param named like a metric (a spec may name one `trades`) cannot be told from it here.
      let both = Dictionary(uniqueKeysWithValues: known.keys.filter(Metrics.names.contains).map { name in
        (name, "'\(name)' is both a param of this grid and a metric, so a condition cannot tell which it means; rename the param in the spec to filter on either")
      })
      let condition = try NamedCondition(text, origin: "where", names: Array(known.keys) + Metrics.names, ambiguous: both)
      // An undefined metric is NaN.
      let holds = condition.holds(for: rows) { row, name in row.metrics[name].map { $0 ?? .nan } ?? row.params[name] }
      rows = zip(rows, holds).filter(\.1).map(\.0)
    }
    let matching = rows.count
    let lowerIsBetter = Self.lowerIsBetter.contains(sort) != query.worst
    rows.sort { a, b in
      let (x, y) = ((a.metrics[sort] ?? nil) ?? .nan, (b.metrics[sort] ?? nil) ?? .nan)
      if x.isNaN != y.isNaN { return y.isNaN }  // undefined last, either way; infinity as IEEE orders it
      if x != y { return lowerIsBetter ? x < y : x > y }
      return a.row < b.row
    }
    return GridRows(grid: GridSummary(record), matching: matching, sort: sort, rows: Array(rows.prefix(max(1, query.top))))
  }

  /// Runs row `row` of a stored grid as a full backtest — the grid's spec text, that row's
  /// params, the grid's data and settings — and records it; its metrics are the row's.
  public func openGridRow(id: String, row: Int) throws -> (report: BacktestReport, matches: Bool) {
    // `grid list` lists merged walk-forwards too; they keep each fold's choice, not rows to open.
    if let walkForward = try mergedWalkForward(id: id) {
      throw OperationError.invalidArgument(
        "\(walkForward.id ?? id) is a merged walk-forward: it keeps each fold's chosen combination, not a grid's rows to open",
        field: "id", hint: "`qtool backtest grid show \(walkForward.id ?? id)` prints its folds")
    }
    let record = try database.grid(id: id)
    let results = try database.gridResults(gridID: record.id)
    guard row >= 1, row <= results.count else { throw GridError.noRow(grid: record.id, row: row, rows: results.count) }
    let overrides = try JSONDecoder().decode([String: Double].self, from: Data(results[row - 1].params.utf8))
    let settings = record.settings.flatMap { try? JSONDecoder().decode(GridSettings.self, from: Data($0.utf8)) }
    let request = BacktestRequest(
      strategy: .inline(spec: record.specText, origin: "grid \(record.id)"), dataset: settings?.dataset, from: settings?.from, to: settings?.to,
      capital: settings?.capital, params: overrides, allowGaps: settings?.allowGaps ?? false, noWarmup: settings?.noWarmup ?? false)
    let report = try run(request)
    let stored = Metrics.stored(results[row - 1].metrics)
    let now = report.metrics.values
    let matches = stored.allSatisfy { name, value in
      let current = now[name] ?? .nan
      guard let value else { return !current.isFinite }
      return value == current || (value.isNaN && current.isNaN)
    }
    return (report, matches)
  }
}
