import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool backtest run`.
public struct BacktestRequest: Sendable {
  /// A spec file or a registered strategy's name.
  public var strategy: String
  public var dataset: String?
  public var from: Int64?
  public var to: Int64?
  public var capital: Double?
  public var parameters: [String: Double]
  public var allowGaps: Bool
  public var assertions: [String]

  public init(
    strategy: String, dataset: String? = nil, from: Int64? = nil, to: Int64? = nil, capital: Double? = nil, parameters: [String: Double] = [:],
    allowGaps: Bool = false, assertions: [String] = []
  ) {
    self.strategy = strategy
    self.dataset = dataset
    self.from = from
    self.to = to
    self.capital = capital
    self.parameters = parameters
    self.allowGaps = allowGaps
    self.assertions = assertions
  }
}

extension BacktestRequest {
  /// `fast=20` pairs, as `--param` takes them.
  public static func parseParameters(_ pairs: [String]) throws -> [String: Double] {
    var parameters: [String: Double] = [:]
    for pair in pairs {
      let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty, let value = Double(parts[1]) else {
        throw OperationError.invalidArgument("--param: expected name=number, got '\(pair)'")
      }
      parameters[parts[0]] = value
    }
    return parameters
  }
}

/// What a run returns to the CLI and the server.
public struct BacktestReport: Encodable, Sendable {
  public var id: String
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
  public var timestamps: [Int64]
  public var equity: [Double]
  public var benchmark: [Double]
  public var failedAssertions: [MetricAssertion.Failure]

  /// The ten deepest periods under water.
  public var drawdownPeriods: [ResultSeries.DrawdownPeriod]
  public var monthlyReturns: [ResultSeries.MonthlyReturn]

  enum CodingKeys: String, CodingKey {
    case id, strategy, dataset, symbol, timeframe, first, last, bars, parameters, fingerprint, metrics, trades, failedAssertions = "failed_assertions"
    case drawdownPeriods = "drawdown_periods", monthlyReturns = "monthly_returns"
  }
}

public enum BacktestError: QtoolError, Equatable {
  case portfolio(count: Int)
  case noBars(dataset: String)
  case gaps(dataset: String, count: Int, first: String)

  public var exitStatus: ExitStatus {
    switch self {
    case .portfolio: return .usage
    case .noBars: return .noInput
    case .gaps: return .dataError
    }
  }

  public var description: String {
    switch self {
    case .portfolio(let count):
      return
        "the spec lists \(count) symbols; this version of qtool runs one symbol per backtest (portfolio runs are not built yet): keep one in universe.symbols or pass --dataset"
    case .noBars(let dataset): return "\(dataset) has no bars in that range; check --from/--to or `qtool data info \(dataset)`"
    case .gaps(let dataset, let count, let first):
      return
        "\(dataset) has \(count) gaps in that range (the first: \(first)); fill them (`qtool data download` or `data preprocess --op fill_missing`) or pass --allow-gaps"
    }
  }
}

/// The backtest operations, shared by the CLI and the server.
public struct BacktestOperations: Sendable {
  public static let engineVersion = "qtool-engine/1"
  public let database: QtoolDatabase
  public init(database: QtoolDatabase) { self.database = database }

  /// A run computed but not yet recorded.
  struct Execution {
    var loaded: LoadedSpec
    var strategy: CompiledStrategy
    var datasetName: String
    var symbol: String
    var timeframe: String
    var bars: BarSeries
    var outcome: BacktestOutcome
    var metrics: Metrics
    var benchmark: [Double]
    var sliceHash: String
    var fingerprint: String
    /// The symbol of each trade (portfolios trade several).
    var tradeSymbols: [String]
  }

  func execute(
    _ loaded: LoadedSpec, parameters: [String: Double], capital: Double?, dataset requested: String?, from: Int64?, to: Int64?, allowGaps: Bool
  ) throws -> Execution {
    let spec = loaded.spec
    let strategy = try CompiledStrategy(spec, overrides: parameters, capital: capital, origin: loaded.origin)
    if let portfolio = spec.portfolio, let rank = strategy.rank {
      return try executePortfolio(loaded, strategy: strategy, portfolio: portfolio, rank: rank, from: from, to: to, allowGaps: allowGaps)
    }
    guard spec.universe.symbols.count <= 1 || requested != nil else { throw BacktestError.portfolio(count: spec.universe.symbols.count) }
    let datasetName = requested ?? spec.universe.dataset ?? "\(spec.universe.symbols.first ?? "")-\(spec.universe.timeframe)"
    let dataset = try database.dataset(named: datasetName)
    let bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
    guard bars.count >= 2 else { throw BacktestError.noBars(dataset: datasetName) }
    if !allowGaps {
      let report = DatasetVerifier.verify(bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar)
      let gaps = report.problems.filter { $0.kind == .gap }
      if let first = gaps.first { throw BacktestError.gaps(dataset: datasetName, count: gaps.count, first: first.message) }
    }
    let outcome = Backtester.run(strategy, bars: bars)
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    let closes = try spec.benchmark.map { try self.benchmarkCloses($0, timeframe: spec.universe.timeframe, on: bars.timestamps) } ?? bars.close
    // The benchmark (buy-and-hold of the same bars unless the spec names one), scaled to the capital.
    let benchmark = closes.map { $0 / closes[0] * strategy.capital }
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: barsPerYear, benchmark: benchmark)
    let sliceHash = try sliceHash(bars, of: dataset)
    let parametersText = strategy.parameters.keys.sorted().map { "\($0)=\(strategy.parameters[$0]!)" }.joined(separator: ",")
    let fingerprint = ContentHash.sha256Hex(
      Data([loaded.hash, sliceHash, parametersText, String(strategy.capital), Self.engineVersion].joined(separator: "\n").utf8))
    return Execution(
      loaded: loaded, strategy: strategy, datasetName: datasetName, symbol: dataset.symbol, timeframe: dataset.timeframe, bars: bars,
      outcome: outcome, metrics: metrics, benchmark: benchmark, sliceHash: sliceHash, fingerprint: fingerprint,
      tradeSymbols: outcome.trades.map { _ in dataset.symbol })
  }

  /// The content hash of `bars`, read from `dataset`. A slice that is the whole of an
  /// imported or downloaded dataset has the hash the catalog keeps (cleared whenever its bars
  /// change), and computes and keeps it when missing: hashing 1M bars took a tenth of a run.
  /// A derived dataset's catalog hash covers its feature columns too, so it is not used.
  private func sliceHash(_ bars: BarSeries, of dataset: DatasetSummary) throws -> String {
    let whole = bars.count == dataset.rowCount && dataset.parentName == nil && dataset.origin != "derived"
    if whole, let cached = dataset.contentHash { return cached }
    let hash = ContentHash.of(bars)
    if whole { try database.setContentHash(datasetID: dataset.id, hash) }
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
      throw OperationError.notFound("benchmark \(dataset.name) has no bars at or before \(UTCCalendar.format(timestamps[0]))")
    }
    return timestamps.map { t in
      if let close = lookup[t] { last = close }
      return last
    }
  }

  /// A portfolio spec: every symbol's dataset (SYMBOL-TIMEFRAME) on their common bars.
  func executePortfolio(
    _ loaded: LoadedSpec, strategy: CompiledStrategy, portfolio: StrategySpec.Portfolio, rank: QtoolCore.Expression, from: Int64?, to: Int64?,
    allowGaps: Bool
  ) throws -> Execution {
    let spec = loaded.spec
    var inputs: [PortfolioBacktester.Input] = []
    var hashes: [String] = []
    var calendar = TradingCalendar.allDays
    var timeframe = Timeframe(count: 1, unit: .day)
    for symbol in spec.universe.symbols {
      let name = "\(symbol)-\(spec.universe.timeframe)"
      let dataset = try database.dataset(named: name)
      let bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
      guard bars.count >= 2 else { throw BacktestError.noBars(dataset: name) }
      if !allowGaps {
        let gaps = DatasetVerifier.verify(bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar).problems.filter {
          $0.kind == .gap
        }
        if let first = gaps.first { throw BacktestError.gaps(dataset: name, count: gaps.count, first: first.message) }
      }
      calendar = dataset.parsedCalendar
      timeframe = dataset.parsedTimeframe
      inputs.append(PortfolioBacktester.Input(symbol: symbol, bars: bars))
      hashes.append(ContentHash.of(bars))
    }
    let result = PortfolioBacktester.run(strategy, rank: rank, top: portfolio.top, rebalance: portfolio.rebalance ?? "monthly", inputs: inputs)
    guard result.timeline.count >= 2 else {
      throw OperationError.notFound(
        "\(spec.universe.symbols.map { "\($0)-\(spec.universe.timeframe)" }.joined(separator: ", ")) share fewer than 2 bars; a portfolio runs on the bars all its symbols have"
      )
    }
    let bars = result.timeline
    let benchmark = bars.close.map { $0 * strategy.capital }
    let metrics = Metrics.compute(
      result.outcome, bars: bars, barsPerYear: timeframe.barsPerYear(tradingDays: calendar.tradingDaysPerYear), benchmark: benchmark)
    let sliceHash = ContentHash.sha256Hex(Data(hashes.joined(separator: "\n").utf8))
    let parametersText = strategy.parameters.keys.sorted().map { "\($0)=\(strategy.parameters[$0]!)" }.joined(separator: ",")
    let fingerprint = ContentHash.sha256Hex(
      Data([loaded.hash, sliceHash, parametersText, String(strategy.capital), Self.engineVersion].joined(separator: "\n").utf8))
    return Execution(
      loaded: loaded, strategy: strategy, datasetName: spec.universe.symbols.map { "\($0)-\(spec.universe.timeframe)" }.joined(separator: "+"),
      symbol: "portfolio", timeframe: spec.universe.timeframe, bars: bars, outcome: result.outcome, metrics: metrics, benchmark: benchmark,
      sliceHash: sliceHash, fingerprint: fingerprint, tradeSymbols: result.tradeSymbols)
  }

  public func run(_ request: BacktestRequest) throws -> BacktestReport {
    let loaded = try StrategyLoader.load(request.strategy, database: database)
    let run = try execute(
      loaded, parameters: request.parameters, capital: request.capital, dataset: request.dataset, from: request.from, to: request.to,
      allowGaps: request.allowGaps)
    let (strategy, bars, metrics) = (run.strategy, run.bars, run.metrics)
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let id = "r" + ContentHash.sha256Hex(Data((run.fingerprint + "\(now)" + UUID().uuidString).utf8)).prefix(9)
    var failures: [MetricAssertion.Failure] = []
    let metricValues = metrics.values
    for assertion in request.assertions { failures += try MetricAssertion.failures(assertion, metrics: metricValues) }

    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let datasetsJSON = String(
      decoding: try encoder.encode([
        [
          "name": run.datasetName, "content_hash": run.sliceHash, "first": UTCCalendar.format(bars.timestamps[0]),
          "last": UTCCalendar.format(bars.timestamps[bars.count - 1]),
        ]
      ]), as: UTF8.self)
    let parameters = RunParameters(
      parameters: strategy.parameters, capital: strategy.capital, from: request.from, to: request.to, dataset: run.datasetName,
      allowGaps: request.allowGaps)
    let record = RunRecord(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, datasets: datasetsJSON,
      params: String(decoding: try encoder.encode(parameters), as: UTF8.self), engineVersion: Self.engineVersion, fingerprint: run.fingerprint,
      status: "completed", metrics: String(decoding: try encoder.encode(metrics), as: UTF8.self), createdAt: now)
    try database.recordRun(
      record, trades: run.outcome.trades, symbols: run.tradeSymbols, timestamps: bars.timestamps, equity: run.outcome.equity, benchmark: run.benchmark
    )
    return BacktestReport(
      id: id, strategy: loaded.spec.name, dataset: run.datasetName, symbol: run.symbol, timeframe: run.timeframe,
      first: UTCCalendar.format(bars.timestamps[0]), last: UTCCalendar.format(bars.timestamps[bars.count - 1]), bars: bars.count,
      parameters: strategy.parameters, fingerprint: run.fingerprint, metrics: metrics, trades: run.outcome.trades, timestamps: bars.timestamps,
      equity: run.outcome.equity, benchmark: run.benchmark, failedAssertions: failures,
      drawdownPeriods: Array(ResultSeries.drawdownPeriods(bars.timestamps, run.outcome.equity).prefix(10)),
      monthlyReturns: ResultSeries.monthlyReturns(bars.timestamps, run.outcome.equity))
  }

  /// Reruns a recorded run from its stored spec text and settings and checks that every trade
  /// and every equity point comes out identical.
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
        stored != run.sliceHash
          ? "the data changed: \(settings.dataset) now hashes to \(run.sliceHash.prefix(23)), the run saw \(stored?.prefix(23) ?? "?")"
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

  public func list() throws -> [RunRecord] { try database.runs() }

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
  /// `backtest check`: reruns on data cut at several points and reports any decision that changes.
  public func check(_ request: BacktestRequest) throws -> LookaheadCheck.Report {
    let loaded = try StrategyLoader.load(request.strategy, database: database)
    let run = try execute(
      loaded, parameters: request.parameters, capital: request.capital, dataset: request.dataset, from: request.from, to: request.to,
      allowGaps: true)
    return LookaheadCheck.run(run.strategy, bars: run.bars)
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
  public func export(id: String, to path: String) throws -> RunRecord {
    let (run, files) = try bundleFiles(id: id)
    try ArchiveWriter.writeTarGz(files.map { ("\(run.id)/\($0.name)", $0.data) }, to: path)
    return run
  }

  /// `backtest run --export DIR`: the bundle's files in a directory.
  public func export(id: String, directory: String) throws {
    let (_, files) = try bundleFiles(id: id)
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
      for file in files { try file.data.write(to: URL(fileURLWithPath: directory).appendingPathComponent(file.name), options: .atomic) }
    } catch {
      throw OperationError.cannotWrite("cannot write to \(directory): \(error.localizedDescription)")
    }
  }
}
