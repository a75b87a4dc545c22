import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool backtest run` (and `backtest check`): which strategy, on which data, with what settings.
public struct BacktestRequest: Codable, Sendable, Equatable {
  public var strategy: StrategyReference
  /// Run on this dataset instead of SYMBOL-TIMEFRAME (single-symbol specs).
  public var dataset: String?
  @ISOTimestamp public var from: Int64?
  /// Exclusive.
  @ISOTimestamp public var to: Int64?
  public var capital: Double?
  /// Overrides of the spec's params.
  public var params: [String: Double]
  public var allowGaps: Bool
  /// Conditions on the metrics, e.g. `sharpe > 1`; the report lists those that fail.
  public var assertions: [String]

  public init(
    strategy: StrategyReference, dataset: String? = nil, from: Int64? = nil, to: Int64? = nil, capital: Double? = nil,
    params: [String: Double] = [:], allowGaps: Bool = false, assertions: [String] = []
  ) {
    self.strategy = strategy
    self.dataset = dataset
    self.from = from
    self.to = to
    self.capital = capital
    self.params = params
    self.allowGaps = allowGaps
    self.assertions = assertions
  }

  enum CodingKeys: String, CodingKey { case strategy, dataset, from, to, capital, params, allowGaps = "allow_gaps", assertions }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    strategy = try container.decode(StrategyReference.self, forKey: .strategy)
    dataset = try container.decodeIfPresent(String.self, forKey: .dataset)
    _from = try container.decode(ISOTimestamp.self, forKey: .from)
    _to = try container.decode(ISOTimestamp.self, forKey: .to)
    capital = try container.decodeIfPresent(Double.self, forKey: .capital)
    params = try container.decodeIfPresent([String: Double].self, forKey: .params) ?? [:]
    allowGaps = try container.decodeIfPresent(Bool.self, forKey: .allowGaps) ?? false
    assertions = try container.decodeIfPresent([String].self, forKey: .assertions) ?? []
  }
}

/// What a run returns to the CLI and the server.
public struct BacktestReport: Encodable, Sendable {
  public var id: String
  public var jobID: String?
  public var strategy: String
  public var dataset: String
  public var symbol: String
  public var timeframe: String
  public var first: String
  public var last: String
  public var bars: Int
  public var parameters: [String: Double]
  public var fingerprint: String
  public var metrics: Metrics
  public var trades: [Trade]
  /// The symbol of each trade, in order (one symbol unless a portfolio).
  public var tradeSymbols: [String]
  public var timestamps: [Int64]
  public var equity: [Double]
  public var benchmark: [Double]
  public var failedAssertions: [MetricAssertion.Failure]
  /// When the drawdown halt (or ruin) stopped trading.
  public var haltedAt: String?
  /// The order decided at the last bar, not yet filled.
  public var pendingOrder: PendingOrder?

  /// The ten deepest periods under water.
  public var drawdownPeriods: [ResultSeries.DrawdownPeriod]
  public var monthlyReturns: [ResultSeries.MonthlyReturn]

  enum CodingKeys: String, CodingKey {
    case id, jobID = "job_id", strategy, dataset, symbol, timeframe, first, last, bars, parameters, fingerprint, metrics, trades
    case failedAssertions = "failed_assertions", haltedAt = "halted_at", pendingOrder = "pending_order"
    case drawdownPeriods = "drawdown_periods", monthlyReturns = "monthly_returns"
  }
}

public enum BacktestError: QtoolError, Equatable {
  case severalSymbols(count: Int)
  case noBars(dataset: String)
  case gaps(dataset: String, count: Int, first: String)

  public var category: ErrorCategory {
    switch self {
    case .severalSymbols: return .invalidInput
    case .noBars: return .notFound
    case .gaps: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .severalSymbols: return "several_symbols_without_portfolio"
    case .noBars: return "no_bars_in_range"
    case .gaps: return "dataset_has_gaps"
    }
  }

  public var message: String {
    switch self {
    case .severalSymbols(let count):
      return "the spec lists \(count) symbols but has no portfolio section, so it does not say how to trade them together"
    case .noBars(let dataset): return "\(dataset) has no bars in that range"
    case .gaps(let dataset, let count, let first): return "\(dataset) has \(count) gaps in that range (the first: \(first))"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .severalSymbols(let count): return ["symbols": JSONValue(count)]
    case .noBars(let dataset): return ["dataset": .string(dataset)]
    case .gaps(let dataset, let count, let first): return ["dataset": .string(dataset), "gaps": JSONValue(count), "first": .string(first)]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .severalSymbols:
      return "add portfolio: {{rank: roc(close, 20), top: 1}} to trade them as a portfolio, or run one of them with {dataset}"
    case .noBars(let dataset): return "check {from} and {to}, or `qtool data info \(dataset)`"
    case .gaps: return "fill them (download again, or preprocess with fill_missing), or run anyway with {allow_gaps}"
    }
  }
}

/// The backtest operations, shared by the CLI and the server.
public struct BacktestOperations: Sendable {
  public static let engineVersion = "qtool-engine/1"
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  /// The bars a spec runs on: one dataset's, or each symbol's for a portfolio.
  struct MarketData {
    /// `GOOG-1d`, or `AAPL-1d+MSFT-1d` for a portfolio.
    var datasetName: String
    var symbol: String
    var timeframe: String
    var barsPerYear: Double
    var sliceHash: String
    var single: BarSeries?
    var portfolio: [PortfolioBacktester.Input]
    /// The dataset's catalog entry (single-symbol runs).
    var dataset: DatasetSummary?
    /// The spec's benchmark closes on the single run's bars, when it names one.
    var benchmarkCloses: [Double]?
  }

  /// What one simulation produced, on the run's timeline.
  struct Simulated {
    var outcome: BacktestOutcome
    /// The timeline: the dataset's bars, or a portfolio's equal-weight index.
    var bars: BarSeries
    var benchmark: [Double]
    var tradeSymbols: [String]
  }

  /// A run computed but not yet recorded.
  struct Execution {
    var loaded: LoadedSpec
    var strategy: CompiledStrategy
    var data: MarketData
    var simulated: Simulated
    var metrics: Metrics
    var fingerprint: String
    var datasetName: String { data.datasetName }
    var bars: BarSeries { simulated.bars }
    var outcome: BacktestOutcome { simulated.outcome }
  }

  /// Loads the bars `spec` runs on in `[from, to)`, refusing gaps unless `allowGaps`.
  func loadData(_ spec: StrategySpec, dataset requested: String?, from: Int64?, to: Int64?, allowGaps: Bool) throws -> MarketData {
    if spec.portfolio != nil { return try loadPortfolio(spec, from: from, to: to, allowGaps: allowGaps) }
    guard spec.universe.symbols.count <= 1 || requested != nil else { throw BacktestError.severalSymbols(count: spec.universe.symbols.count) }
    let datasetName = requested ?? spec.universe.dataset ?? "\(spec.universe.symbols.first ?? "")-\(spec.universe.timeframe)"
    let dataset = try database.dataset(named: datasetName)
    let bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
    guard bars.count >= 2 else { throw BacktestError.noBars(dataset: datasetName) }
    if !allowGaps { try Self.refuseGaps(bars, of: dataset) }
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    let closes = try spec.benchmark.map { try self.benchmarkCloses($0, timeframe: spec.universe.timeframe, on: bars.timestamps) }
    return MarketData(
      datasetName: datasetName, symbol: dataset.symbol, timeframe: dataset.timeframe, barsPerYear: barsPerYear,
      sliceHash: try sliceHash(bars, of: dataset), single: bars, portfolio: [], dataset: dataset, benchmarkCloses: closes)
  }

  static func refuseGaps(_ bars: BarSeries, of dataset: DatasetSummary) throws {
    let gaps = DatasetVerifier.verify(bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar).problems.filter { $0.kind == .gap }
    if let first = gaps.first { throw BacktestError.gaps(dataset: dataset.name, count: gaps.count, first: first.message) }
  }

  /// A portfolio spec: every symbol's dataset (SYMBOL-TIMEFRAME).
  func loadPortfolio(_ spec: StrategySpec, from: Int64?, to: Int64?, allowGaps: Bool) throws -> MarketData {
    var inputs: [PortfolioBacktester.Input] = []
    var hashes: [String] = []
    var barsPerYear = 252.0
    for symbol in spec.universe.symbols {
      let name = "\(symbol)-\(spec.universe.timeframe)"
      let dataset = try database.dataset(named: name)
      let bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
      guard bars.count >= 2 else { throw BacktestError.noBars(dataset: name) }
      if !allowGaps { try Self.refuseGaps(bars, of: dataset) }
      barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
      inputs.append(PortfolioBacktester.Input(symbol: symbol, bars: bars))
      hashes.append(ContentHash.of(bars))
    }
    return MarketData(
      datasetName: spec.universe.symbols.map { "\($0)-\(spec.universe.timeframe)" }.joined(separator: "+"), symbol: "portfolio",
      timeframe: spec.universe.timeframe, barsPerYear: barsPerYear, sliceHash: ContentHash.sha256Hex(Data(hashes.joined(separator: "\n").utf8)),
      single: nil, portfolio: inputs, dataset: nil, benchmarkCloses: nil)
  }

  /// Runs `strategy` on `data` under the trading rules; for a single symbol, `evaluator` (shared
  /// by a grid's runs) may be given.
  static func simulate(
    _ strategy: CompiledStrategy, on data: MarketData, evaluator: RuleEvaluator? = nil, cancellation: CancellationToken
  ) throws -> Simulated {
    if let bars = data.single {
      let outcome = try Backtester.run(strategy, bars: bars, evaluator: evaluator, cancellation: cancellation)
      let closes = data.benchmarkCloses ?? bars.close
      // The benchmark (buy-and-hold of the same bars unless the spec names one), scaled to the capital.
      let benchmark = closes.map { $0 / closes[0] * strategy.capital }
      return Simulated(outcome: outcome, bars: bars, benchmark: benchmark, tradeSymbols: outcome.trades.map { _ in data.symbol })
    }
    guard let portfolio = strategy.spec.portfolio, let rank = strategy.rank else {
      throw OperationError.invalidInput("the spec has no portfolio section", code: "not_a_portfolio")
    }
    let result = try PortfolioBacktester.run(
      strategy, rank: rank, top: portfolio.top, rebalance: portfolio.rebalance ?? "monthly", inputs: data.portfolio, cancellation: cancellation)
    guard result.timeline.count >= 2 else {
      throw OperationError.notFound(
        "\(data.datasetName.replacingOccurrences(of: "+", with: ", ")) share fewer than 2 bars; a portfolio runs on the bars all its symbols have",
        code: "no_common_bars", details: ["datasets": .string(data.datasetName)])
    }
    let bars = result.timeline
    return Simulated(
      outcome: result.outcome, bars: bars, benchmark: bars.close.map { $0 * strategy.capital }, tradeSymbols: result.tradeSymbols)
  }

  func execute(
    _ loaded: LoadedSpec, parameters: [String: Double], capital: Double?, dataset requested: String?, from: Int64?, to: Int64?, allowGaps: Bool
  ) throws -> Execution {
    let strategy = try CompiledStrategy(loaded.spec, overrides: parameters, capital: capital, origin: loaded.origin)
    let data = try loadData(loaded.spec, dataset: requested, from: from, to: to, allowGaps: allowGaps)
    let simulated = try Self.simulate(strategy, on: data, cancellation: context.cancellation)
    let metrics = Metrics.compute(simulated.outcome, bars: simulated.bars, barsPerYear: data.barsPerYear, benchmark: simulated.benchmark)
    return Execution(
      loaded: loaded, strategy: strategy, data: data, simulated: simulated, metrics: metrics,
      fingerprint: Self.fingerprint(loaded, data: data, strategy: strategy))
  }

  static func fingerprint(_ loaded: LoadedSpec, data: MarketData, strategy: CompiledStrategy) -> String {
    let parametersText = strategy.parameters.keys.sorted().map { "\($0)=\(strategy.parameters[$0]!)" }.joined(separator: ",")
    return ContentHash.sha256Hex(
      Data([loaded.hash, data.sliceHash, parametersText, String(strategy.capital), Self.engineVersion].joined(separator: "\n").utf8))
  }

  /// The content hash of `bars`, read from `dataset`. A slice that is the whole of an
  /// imported or downloaded dataset has the hash the catalog keeps (cleared whenever its bars
  /// change), and computes and keeps it when missing: hashing 1M bars took a tenth of a run.
  /// A derived dataset's catalog hash covers its feature columns too, so it is not used.
  private func sliceHash(_ bars: BarSeries, of dataset: DatasetSummary) throws -> String {
    let whole = bars.count == dataset.rowCount && dataset.parentName == nil && dataset.origin != "derived"
    if whole, let cached = dataset.contentHash { return cached }
    let hash = ContentHash.of(bars)
    if whole { try? database.setContentHash(datasetID: dataset.id, hash) }  // a cache: a read-only store goes without
    return hash
  }

  /// The closes of the spec's `benchmark` (a dataset name, or a symbol with the spec's
  /// timeframe) on `timestamps`, carried forward over bars it lacks.
  func benchmarkCloses(_ name: String, timeframe: String, on timestamps: [Int64]) throws -> [Double] {
    let dataset = try (try? database.dataset(named: name)) ?? database.dataset(named: "\(name)-\(timeframe)")
    let bars = try database.bars(datasetID: dataset.id, to: timestamps.last! + 1)
    var lookup: [Int64: Double] = [:]
    for (t, close) in zip(bars.timestamps, bars.close) { lookup[t] = close }
    var last = bars.timestamps.firstIndex { $0 >= timestamps[0] }.map { bars.close[max(0, $0 - 1)] } ?? .nan
    if let exact = lookup[timestamps[0]] { last = exact }
    guard last.isFinite else {
      throw OperationError.notFound(
        "benchmark \(dataset.name) has no bars at or before \(UTCCalendar.format(timestamps[0]))", code: "benchmark_has_no_bars",
        details: ["dataset": .string(dataset.name)])
    }
    return timestamps.map { t in
      if let close = lookup[t] { last = close }
      return last
    }
  }

  /// Runs a backtest as a job and records it: the run's row exists (status running) from the
  /// start, and its results, trades and curve are committed together at the end.
  public func run(_ request: BacktestRequest) throws -> BacktestReport {
    try JobRunner.run(.backtest, request: request, context: context, link: { ["run_id": .string($0.id)] }) { context in
      try BacktestOperations(context).runNow(request)
    }
  }

  func runNow(_ request: BacktestRequest) throws -> BacktestReport {
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    let started = context.clock.now()
    let id = "r" + ContentHash.sha256Hex(Data((loaded.hash + "\(started)" + UUID().uuidString).utf8)).prefix(9)
    try database.startRun(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, engineVersion: Self.engineVersion, jobID: context.jobID, at: started)
    do {
      return try complete(id: id, loaded: loaded, request: request, started: started)
    } catch {
      try? database.deleteRun(id: id)
      throw error
    }
  }

  private func complete(id: String, loaded: LoadedSpec, request: BacktestRequest, started: Int64) throws -> BacktestReport {
    context.progress.begin("backtest", total: nil, unit: .bars)
    let run = try execute(
      loaded, parameters: request.params, capital: request.capital, dataset: request.dataset, from: request.from, to: request.to,
      allowGaps: request.allowGaps)
    let (strategy, bars, metrics) = (run.strategy, run.bars, run.metrics)
    context.progress.update(done: bars.count)
    var failures: [MetricAssertion.Failure] = []
    let metricValues = metrics.values
    for assertion in request.assertions { failures += try MetricAssertion.failures(assertion, metrics: metricValues) }

    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let datasetsJSON = String(
      decoding: try encoder.encode([
        [
          "name": run.datasetName, "content_hash": run.data.sliceHash, "first": UTCCalendar.format(bars.timestamps[0]),
          "last": UTCCalendar.format(bars.timestamps[bars.count - 1]),
        ]
      ]), as: UTF8.self)
    let parameters = RunParameters(
      parameters: strategy.parameters, capital: strategy.capital, from: request.from, to: request.to, dataset: run.datasetName,
      allowGaps: request.allowGaps)
    let record = RunRecord(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, datasets: datasetsJSON,
      params: String(decoding: try encoder.encode(parameters), as: UTF8.self), engineVersion: Self.engineVersion, fingerprint: run.fingerprint,
      status: "completed", metrics: String(decoding: try encoder.encode(metrics), as: UTF8.self), createdAt: started)
    try context.hooks.checkpoint("backtest.record", 0, cancellation: context.cancellation)
    try context.cancellation.check()
    try database.completeRun(
      record, trades: run.outcome.trades, symbols: run.simulated.tradeSymbols, timestamps: bars.timestamps, equity: run.outcome.equity,
      benchmark: run.simulated.benchmark, at: context.clock.now())
    context.progress.finish()
    return BacktestReport(
      id: id, jobID: context.jobID, strategy: loaded.spec.name, dataset: run.datasetName, symbol: run.data.symbol, timeframe: run.data.timeframe,
      first: UTCCalendar.format(bars.timestamps[0]), last: UTCCalendar.format(bars.timestamps[bars.count - 1]), bars: bars.count,
      parameters: strategy.parameters, fingerprint: run.fingerprint, metrics: metrics, trades: run.outcome.trades,
      tradeSymbols: run.simulated.tradeSymbols, timestamps: bars.timestamps, equity: run.outcome.equity, benchmark: run.simulated.benchmark,
      failedAssertions: failures, haltedAt: run.outcome.haltedAt.map { UTCCalendar.format($0) }, pendingOrder: run.outcome.pendingOrder,
      drawdownPeriods: Array(ResultSeries.drawdownPeriods(bars.timestamps, run.outcome.equity).prefix(10)),
      monthlyReturns: ResultSeries.monthlyReturns(bars.timestamps, run.outcome.equity))
  }

  /// Reruns a recorded run from its stored spec text and settings and checks that every trade
  /// and every equity point comes out identical. Not recorded, and not a job: it only reads.
  public func replay(id: String) throws -> ReplayReport {
    let record = try database.run(id: id)
    let settings = try JSONDecoder().decode(RunParameters.self, from: Data(record.params.utf8))
    let loaded = try StrategyLoader.parse(record.specText, origin: "run \(record.id)")
    let isPortfolio = loaded.spec.portfolio != nil
    let run = try execute(
      loaded, parameters: settings.parameters, capital: settings.capital, dataset: isPortfolio ? nil : settings.dataset, from: settings.from,
      to: settings.to, allowGaps: settings.allowGaps)
    var differences: [String] = []
    if run.fingerprint != record.fingerprint {
      let stored = (try? JSONDecoder().decode([[String: String]].self, from: Data(record.datasets.utf8)))?.first?["content_hash"]
      differences.append(
        stored != run.data.sliceHash
          ? "the data changed: \(settings.dataset) now hashes to \(run.data.sliceHash.prefix(23)), the run saw \(stored?.prefix(23) ?? "?")"
          : "the fingerprint changed (engine \(record.engineVersion) → \(Self.engineVersion))")
    }
    let storedTrades = try database.trades(runID: record.id)
    if storedTrades.count != run.outcome.trades.count {
      differences.append("trades: \(storedTrades.count) recorded, \(run.outcome.trades.count) now")
    }
    for (index, (old, new)) in zip(storedTrades, run.outcome.trades).enumerated()
    where old.entryTime != new.entryTime || old.exitTime != new.exitTime || old.entryPrice != new.entryPrice || old.exitPrice != new.exitPrice
      || old.size != new.size || old.pnl != new.pnl
    {
      differences.append(
        "trade \(index + 1): recorded \(old.side) \(old.size) \(UTCCalendar.format(old.entryTime))→\(UTCCalendar.format(old.exitTime)) pnl \(old.pnl), now \(new.side) \(new.size) \(UTCCalendar.format(new.entryTime))→\(UTCCalendar.format(new.exitTime)) pnl \(new.pnl)"
      )
      if differences.count > 20 { break }
    }
    let curve = try database.equityCurve(runID: record.id)
    if curve.equity != run.outcome.equity {
      let first = zip(curve.equity, run.outcome.equity).enumerated().first { $0.element.0 != $0.element.1 }
      differences.append(
        first.map { "equity first differs at \(UTCCalendar.format(curve.timestamps[$0.offset])): recorded \($0.element.0), now \($0.element.1)" }
          ?? "equity curve length: \(curve.equity.count) recorded, \(run.outcome.equity.count) now")
    }
    return ReplayReport(id: record.id, identical: differences.isEmpty, trades: run.outcome.trades.count, differences: differences)
  }

  /// Metrics side by side and the correlation of per-bar returns over common timestamps.
  public func compare(ids: [String]) throws -> ComparisonReport {
    var runs: [ComparisonReport.Run] = []
    var curves: [[Int64: Double]] = []
    for id in ids {
      let record = try database.run(id: id)
      runs.append(ComparisonReport.Run(id: record.id, strategy: record.strategyName, metrics: record.metricValues))
      let curve = try database.equityCurve(runID: record.id)
      var returns: [Int64: Double] = [:]
      for i in 1..<max(1, curve.equity.count) where curve.equity[i - 1] != 0 {
        returns[curve.timestamps[i]] = curve.equity[i] / curve.equity[i - 1] - 1
      }
      curves.append(returns)
    }
    var correlation = [[Double]](repeating: [Double](repeating: 1, count: ids.count), count: ids.count)
    for a in 0..<ids.count {
      for b in 0..<ids.count where a < b {
        let common = Set(curves[a].keys).intersection(curves[b].keys).sorted()
        let x = common.map { curves[a][$0]! }
        let y = common.map { curves[b][$0]! }
        let value = Self.pearson(x, y)
        correlation[a][b] = value
        correlation[b][a] = value
      }
    }
    return ComparisonReport(runs: runs, correlation: correlation)
  }

  static func pearson(_ x: [Double], _ y: [Double]) -> Double {
    guard x.count > 1 else { return .nan }
    let mx = x.reduce(0, +) / Double(x.count)
    let my = y.reduce(0, +) / Double(y.count)
    var sxy = 0.0
    var sxx = 0.0
    var syy = 0.0
    for i in x.indices {
      sxy += (x[i] - mx) * (y[i] - my)
      sxx += (x[i] - mx) * (x[i] - mx)
      syy += (y[i] - my) * (y[i] - my)
    }
    return sxx > 0 && syy > 0 ? sxy / (sxx * syy).squareRoot() : .nan
  }

  public func list() throws -> [RunRecord] {
    JobOperations(context).reconcileQuietly()
    return try database.runs()
  }

  public func show(id: String) throws -> RunDetail {
    let run = try database.run(id: id)
    let curve = try database.equityCurve(runID: run.id)
    return RunDetail(
      run: run, trades: try database.trades(runID: run.id), timestamps: curve.timestamps, equity: curve.equity,
      benchmark: curve.benchmark.map { $0 ?? .nan })
  }

  public func delete(id: String) throws -> RunRecord {
    let run = try database.run(id: id)
    try database.deleteRun(id: run.id)
    return run
  }
}

/// The settings a run was made with, stored so it can be replayed.
public struct RunParameters: Codable, Sendable, Equatable {
  public var parameters: [String: Double]
  public var capital: Double
  public var from: Int64?
  public var to: Int64?
  public var dataset: String
  public var allowGaps: Bool
  enum CodingKeys: String, CodingKey { case parameters, capital, from, to, dataset, allowGaps = "allow_gaps" }
}

public struct RunDetail: Encodable, Sendable {
  public var run: RunRecord
  public var trades: [Trade]
  public var timestamps: [Int64]
  public var equity: [Double]
  public var benchmark: [Double]
  enum CodingKeys: String, CodingKey { case run, trades }
}

public struct ReplayReport: Codable, Sendable {
  public var id: String
  public var identical: Bool
  public var trades: Int
  public var differences: [String]
}

public struct ComparisonReport: Encodable, Sendable {
  public struct Run: Codable, Sendable {
    public var id: String
    public var strategy: String
    public var metrics: [String: Double]
  }
  public var runs: [Run]
  /// Pearson correlation of per-bar returns, in the order of `runs`; NaN (null) without overlap.
  public var correlation: [[Double]]

  enum CodingKeys: String, CodingKey { case runs, correlation }
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(runs, forKey: .runs)
    try container.encode(correlation.map { $0.map { $0.isFinite ? Optional($0) : nil } }, forKey: .correlation)
  }
}

extension BacktestOperations {
  /// `backtest check`: reruns on data cut at several points and reports any decision that
  /// changes (for a portfolio, any trade of any symbol).
  public func check(_ request: BacktestRequest) throws -> LookaheadCheck.Report {
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    let strategy = try CompiledStrategy(loaded.spec, overrides: request.params, capital: request.capital, origin: loaded.origin)
    let data = try loadData(loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: true)
    let names = data.dataset.map { [$0.name] } ?? data.portfolio.map { "\($0.symbol)-\(loaded.spec.universe.timeframe)" }
    let lineage = try names.flatMap { try lookAheadInLineage(of: $0) }
    if let bars = data.single {
      var report = LookaheadCheck.run(strategy, bars: bars)
      report.data = lineage
      return report
    }
    let (timestamps, _) = PortfolioBacktester.align(data.portfolio)
    let cancellation = context.cancellation
    let start = (strategy.rank?.lookback ?? 0) + 1
    var report = try LookaheadCheck.run(timestamps: timestamps, firstDecisionBar: start) { cut in
      var cutData = data
      cutData.portfolio = data.portfolio.map { input in
        PortfolioBacktester.Input(symbol: input.symbol, bars: input.bars.between(from: .min, to: cut.map { timestamps[$0] } ?? .max))
      }
      let simulated = try Self.simulate(strategy, on: cutData, cancellation: cancellation)
      return (simulated.outcome.trades, simulated.tradeSymbols)
    }
    report.data = lineage
    return report
  }

  /// The preprocessing steps of `name` and its parents that let bars see later ones.
  func lookAheadInLineage(of name: String) throws -> [String] {
    var findings: [String] = []
    var next: String? = name
    var seen = Set<String>()
    while let current = next, seen.insert(current).inserted {
      let dataset = try database.dataset(named: current)
      if let pipeline = dataset.pipeline,
        let object = try? JSONSerialization.jsonObject(with: Data(pipeline.utf8)) as? [String: Any],
        let steps = object["look_ahead"] as? [String]
      {
        findings += steps.map { "\(current): \($0)" }
      }
      next = dataset.parentName
    }
    return findings
  }

  /// The files of a run's bundle: spec, settings, data fingerprints, metrics, trades, equity.
  public func bundleFiles(id: String) throws -> (run: RunRecord, files: [(name: String, data: Data)]) {
    let detail = try show(id: id)
    let run = detail.run
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    var equity = "timestamp,equity,benchmark\n"
    for i in detail.timestamps.indices {
      equity +=
        "\(UTCCalendar.format(detail.timestamps[i], alwaysTime: true)),\(detail.equity[i]),\(detail.benchmark[i].isFinite ? "\(detail.benchmark[i])" : "")\n"
    }
    var trades = "side,size,entry_time,entry_price,exit_time,exit_price,pnl,return,commission,reason\n"
    for t in detail.trades {
      trades +=
        "\(t.side),\(t.size),\(UTCCalendar.format(t.entryTime, alwaysTime: true)),\(t.entryPrice),\(UTCCalendar.format(t.exitTime, alwaysTime: true)),\(t.exitPrice),\(t.pnl),\(t.returnPct),\(t.commission),\(t.reason.rawValue)\n"
    }
    let manifest: [String: String] = [
      "id": run.id, "strategy": run.strategyName, "engine_version": run.engineVersion, "fingerprint": run.fingerprint, "qtool": VersionInfo.version,
    ]
    return (
      run,
      [
        ("manifest.json", try encoder.encode(manifest)), ("spec.yaml", Data(run.specText.utf8)), ("settings.json", Data(run.params.utf8)),
        ("datasets.json", Data(run.datasets.utf8)), ("metrics.json", Data((run.metrics ?? "{}").utf8)), ("trades.csv", Data(trades.utf8)),
        ("equity.csv", Data(equity.utf8)),
      ]
    )
  }

  /// `backtest export`: the bundle as one .tar.gz, under a folder named after the run.
  public func export(id: String, to path: String, overwrite: Bool = false) throws -> RunRecord {
    if !overwrite, FileManager.default.fileExists(atPath: path) { throw AtomicFileError.exists(path: path) }
    let (run, files) = try bundleFiles(id: id)
    try ArchiveWriter.writeTarGz(files.map { ("\(run.id)/\($0.name)", $0.data) }, to: path)
    return run
  }

  /// `backtest run --export DIR`: the bundle's files in a directory.
  /// Refuses to replace files already there unless `overwrite`; checks them all before writing any.
  public func export(id: String, directory: String, overwrite: Bool = false) throws {
    let (_, files) = try bundleFiles(id: id)
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw OperationError.cannotWrite("cannot create the directory \(directory)", path: directory)
    }
    let paths = files.map { URL(fileURLWithPath: directory).appendingPathComponent($0.name).path }
    if !overwrite, let existing = paths.first(where: { FileManager.default.fileExists(atPath: $0) }) {
      throw AtomicFileError.exists(path: existing)
    }
    for (file, path) in zip(files, paths) { try AtomicFile.write(file.data, to: path, overwrite: true) }
  }
}
