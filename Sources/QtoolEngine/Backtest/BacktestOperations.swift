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

  enum CodingKeys: String, CodingKey {
    case id, strategy, dataset, symbol, timeframe, first, last, bars, parameters, fingerprint, metrics, trades, failedAssertions = "failed_assertions"
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

  public func run(_ request: BacktestRequest) throws -> BacktestReport {
    let loaded = try StrategyLoader.load(request.strategy, database: database)
    let spec = loaded.spec
    guard spec.universe.symbols.count <= 1 || request.dataset != nil else { throw BacktestError.portfolio(count: spec.universe.symbols.count) }
    let strategy = try CompiledStrategy(spec, overrides: request.parameters, capital: request.capital, origin: loaded.origin)
    let datasetName = request.dataset ?? spec.universe.dataset ?? "\(spec.universe.symbols.first ?? "")-\(spec.universe.timeframe)"
    let dataset = try database.dataset(named: datasetName)
    let bars = try database.bars(datasetID: dataset.id, from: request.from ?? .min, to: request.to ?? .max)
    guard bars.count >= 2 else { throw BacktestError.noBars(dataset: datasetName) }
    if !request.allowGaps {
      let report = DatasetVerifier.verify(bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar)
      let gaps = report.problems.filter { $0.kind == .gap }
      if let first = gaps.first { throw BacktestError.gaps(dataset: datasetName, count: gaps.count, first: first.message) }
    }
    let outcome = Backtester.run(strategy, bars: bars)
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    // The benchmark is buy-and-hold of the same bars, scaled to the starting capital.
    let benchmark = bars.close.map { $0 / bars.close[0] * strategy.capital }
    let metrics = Metrics.compute(outcome, bars: bars, barsPerYear: barsPerYear, benchmark: benchmark)
    let sliceHash = ContentHash.of(bars)
    let parametersText = strategy.parameters.keys.sorted().map { "\($0)=\(strategy.parameters[$0]!)" }.joined(separator: ",")
    let fingerprint = ContentHash.sha256Hex(
      Data([loaded.hash, sliceHash, parametersText, String(strategy.capital), Self.engineVersion].joined(separator: "\n").utf8))
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let id = "r" + ContentHash.sha256Hex(Data((fingerprint + "\(now)" + UUID().uuidString).utf8)).prefix(9)
    var failures: [MetricAssertion.Failure] = []
    let metricValues = Dictionary(uniqueKeysWithValues: Metrics.names.compactMap { name in metrics.value(name).map { (name, $0) } })
    for assertion in request.assertions { failures += try MetricAssertion.failures(assertion, metrics: metricValues) }

    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let datasetsJSON = String(
      decoding: try encoder.encode([
        [
          "name": datasetName, "content_hash": sliceHash, "first": UTCCalendar.format(bars.timestamps[0]),
          "last": UTCCalendar.format(bars.timestamps[bars.count - 1]),
        ]
      ]), as: UTF8.self)
    let record = RunRecord(
      id: id, strategyName: spec.name, specText: loaded.text, datasets: datasetsJSON,
      params: String(
        decoding: try encoder.encode(
          RunParameters(
            parameters: strategy.parameters, capital: strategy.capital, from: request.from, to: request.to, dataset: datasetName,
            allowGaps: request.allowGaps)), as: UTF8.self),
      engineVersion: Self.engineVersion, fingerprint: fingerprint, status: "completed",
      metrics: String(decoding: try encoder.encode(metrics), as: UTF8.self), createdAt: now)
    try database.recordRun(
      record, trades: outcome.trades, symbol: dataset.symbol, timestamps: bars.timestamps, equity: outcome.equity, benchmark: benchmark)
    return BacktestReport(
      id: id, strategy: spec.name, dataset: datasetName, symbol: dataset.symbol, timeframe: dataset.timeframe,
      first: UTCCalendar.format(bars.timestamps[0]), last: UTCCalendar.format(bars.timestamps[bars.count - 1]), bars: bars.count,
      parameters: strategy.parameters, fingerprint: fingerprint, metrics: metrics, trades: outcome.trades, timestamps: bars.timestamps,
      equity: outcome.equity, benchmark: benchmark, failedAssertions: failures)
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
