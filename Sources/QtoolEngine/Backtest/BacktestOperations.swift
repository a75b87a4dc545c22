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
  /// With `from`: compute the indicators from `from` on, cold, instead of on the stored bars
  /// before it.
  public var noWarmup: Bool
  /// Let `model("name")` of a split model predict bars it was trained on (refused otherwise).
  public var allowInSample: Bool

  public init(
    strategy: StrategyReference, dataset: String? = nil, from: Int64? = nil, to: Int64? = nil, capital: Double? = nil,
    params: [String: Double] = [:], allowGaps: Bool = false, assertions: [String] = [], noWarmup: Bool = false, allowInSample: Bool = false
  ) {
    self.allowInSample = allowInSample
    self.noWarmup = noWarmup
    self.strategy = strategy
    self.dataset = dataset
    self.from = from
    self.to = to
    self.capital = capital
    self.params = params
    self.allowGaps = allowGaps
    self.assertions = assertions
  }

  enum CodingKeys: String, CodingKey {
    case strategy, dataset, from, to, capital, params, allowGaps = "allow_gaps", assertions, noWarmup = "no_warmup"
    case allowInSample = "allow_in_sample"
  }

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
    noWarmup = try container.decodeIfPresent(Bool.self, forKey: .noWarmup) ?? false
    allowInSample = try container.decodeIfPresent(Bool.self, forKey: .allowInSample) ?? false
  }

  /// Encodes `allow_in_sample` only when set, so requests recorded before it read the same.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(strategy, forKey: .strategy)
    try container.encodeIfPresent(dataset, forKey: .dataset)
    try container.encode(_from, forKey: .from)
    try container.encode(_to, forKey: .to)
    try container.encodeIfPresent(capital, forKey: .capital)
    try container.encode(params, forKey: .params)
    try container.encode(allowGaps, forKey: .allowGaps)
    try container.encode(assertions, forKey: .assertions)
    try container.encode(noWarmup, forKey: .noWarmup)
    if allowInSample { try container.encode(allowInSample, forKey: .allowInSample) }
  }
}

/// How a run's indicators were warmed up before its first traded bar.
public struct WarmupReport: Codable, Sendable, Equatable {
  /// Bars of history the rules need before a bar they decide on (the longest look-back, nested
  /// calls and offsets added up, plus one).
  public var bars: Int
  /// The sub-expression that needs the most, e.g. `sma(close, 60)`.
  public var expression: String?
  /// Stored bars before the first traded bar that the indicators were computed on (0 when the
  /// run starts with its data, or with `no_warmup`).
  public var loaded: Int
  /// The first of them.
  public var from: String?
  /// The first bar on which the rules could decide: the first traded bar once warmed up, else
  /// the bar `bars` into the run.
  public var decisionsFrom: String?
  /// False when warm-up was turned off (`no_warmup`).
  public var enabled: Bool

  enum CodingKeys: String, CodingKey { case bars, expression, loaded, from, decisionsFrom = "decisions_from", enabled }

  /// In words, for the summary and the report; `first` is the first traded bar.
  public func sentence(first: String) -> String {
    func short(_ iso: String) -> String { iso.hasSuffix("T00:00:00Z") ? String(iso.dropLast(10)) : iso }
    let (first, from, decisionsFrom) = (short(first), self.from.map(short), self.decisionsFrom.map(short))
    let what = "\(bars) bar\(bars == 1 ? "" : "s")" + (expression.map { " (\($0))" } ?? "")
    let decisions = decisionsFrom.map { "; decisions from \($0)" } ?? "; the rules never decide"
    if loaded > 0 { return "\(what) stored before \(first), from \(from ?? "?"); trading from \(first)" }
    if !enabled { return "off: the indicators start cold on \(first) and need \(what)" + decisions }
    return "the run's first \(what)" + decisions
  }
}

/// What one symbol of a run contributed.
public struct SymbolContribution: Codable, Sendable, Equatable {
  public var symbol: String
  public var trades: Int
  public var winning: Int
  /// Net of commissions, in cash.
  public var pnl: Double
  /// `pnl` over the starting capital.
  public var contribution: Double
}

/// What a run returns to the CLI and the server.
public struct BacktestReport: Encodable, Sendable {
  public var id: String
  public var jobID: String?
  public var strategy: String
  /// The registered version of the strategy whose spec the run used (nil for a spec never
  /// registered).
  public var strategyVersion: Int? = nil
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
  /// When the drawdown halt (or ruin) stopped trading, and why.
  public var haltedAt: String?
  public var haltReason: String?
  /// How the indicators were warmed up before `first` (nil for a stored run recorded before
  /// runs kept it).
  public var warmup: WarmupReport?
  /// Each symbol's trades and pnl (one entry unless a portfolio).
  public var contributions: [SymbolContribution]
  /// The order decided at the last bar, not yet filled.
  public var pendingOrder: PendingOrder?

  /// The ten deepest periods under water.
  public var drawdownPeriods: [ResultSeries.DrawdownPeriod]
  public var monthlyReturns: [ResultSeries.MonthlyReturn]
  /// The costs, sizing, execution and risk the run traded with, in words (the spec has them
  /// for JSON readers).
  public var settings: [(name: String, value: String)] = []
  /// The traded bars' closes on `timestamps` for the report's price chart (nil for a
  /// portfolio, whose trades are on several prices).
  public var closes: [Double]? = nil
  /// The decimals the traded instruments' prices are quoted with, derived from their stored
  /// bars (`DisplayFormat.places`), for tables and reports.
  public var pricePlaces: Int = 2
  /// The engine version a stored run was recorded with (`report(id:)`).
  public var engineVersion: String? = nil

  enum CodingKeys: String, CodingKey {
    case id, jobID = "job_id", strategy, strategyVersion = "strategy_version", dataset, symbol, timeframe, first, last, bars, parameters = "params", fingerprint, metrics, trades
    case failedAssertions = "failed_assertions", haltedAt = "halted_at", haltReason = "halt_reason", warmup, contributions
    case pendingOrder = "pending_order"
    case drawdownPeriods = "drawdown_periods", monthlyReturns = "monthly_returns"
  }
}

public enum BacktestError: QtoolError, Equatable {
  case severalSymbols(count: Int)
  case noBars(dataset: String)
  /// `suggestion`: what fits this dataset (see `BacktestOperations.gapRemedy`).
  case gaps(dataset: String, count: Int, first: String, suggestion: String = "")
  /// The rules look back further than the bars reach, so they never decide.
  case lookbackExceedsData(dataset: String, needed: Int, bars: Int, expression: String?)
  /// Fewer stored bars before `from` than the warm-up needs.
  case warmupTooShort(dataset: String, needed: Int, available: Int, from: String, expression: String?)

  public var category: ErrorCategory {
    switch self {
    case .severalSymbols: return .invalidInput
    case .noBars: return .notFound
    case .gaps, .lookbackExceedsData, .warmupTooShort: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .severalSymbols: return "several_symbols_without_portfolio"
    case .noBars: return "no_bars_in_range"
    case .gaps: return "dataset_has_gaps"
    case .lookbackExceedsData: return "lookback_exceeds_data"
    case .warmupTooShort: return "warmup_too_short"
    }
  }

  public var message: String {
    switch self {
    case .severalSymbols(let count):
      return "the spec lists \(count) symbols but has no portfolio section, so it does not say how to trade them together"
    case .noBars(let dataset): return "\(dataset) has no bars in that range"
    case .gaps(let dataset, let count, let first, _): return "\(dataset) has \(DisplayFormat.plural(count, "gap")) in that range (the first: \(first))"
    case .lookbackExceedsData(let dataset, let needed, let bars, let expression):
      return
        "the rules need \(needed) bars of history before their first decision\(expression.map { " (\($0))" } ?? ""), but \(dataset) has \(bars) bars in that range, so they would never decide"
    case .warmupTooShort(let dataset, let needed, let available, let from, let expression):
      return
        "the rules need \(needed) bars before \(from) to warm up\(expression.map { " (\($0))" } ?? ""), but \(dataset) has \(available): \(needed - available) bars missing"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .severalSymbols(let count): return ["symbols": JSONValue(count)]
    case .noBars(let dataset): return ["dataset": .string(dataset)]
    case .gaps(let dataset, let count, let first, _): return ["dataset": .string(dataset), "gaps": JSONValue(count), "first": .string(first)]
    case .lookbackExceedsData(let dataset, let needed, let bars, let expression):
      return ["dataset": .string(dataset), "warmup_bars": JSONValue(needed), "bars": JSONValue(bars), "expression": JSONValue(expression)]
    case .warmupTooShort(let dataset, let needed, let available, let from, let expression):
      return [
        "dataset": .string(dataset), "warmup_bars": JSONValue(needed), "available": JSONValue(available), "missing": JSONValue(needed - available),
        "from": .string(from), "expression": JSONValue(expression),
      ]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .severalSymbols:
      return "add portfolio: {{rank: roc(close, 20), top: 1}} to trade them as a portfolio, or run one of them with {dataset}"
    case .noBars(let dataset): return "check {from} and {to}, or `qtool data info \(dataset)`"
    case .gaps(_, _, _, let suggestion): return ErrorHint((suggestion.isEmpty ? "" : suggestion + "; ") + "or run anyway with {allow_gaps}")
    case .lookbackExceedsData: return "use shorter periods, or run on more data (an earlier {from}, or another {dataset})"
    case .warmupTooShort: return "start later with {from}, or compute the indicators from {from} on, cold, with {no_warmup}"
    }
  }
}

/// The backtest operations, shared by the CLI and the server.
public struct BacktestOperations: Sendable {
  /// 2: indicators warm up on the stored bars before `from`; undefined metrics are NaN, not 0.
  public static let engineVersion = "qtool-engine/2"
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  /// The bars a spec runs on: one dataset's, or each symbol's for a portfolio — the bars it
  /// trades on and, before them, the bars that warm its indicators up.
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
    /// The spec's benchmark closes on the traded bars (from `tradingStart`), when it names one.
    var benchmarkCloses: [Double]?
    /// The first traded bar: in `single`, or on the portfolio's aligned timeline. The bars
    /// before it only warm up.
    var tradingStart = 0
    /// The timeline: `single`'s timestamps, or those every symbol of the portfolio has.
    var timestamps: [Int64]
    /// Warm-up was not turned off (`no_warmup`): a run with `from` and each walk-forward
    /// window warm up on the bars before them.
    var warmupEnabled = true

    /// The traded bars of a single-symbol run.
    var tradedBars: BarSeries? { single.map { tradingStart == 0 ? $0 : $0.slice(tradingStart..<$0.count) } }
    var tradedCount: Int { timestamps.count - tradingStart }

    /// How `strategy` is warmed up on these bars.
    func warmup(_ strategy: CompiledStrategy) -> WarmupReport {
      let (bars, expression) = strategy.warmup
      let decisions = max(bars, tradingStart)
      return WarmupReport(
        bars: bars, expression: expression, loaded: tradingStart, from: tradingStart > 0 ? UTCCalendar.format(timestamps[0], alwaysTime: true) : nil,
        decisionsFrom: decisions < timestamps.count ? UTCCalendar.format(timestamps[decisions], alwaysTime: true) : nil, enabled: warmupEnabled)
    }

    /// The same data cut to the timeline's bars in `range`, with up to `warmup` bars before it
    /// to warm up on (a walk-forward window).
    func window(_ range: Range<Int>, warmup: Int) -> MarketData {
      var part = self
      let lower = warmupEnabled ? max(0, range.lowerBound - warmup) : range.lowerBound
      let (from, to) = (timestamps[lower], timestamps[range.upperBound - 1] + 1)
      part.single = single.map { $0.slice(lower..<range.upperBound) }
      part.benchmarkCloses = benchmarkCloses.map { Array($0[(range.lowerBound - tradingStart)..<(range.upperBound - tradingStart)]) }
      part.portfolio = portfolio.map { PortfolioBacktester.Input(symbol: $0.symbol, bars: $0.bars.between(from: from, to: to)) }
      part.timestamps = Array(timestamps[lower..<range.upperBound])
      part.tradingStart = range.lowerBound - lower
      return part
    }
  }

  /// What one simulation produced, on the run's traded bars.
  struct Simulated {
    var outcome: BacktestOutcome
    /// The traded bars: the dataset's, or a portfolio's equal-weight index.
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

  /// Loads the bars `spec` runs on in `[from, to)` and, unless `noWarmup`, the `warmup` stored
  /// bars before `from` that warm its indicators up (none are needed when `from` is at or
  /// before the data's first bar: the run then starts with its data). Refuses gaps unless
  /// `allowGaps`, and a warm-up the store cannot supply.
  func loadData(
    _ spec: StrategySpec, dataset requested: String?, from: Int64?, to: Int64?, allowGaps: Bool, warmup: Int, noWarmup: Bool,
    expression: String?
  ) throws -> MarketData {
    let warming = from != nil && !noWarmup
    if spec.portfolio != nil {
      var data = try loadPortfolio(
        spec, from: from, to: to, allowGaps: allowGaps, warmup: warming ? warmup : 0, gapWarmup: noWarmup ? 0 : warmup, expression: expression)
      data.warmupEnabled = !noWarmup
      return data
    }
    guard spec.universe.symbols.count <= 1 || requested != nil else { throw BacktestError.severalSymbols(count: spec.universe.symbols.count) }
    let datasetName = requested ?? spec.datasetNames[0]
    let dataset = try database.dataset(named: datasetName)
    var bars: BarSeries
    var before = 0
    if let from, warming {
      (bars, before) = try database.bars(datasetID: dataset.id, from: from, to: to ?? .max, withBarsBefore: warmup)
    } else {
      bars = try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)
    }
    guard bars.count - before >= 2 else { throw BacktestError.noBars(dataset: datasetName) }
    if before > 0, before < warmup {
      throw BacktestError.warmupTooShort(
        dataset: datasetName, needed: warmup, available: before, from: UTCCalendar.format(bars.timestamps[before]), expression: expression)
    }
    if !allowGaps { try refuseGaps(bars, of: dataset, warmup: noWarmup ? 0 : warmup) }
    let barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    let closes = try spec.benchmark.map { try self.benchmarkCloses($0, timeframe: spec.universe.timeframe, on: Array(bars.timestamps[before...])) }
    return MarketData(
      datasetName: datasetName, symbol: dataset.symbol, timeframe: dataset.timeframe, barsPerYear: barsPerYear,
      sliceHash: try sliceHash(bars, of: dataset), single: bars, portfolio: [], dataset: dataset, benchmarkCloses: closes,
      tradingStart: before, timestamps: bars.timestamps, warmupEnabled: !noWarmup)
  }

  /// Refuses `bars` of `dataset` with gaps, suggesting what fits: `warmup` is the bars a
  /// run starting after the last gap needs before it (0 without warm-up).
  func refuseGaps(_ bars: BarSeries, of dataset: DatasetSummary, warmup: Int, portfolio: Bool = false) throws {
    let gaps = DatasetVerifier.verify(bars, timeframe: dataset.parsedTimeframe, calendar: dataset.parsedCalendar).problems.filter { $0.kind == .gap }
    if let first = gaps.first {
      let resume = gaps.last!.until.map { bars.index(atOrAfter: $0) + warmup }.flatMap { $0 < bars.count - 1 ? bars.timestamps[$0] : nil }
      throw BacktestError.gaps(
        dataset: dataset.name, count: gaps.count, first: first.message,
        suggestion: Self.gapRemedy(for: dataset, portfolio: portfolio, resume: resume.map { UTCCalendar.format($0) }))
    }
  }

  /// What to do about gaps in `dataset`: download the range again when a source can; fill
  /// them by the dataset's calendar into a new dataset to run on (not for a portfolio, which
  /// runs on SYMBOL-TIMEFRAME); or start after the last one, warm-up included (`resume`).
  static func gapRemedy(for dataset: DatasetSummary, portfolio: Bool, resume: String?) -> String {
    var remedies: [String] = []
    if dataset.origin == "downloaded" {
      remedies.append(
        "download the range again (`qtool data download --source \(dataset.source) --symbols \(dataset.symbol) -t \(dataset.timeframe)`)")
    }
    if !portfolio {
      let filled = "\(dataset.name)-filled"
      remedies.append(
        "fill them by the dataset's calendar with `qtool data preprocess \(dataset.name) --op fill_missing --out \(filled)` and run on it with {dataset} \(filled)"
      )
    }
    if let resume { remedies.append("start after the last one with {from} \(resume)") }
    return remedies.joined(separator: "; ")
  }

  /// A portfolio spec: every symbol's dataset (SYMBOL-TIMEFRAME), over the range they all
  /// cover (a symbol's gaps outside it do not matter), with `warmup` bars of that range before
  /// `from` when given.
  func loadPortfolio(
    _ spec: StrategySpec, from: Int64?, to: Int64?, allowGaps: Bool, warmup: Int, gapWarmup: Int, expression: String?
  ) throws -> MarketData {
    let names = spec.datasetNames
    let datasetName = names.joined(separator: "+")
    var datasets: [DatasetSummary] = []
    var inputs: [PortfolioBacktester.Input] = []
    var barsPerYear = 252.0
    /// Each symbol's bars in range, with up to `margin` bars before `from`; whether some
    /// symbol has more before them.
    func load(margin: Int) throws -> Bool {
      inputs = []
      var more = false
      for (symbol, dataset) in zip(spec.universe.symbols, datasets) {
        if let from, warmup > 0 {
          let (bars, before) = try database.bars(datasetID: dataset.id, from: from, to: to ?? .max, withBarsBefore: margin)
          more = more || before == margin
          inputs.append(PortfolioBacktester.Input(symbol: symbol, bars: bars))
        } else {
          inputs.append(PortfolioBacktester.Input(symbol: symbol, bars: try database.bars(datasetID: dataset.id, from: from ?? .min, to: to ?? .max)))
        }
      }
      return more
    }
    for name in names {
      let dataset = try database.dataset(named: name)
      datasets.append(dataset)
      barsPerYear = dataset.parsedTimeframe.barsPerYear(tradingDays: dataset.parsedCalendar.tradingDaysPerYear)
    }
    // Calendars differ (a 24x7 symbol has more bars a week than a weekdays one), so the warm-up
    // is counted on the common timeline: load twice as many, and everything before `from`
    // if that is not enough.
    let more = try load(margin: 2 * warmup + 8)
    for (input, name) in zip(inputs, names) where input.bars.count - (from.map { input.bars.index(atOrAfter: $0) } ?? 0) < 2 {
      throw BacktestError.noBars(dataset: name)
    }
    func clipToCommonRange() throws -> (timestamps: [Int64], tradingStart: Int) {
      let start = inputs.map { $0.bars.timestamps[0] }.max()!
      let end = inputs.map { $0.bars.timestamps[$0.bars.count - 1] }.min()!
      guard start < end else { return ([], 0) }
      inputs = inputs.map { PortfolioBacktester.Input(symbol: $0.symbol, bars: $0.bars.between(from: start, to: end + 1)) }
      let timestamps = PortfolioBacktester.align(inputs).timestamps
      return (timestamps, from.map { from in timestamps.firstIndex { $0 >= from } ?? timestamps.count } ?? 0)
    }
    var (timestamps, tradingStart) = try clipToCommonRange()
    if warmup > 0, tradingStart < warmup, more {
      _ = try load(margin: .max / 4)
      (timestamps, tradingStart) = try clipToCommonRange()
    }
    guard timestamps.count - tradingStart >= 2 else {
      throw OperationError.notFound(
        "\(names.joined(separator: ", ")) share fewer than 2 bars; a portfolio runs on the bars all its symbols have",
        code: "no_common_bars", details: ["datasets": .string(datasetName)])
    }
    if warmup > 0, tradingStart > 0 {
      guard tradingStart >= warmup else {
        throw BacktestError.warmupTooShort(
          dataset: datasetName, needed: warmup, available: tradingStart, from: UTCCalendar.format(timestamps[tradingStart]), expression: expression)
      }
      // Exactly `warmup` bars before `from`, whatever else is stored: the run is reproducible.
      let first = timestamps[tradingStart - warmup]
      inputs = inputs.map { PortfolioBacktester.Input(symbol: $0.symbol, bars: $0.bars.between(from: first, to: .max)) }
      timestamps.removeFirst(tradingStart - warmup)
      tradingStart = warmup
    }
    if !allowGaps {
      for (input, dataset) in zip(inputs, datasets) { try refuseGaps(input.bars, of: dataset, warmup: gapWarmup, portfolio: true) }
    }
    return MarketData(
      datasetName: datasetName, symbol: "portfolio", timeframe: spec.universe.timeframe, barsPerYear: barsPerYear,
      sliceHash: ContentHash.sha256Hex(Data(inputs.map { ContentHash.of($0.bars) }.joined(separator: "\n").utf8)), single: nil,
      portfolio: inputs, dataset: nil, benchmarkCloses: nil, tradingStart: tradingStart, timestamps: timestamps)
  }

  /// Refuses rules that read a feature column the data lacks, or look back further than the
  /// bars reach: they would never decide.
  static func checkLookback(_ strategy: CompiledStrategy, on data: MarketData) throws {
    for bars in data.single.map({ [$0] }) ?? data.portfolio.map(\.bars) { try strategy.checkColumns(of: bars) }
    let (needed, expression) = strategy.warmup
    guard max(needed, data.tradingStart) < data.timestamps.count else {
      throw BacktestError.lookbackExceedsData(dataset: data.datasetName, needed: needed, bars: data.tradedCount, expression: expression)
    }
  }

  /// Runs `strategy` on `data` under the trading rules; for a single symbol, `evaluator` (shared
  /// by a grid's runs) may be given. Trades carry their symbol.
  static func simulate(
    _ strategy: CompiledStrategy, on data: MarketData, evaluator: RuleEvaluator? = nil, cancellation: CancellationToken
  ) throws -> Simulated {
    if let bars = data.single, let traded = data.tradedBars {
      var outcome = try Backtester.run(strategy, bars: bars, from: data.tradingStart, evaluator: evaluator, cancellation: cancellation)
      for k in outcome.trades.indices { outcome.trades[k].symbol = data.symbol }
      let closes = data.benchmarkCloses ?? traded.close
      // The benchmark (buy-and-hold of the same bars unless the spec names one), scaled to the capital.
      let benchmark = closes.map { $0 / closes[0] * strategy.capital }
      return Simulated(outcome: outcome, bars: traded, benchmark: benchmark, tradeSymbols: outcome.trades.map { _ in data.symbol })
    }
    guard let portfolio = strategy.spec.portfolio, let rank = strategy.rank else {
      throw OperationError.invalidInput("the spec has no portfolio section", code: "not_a_portfolio")
    }
    let result = try PortfolioBacktester.run(
      strategy, rank: rank, top: portfolio.top, rebalance: portfolio.rebalance ?? "monthly", inputs: data.portfolio, from: data.tradingStart,
      cancellation: cancellation)
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
    _ loaded: LoadedSpec, parameters: [String: Double], capital: Double?, dataset requested: String?, from: Int64?, to: Int64?, allowGaps: Bool,
    noWarmup: Bool, allowInSample: Bool = false
  ) throws -> Execution {
    var strategy = try CompiledStrategy(loaded.spec, overrides: parameters, capital: capital, origin: loaded.origin)
    let models = try ModelAttachments.load(strategy.modelNames, database: database, allowInSample: allowInSample)
    models.apply(to: &strategy)
    let (warmup, expression) = strategy.warmup
    let data = try loadData(
      loaded.spec, dataset: requested, from: from, to: to, allowGaps: allowGaps, warmup: warmup, noWarmup: noWarmup, expression: expression)
    try Self.checkLookback(strategy, on: data)
    try models.checkOutOfSample(
      from: data.timestamps[data.tradingStart], to: data.timestamps[data.timestamps.count - 1], allowInSample: allowInSample)
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
    try OperationError.checkRange(from: request.from, to: request.to)
    for assertion in request.assertions { try MetricAssertion.check(assertion) }
    // A gate that failed is in the job's result too: a client of the REST API sees what the
    // CLI's exit code 2 says.
    let link: (BacktestReport) -> [String: JSONValue] = { report in
      guard !report.failedAssertions.isEmpty else { return ["run_id": .string(report.id)] }
      let failures = report.failedAssertions.map { failure -> JSONValue in
        .object([
          "clause": .string(failure.clause), "reason": failure.reason.map(JSONValue.string) ?? .null,
          "values": .object(failure.values.mapValues { JSONValue.number($0) }),
        ])
      }
      return ["run_id": .string(report.id), "failed_assertions": .array(failures)]
    }
    return try JobRunner.run(.backtest, request: request, context: context, link: link) { context in
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
      allowGaps: request.allowGaps, noWarmup: request.noWarmup, allowInSample: request.allowInSample)
    let (strategy, bars, metrics) = (run.strategy, run.bars, run.metrics)
    context.progress.update(done: bars.count)
    var failures: [MetricAssertion.Failure] = []
    for assertion in request.assertions { failures += try MetricAssertion.failures(assertion, metrics: metrics) }

    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let datasetsJSON = String(
      decoding: try encoder.encode([
        [
          "name": run.datasetName, "content_hash": run.data.sliceHash, "first": UTCCalendar.format(bars.timestamps[0]),
          "last": UTCCalendar.format(bars.timestamps[bars.count - 1]),
        ]
      ]), as: UTF8.self)
    let warmup = run.data.warmup(strategy)
    let parameters = RunParameters(
      parameters: strategy.parameters, capital: strategy.capital, from: request.from, to: request.to, dataset: run.datasetName,
      allowGaps: request.allowGaps, noWarmup: request.noWarmup, allowInSample: request.allowInSample ? true : nil, warmup: warmup)
    let haltReason = Self.haltReason(run.outcome, strategy: strategy)
    let record = RunRecord(
      id: id, strategyName: loaded.spec.name, specText: loaded.text, datasets: datasetsJSON,
      params: String(decoding: try encoder.encode(parameters), as: UTF8.self), engineVersion: Self.engineVersion, fingerprint: run.fingerprint,
      status: "completed", metrics: String(decoding: try encoder.encode(metrics), as: UTF8.self), createdAt: started,
      haltedAt: haltReason == nil ? nil : run.outcome.haltedAt, haltReason: haltReason)
    try context.hooks.checkpoint("backtest.record", 0, cancellation: context.cancellation)
    try context.cancellation.check()
    try database.completeRun(
      record, trades: run.outcome.trades, symbols: run.simulated.tradeSymbols, timestamps: bars.timestamps, equity: run.outcome.equity,
      benchmark: run.simulated.benchmark, at: context.clock.now())
    context.progress.finish()
    return BacktestReport(
      id: id, jobID: context.jobID, strategy: loaded.spec.name, strategyVersion: strategyVersion(loaded.spec.name, text: loaded.text),
      dataset: run.datasetName, symbol: run.data.symbol, timeframe: run.data.timeframe,
      first: UTCCalendar.format(bars.timestamps[0], alwaysTime: true), last: UTCCalendar.format(bars.timestamps[bars.count - 1], alwaysTime: true),
      bars: bars.count,
      parameters: strategy.parameters, fingerprint: run.fingerprint, metrics: metrics, trades: run.outcome.trades,
      tradeSymbols: run.simulated.tradeSymbols, timestamps: bars.timestamps, equity: run.outcome.equity, benchmark: run.simulated.benchmark,
      failedAssertions: failures, haltedAt: run.outcome.haltedAt.map { UTCCalendar.format($0, alwaysTime: true) },
      haltReason: haltReason, warmup: warmup,
      contributions: Self.contributions(
        run.outcome.trades, symbols: run.data.portfolio.isEmpty ? [run.data.symbol] : run.data.portfolio.map(\.symbol),
        capital: strategy.capital),
      pendingOrder: run.outcome.pendingOrder,
      drawdownPeriods: Array(ResultSeries.drawdownPeriods(bars.timestamps, run.outcome.equity).prefix(10)),
      monthlyReturns: ResultSeries.monthlyReturns(bars.timestamps, run.outcome.equity),
      settings: loaded.spec.settingsSummary(capital: strategy.capital), closes: run.data.portfolio.isEmpty ? bars.close : nil,
      pricePlaces: Self.pricePlaces(run.data.single.map { [$0] } ?? run.data.portfolio.map(\.bars)))
  }

  /// A run's stored metrics: undefined ones (null) come back as NaN, infinite ones (also
  /// null) as infinity (`Metrics.stored`).
  static func storedMetrics(_ text: String?) throws -> Metrics {
    let stored = Metrics.stored(text)
    return try Metrics.exact(Metrics.exactJSON { name in (stored[name] ?? nil) ?? (Metrics.isCount(name) ? 0 : .nan) })
  }

  /// The registered version whose spec text is `text`, if any.
  func strategyVersion(_ name: String, text: String) -> Int? {
    (try? database.strategyVersions(name: name))?.last { $0.specText == text }?.version
  }

  /// The decimals prices are quoted with in `series`: what their stored bars need (the last
  /// 5,000 bars of each are enough), at most `DisplayFormat.maximumPlaces`.
  static func pricePlaces(_ series: [BarSeries]) -> Int {
    series.map { bars in
      let tail = max(0, bars.count - 5_000)..<bars.count
      return DisplayFormat.places(of: tail.lazy.flatMap { [bars.open[$0], bars.high[$0], bars.low[$0], bars.close[$0]] })
    }.max() ?? 2
  }

  /// A recorded run as its summary and report show it: what `run` returned, rebuilt from the
  /// store (its warm-up, when it was recorded with it; no pending order, no assertions).
  public func report(id: String) throws -> BacktestReport {
    let record = try database.run(id: id)
    let settings = try? JSONDecoder().decode(RunParameters.self, from: Data(record.params.utf8))
    let curve = try database.equityCurve(runID: record.id)
    let trades = try database.trades(runID: record.id)
    let spec = try? StrategyLoader.parse(record.specText, origin: "run \(record.id)").spec
    let datasetName = settings?.dataset ?? RunSummary(record).dataset ?? "?"
    let capital = settings?.capital ?? curve.equity.first ?? 0
    // The stored bars of the run's datasets over its range: their precision, and the closes
    // for the report's price chart.
    let (first, last) = (curve.timestamps.first ?? 0, curve.timestamps.last ?? 0)
    let series = datasetName.split(separator: "+").compactMap { name -> BarSeries? in
      guard let dataset = try? database.dataset(named: String(name)) else { return nil }
      return try? database.bars(datasetID: dataset.id, from: first, to: last + 1)
    }
    let places =
      series.isEmpty ? DisplayFormat.places(of: trades.flatMap { [$0.entryPrice, $0.exitPrice] }, cap: 4) : Self.pricePlaces(series)
    let closes = series.count == 1 && series[0].timestamps == curve.timestamps ? series[0].close : nil
    let metrics = try Self.storedMetrics(record.metrics)
    let symbols = spec?.portfolio != nil ? (spec?.universe.symbols ?? []) : [trades.first?.symbol ?? spec?.universe.symbols.first ?? ""]
    return BacktestReport(
      id: record.id, jobID: nil, strategy: record.strategyName, strategyVersion: strategyVersion(record.strategyName, text: record.specText),
      dataset: datasetName, symbol: symbols.joined(separator: ","), timeframe: spec?.universe.timeframe ?? "",
      first: UTCCalendar.format(first, alwaysTime: true), last: UTCCalendar.format(last, alwaysTime: true), bars: curve.timestamps.count,
      parameters: settings?.parameters ?? [:], fingerprint: record.fingerprint, metrics: metrics, trades: trades,
      tradeSymbols: trades.map { $0.symbol ?? "" }, timestamps: curve.timestamps, equity: curve.equity,
      benchmark: curve.benchmark.map { $0 ?? .nan }, failedAssertions: [],
      haltedAt: record.haltedAt.map { UTCCalendar.format($0, alwaysTime: true) }, haltReason: record.haltReason, warmup: settings?.warmup,
      contributions: Self.contributions(trades, symbols: symbols, capital: capital), pendingOrder: nil,
      drawdownPeriods: Array(ResultSeries.drawdownPeriods(curve.timestamps, curve.equity).prefix(10)),
      monthlyReturns: ResultSeries.monthlyReturns(curve.timestamps, curve.equity),
      settings: spec?.settingsSummary(capital: capital) ?? [], closes: closes, pricePlaces: places, engineVersion: record.engineVersion)
  }

  /// Why a run stopped trading, in words: the drawdown at the halt and the limit it passed.
  static func haltReason(_ outcome: BacktestOutcome, strategy: CompiledStrategy) -> String? {
    guard let at = outcome.haltedAt, let reason = outcome.haltReason else { return nil }
    switch reason {
    case .ruin: return "equity reached zero; trading stopped"
    case .drawdown:
      let limit = strategy.spec.risk?.maxDrawdownHalt ?? 0
      let index = outcome.timestamps.firstIndex(of: at) ?? 0
      let peak = max(strategy.capital, outcome.equity[...index].max() ?? strategy.capital)
      let fall = 1 - outcome.equity[index] / peak
      return String(
        format:
          "equity fell %.1f%% from its peak of %.2f, past risk.max_drawdown_halt (%g%%): positions were closed at that close and no trade was made after",
        fall * 100, peak, limit * 100)
    }
  }

  /// Each symbol's trades and pnl, in the order of `symbols`.
  static func contributions(_ trades: [Trade], symbols: [String], capital: Double) -> [SymbolContribution] {
    symbols.map { symbol in
      let own = trades.filter { $0.symbol == symbol }
      let pnl = own.reduce(0) { $0 + $1.pnl }
      return SymbolContribution(
        symbol: symbol, trades: own.count, winning: own.filter { $0.pnl > 0 }.count, pnl: pnl, contribution: pnl / capital)
    }
  }

  /// Reruns a recorded run from its stored spec text and settings and checks that every trade
  /// and every equity point comes out identical. Not recorded, and not a job: it only reads.
  public func replay(id: String) throws -> ReplayReport {
    let record = try database.run(id: id)
    let settings = try JSONDecoder().decode(RunParameters.self, from: Data(record.params.utf8))
    let loaded = try StrategyLoader.parse(record.specText, origin: "run \(record.id)")
    let isPortfolio = loaded.spec.portfolio != nil
    // Runs recorded before warm-up existed computed their indicators from `from` on.
    let run = try execute(
      loaded, parameters: settings.parameters, capital: settings.capital, dataset: isPortfolio ? nil : settings.dataset, from: settings.from,
      to: settings.to, allowGaps: settings.allowGaps, noWarmup: settings.noWarmup ?? true, allowInSample: settings.allowInSample ?? false)
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

  /// Metrics side by side and the correlation of per-bar returns over common timestamps; with
  /// `sort`, the runs best first by that metric (undefined last), the matrix in the same order.
  public func compare(ids: [String], sort: String? = nil) throws -> ComparisonReport {
    if let sort { try Self.checkRank(sort) }
    var ids = ids
    if let sort {
      let records = try ids.map { try database.run(id: $0) }
      let read = { (run: RunRecord) in run.metricValues[sort] ?? .nan }
      let lower = Self.lowerIsBetter.contains(sort)
      let order = records.indices.sorted { a, b in
        let (x, y) = (read(records[a]), read(records[b]))
        // Undefined last; infinity as IEEE orders it, as a grid ranks.
        if x.isNaN != y.isNaN { return y.isNaN }
        return x != y && !x.isNaN ? (lower ? x < y : x > y) : a < b
      }
      ids = order.map { records[$0].id }
    }
    var runs: [ComparisonReport.Run] = []
    var curves: [[Int64: Double]] = []
    for id in ids {
      let record = try database.run(id: id)
      let settings = try? JSONDecoder().decode(RunParameters.self, from: Data(record.params.utf8))
      runs.append(
        ComparisonReport.Run(id: record.id, strategy: record.strategyName, params: settings?.parameters ?? [:], metrics: record.metricValues))
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

  /// Recorded runs, newest first, or best first by a metric; what tells runs apart shown.
  public func list(_ filter: RunFilter) throws -> [RunSummary] {
    if let sort = filter.sort { try Self.checkRank(sort) }
    var runs = try list().filter { run in
      (filter.strategy.map { run.strategyName == $0 } ?? true) && (filter.since.map { run.createdAt >= $0 } ?? true)
    }
    if let sort = filter.sort {
      let read = { (run: RunRecord) in run.metricValues[sort] ?? .nan }
      let better = Self.lowerIsBetter.contains(sort) ? { (a: Double, b: Double) in a < b } : { (a: Double, b: Double) in a > b }
      runs.sort { a, b in
        let (x, y) = (read(a), read(b))
        if x.isNaN != y.isNaN { return y.isNaN }  // undefined last; infinity as IEEE orders it
        return x != y && !x.isNaN ? better(x, y) : a.createdAt > b.createdAt
      }
    }
    return runs.prefix(max(0, filter.limit)).map(RunSummary.init)
  }

  static let lowerIsBetter: Set<String> = ["max_drawdown_duration", "volatility", "losing", "max_consecutive_losses", "commissions"]

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
  /// Nil in runs recorded before warm-up existed, which started cold at `from`.
  public var noWarmup: Bool?
  /// True when `model()` was let predict bars its model trained on.
  public var allowInSample: Bool?
  /// How the indicators were warmed up (nil in runs recorded before it was kept).
  public var warmup: WarmupReport? = nil
  enum CodingKeys: String, CodingKey {
    case parameters, capital, from, to, dataset, allowGaps = "allow_gaps", noWarmup = "no_warmup", allowInSample = "allow_in_sample", warmup
  }
}

/// Which recorded runs to list.
public struct RunFilter: Sendable, Equatable {
  public var strategy: String?
  public var since: Int64?
  public var limit: Int
  /// A metric to sort by, best first.
  public var sort: String?
  public init(strategy: String? = nil, since: Int64? = nil, limit: Int = 50, sort: String? = nil) {
    self.strategy = strategy
    self.since = since
    self.limit = limit
    self.sort = sort
  }
}

/// A run as `backtest list` shows it: enough to tell it from the others.
public struct RunSummary: Encodable, Sendable {
  public var id: String
  public var strategy: String
  public var createdAt: String
  public var dataset: String?
  public var first: String?
  public var last: String?
  public var params: [String: Double]
  public var capital: Double?
  public var metrics: [String: Double]

  enum CodingKeys: String, CodingKey { case id, strategy, createdAt = "created_at", dataset, first, last, params, capital, metrics }

  /// Infinite metrics are left out of `metrics`, as undefined ones are: JSON has no infinity.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(id, forKey: .id)
    try container.encode(strategy, forKey: .strategy)
    try container.encode(createdAt, forKey: .createdAt)
    try container.encodeIfPresent(dataset, forKey: .dataset)
    try container.encodeIfPresent(first, forKey: .first)
    try container.encodeIfPresent(last, forKey: .last)
    try container.encode(params, forKey: .params)
    try container.encodeIfPresent(capital, forKey: .capital)
    try container.encode(metrics.filter { $0.value.isFinite }, forKey: .metrics)
  }

  init(_ run: RunRecord) {
    id = run.id
    strategy = run.strategyName
    createdAt = UTCCalendar.format(run.createdAt, alwaysTime: true)
    let settings = try? JSONDecoder().decode(RunParameters.self, from: Data(run.params.utf8))
    let datasets = (try? JSONDecoder().decode([[String: String]].self, from: Data(run.datasets.utf8))) ?? []
    dataset = settings?.dataset ?? datasets.first?["name"]
    func iso(_ text: String?) -> String? { text.flatMap { TimestampParser.parse($0) }.map { UTCCalendar.format($0, alwaysTime: true) } }
    first = iso(datasets.first?["first"])
    last = iso(datasets.first?["last"])
    params = settings?.parameters ?? [:]
    capital = settings?.capital
    metrics = run.metricValues
  }
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
    public var params: [String: Double]
    public var metrics: [String: Double]

    /// Infinite metrics are left out of `metrics`, as undefined ones are: JSON has no infinity.
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(id, forKey: .id)
      try container.encode(strategy, forKey: .strategy)
      try container.encode(params, forKey: .params)
      try container.encode(metrics.filter { $0.value.isFinite }, forKey: .metrics)
    }
  }
  public var runs: [Run]
  /// Pearson correlation of per-bar returns, in the order of `runs`; NaN (null) without overlap.
  public var correlation: [[Double]]

  enum CodingKeys: String, CodingKey { case runs, correlation }
  enum MatrixKeys: String, CodingKey { case ids, matrix }
  /// The correlation is labelled: `{"ids": [the runs' ids], "matrix": [[…]]}`.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(runs, forKey: .runs)
    var matrix = container.nestedContainer(keyedBy: MatrixKeys.self, forKey: .correlation)
    try matrix.encode(runs.map(\.id), forKey: .ids)
    try matrix.encode(correlation.map { $0.map { $0.isFinite ? Optional($0) : nil } }, forKey: .matrix)
  }
}

extension BacktestOperations {
  /// `backtest check`: reruns on data cut at several points and reports any decision that
  /// changes (for a portfolio, any trade of any symbol).
  public func check(_ request: BacktestRequest) throws -> LookaheadCheck.Report {
    try OperationError.checkRange(from: request.from, to: request.to)
    let loaded = try StrategyLoader.resolve(request.strategy, database: database)
    var strategy = try CompiledStrategy(loaded.spec, overrides: request.params, capital: request.capital, origin: loaded.origin)
    // model(): each cut recomputes the features on the bars it has and predicts them again, so
    // a model that saw later bars changes the decisions before the cut.
    let models = try ModelAttachments.load(strategy.modelNames, database: database, allowInSample: request.allowInSample)
    models.apply(to: &strategy)
    let (warmup, expression) = strategy.warmup
    let data = try loadData(
      loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: true, warmup: warmup, noWarmup: request.noWarmup,
      expression: expression)
    try Self.checkLookback(strategy, on: data)
    try models.checkOutOfSample(
      from: data.timestamps[data.tradingStart], to: data.timestamps[data.timestamps.count - 1], allowInSample: request.allowInSample)
    let names = data.dataset.map { [$0.name] } ?? data.portfolio.map { "\($0.symbol)-\(loaded.spec.universe.timeframe)" }
    let lineage = try names.flatMap { try lookAheadInLineage(of: $0) }
    var report: LookaheadCheck.Report
    if let bars = data.single {
      report = LookaheadCheck.run(strategy, bars: bars, from: data.tradingStart)
    } else {
      let timestamps = data.timestamps
      let cancellation = context.cancellation
      report = try LookaheadCheck.run(timestamps: timestamps, firstDecisionBar: max(warmup, data.tradingStart)) { cut in
        var cutData = data
        cutData.portfolio = data.portfolio.map { input in
          PortfolioBacktester.Input(symbol: input.symbol, bars: input.bars.between(from: .min, to: cut.map { timestamps[$0] } ?? .max))
        }
        let simulated = try Self.simulate(strategy, on: cutData, cancellation: cancellation)
        return (simulated.outcome.trades, simulated.tradeSymbols)
      }
    }
    report.data = lineage
    report.warmupBars = warmup
    report.warmupExpression = expression
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
    let trades = Self.tradesCSV(detail.trades)
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

  /// A run's trades as CSV — the bundle's trades.csv and `backtest show ID --trades --csv`:
  /// full precision, times in RFC 3339, one row a trade.
  public static func tradesCSV(_ trades: [Trade]) -> String {
    var text = "symbol,side,size,entry_time,entry_price,exit_time,exit_price,pnl,return,commission,reason\n"
    for t in trades {
      text +=
        "\(t.symbol ?? ""),\(t.side),\(t.size),\(UTCCalendar.format(t.entryTime, alwaysTime: true)),\(t.entryPrice),\(UTCCalendar.format(t.exitTime, alwaysTime: true)),\(t.exitPrice),\(t.pnl),\(t.returnPct),\(t.commission),\(t.reason.rawValue)\n"
    }
    return text
  }

  /// `backtest export`: the bundle as one .tar.gz, under a folder named after the run.
  public func export(id: String, to path: String, overwrite: Bool = false) throws -> RunRecord {
    try AtomicFile.checkReplaceable(path, overwrite: overwrite)
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
