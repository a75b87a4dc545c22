import Foundation

/// The metrics of a run, each defined in `qtool help metrics`. Ratios are fractions
/// (0.12 = 12 %); drawdowns are negative; durations are in days.
public struct Metrics: Codable, Sendable, Equatable {
  public var startEquity: Double
  public var finalEquity: Double
  public var totalReturn: Double
  public var annualizedReturn: Double
  public var cagr: Double
  public var volatility: Double
  public var sharpe: Double
  public var sortino: Double
  public var calmar: Double
  public var maxDrawdown: Double
  public var maxDrawdownDuration: Double
  public var beta: Double
  public var alpha: Double
  public var var95: Double
  public var cvar95: Double
  public var trades: Int
  public var winning: Int
  public var losing: Int
  public var winRate: Double
  public var avgWin: Double
  public var avgLoss: Double
  public var best: Double
  public var worst: Double
  public var profitFactor: Double
  public var expectancy: Double
  public var sqn: Double
  public var maxConsecutiveWins: Int
  public var maxConsecutiveLosses: Int
  public var avgHoldingDays: Double
  public var exposure: Double
  public var buyAndHoldReturn: Double
  public var commissions: Double

  enum CodingKeys: String, CodingKey, CaseIterable {
    case startEquity = "start_equity", finalEquity = "final_equity", totalReturn = "total_return"
    case annualizedReturn = "annualized_return", cagr, volatility, sharpe, sortino, calmar, maxDrawdown = "max_drawdown"
    case maxDrawdownDuration = "max_drawdown_duration", beta, alpha, var95 = "var_95", cvar95 = "cvar_95", trades, winning, losing
    case winRate = "win_rate", avgWin = "avg_win", avgLoss = "avg_loss", best, worst, profitFactor = "profit_factor", expectancy, sqn
    case maxConsecutiveWins = "max_consecutive_wins", maxConsecutiveLosses = "max_consecutive_losses"
    case avgHoldingDays = "avg_holding_time", exposure, buyAndHoldReturn = "buy_and_hold_return", commissions
  }

  /// The names `--assert` and `--rank` accept.
  public static var names: [String] { CodingKeys.allCases.map(\.rawValue) }

  /// What a metric is when a run cannot measure it, for `qtool help metrics` and the man page.
  public static let undefinedRule =
    "A metric a run cannot measure (sharpe when the equity never moves, win_rate with 0 trades, sqn with fewer than 2 trades) is undefined: null in JSON and n/a in tables, never 0. A ratio over zero follows IEEE: profit_factor with no losing trade, sortino with no losing bar and calmar with no drawdown are infinite (inf in tables; null in JSON, which has no infinity). --assert compares infinity as IEEE does (profit_factor > 2 holds); a clause whose truth hangs on an undefined metric fails and says why, e.g. 'sharpe is undefined: 0 trades' — not (sharpe > 1) too, and max(1, sharpe) is undefined; --where on a grid's results drops such rows the same way."

  /// Definitions, for `qtool help metrics` and the man page.
  public static let definitions: [(String, String)] = [
    ("start_equity", "capital at the start"),
    ("final_equity", "equity at the last close"),
    ("total_return", "final_equity / start_equity - 1"),
    ("annualized_return", "mean per-bar return x bars per year"),
    ("cagr", "(final_equity / start_equity)^(365.25 / days) - 1, over calendar time"),
    ("volatility", "standard deviation of per-bar returns (n-1) x sqrt(bars per year)"),
    ("sharpe", "mean / standard deviation of per-bar returns x sqrt(bars per year); risk-free rate 0; n/a when the equity never moves (0 trades)"),
    ("sortino", "mean per-bar return / downside deviation (root mean square of negative returns) x sqrt(bars per year); infinite with no losing bar"),
    ("calmar", "cagr / |max_drawdown|; infinite with no drawdown"),
    ("max_drawdown", "the largest fall from a running equity peak, negative: min(equity / running max - 1)"),
    ("max_drawdown_duration", "the longest time in days from an equity peak until equity exceeds it again (or the end)"),
    ("beta", "covariance of per-bar returns with the benchmark's / the benchmark's variance; n/a when the benchmark never moves"),
    ("alpha", "(mean return - beta x mean benchmark return) x bars per year"),
    ("var_95", "historical 95% value at risk: the 5th percentile of per-bar returns"),
    ("cvar_95", "mean of the per-bar returns at or below var_95"),
    ("trades", "closed trades"),
    ("winning", "trades with pnl > 0"),
    ("losing", "trades with pnl <= 0"),
    ("win_rate", "winning / trades; n/a with 0 trades"),
    ("avg_win", "mean return of winning trades; n/a without one"),
    ("avg_loss", "mean return of losing trades; n/a without one"),
    ("best", "best trade return"),
    ("worst", "worst trade return"),
    ("profit_factor", "gross profit / gross loss of trades; infinite with no losing trade, n/a with 0 trades"),
    ("expectancy", "mean trade pnl in cash"),
    ("sqn", "system quality number: sqrt(trades) x mean pnl / standard deviation of pnl; n/a with fewer than 2 trades"),
    ("max_consecutive_wins", "longest run of winning trades"),
    ("max_consecutive_losses", "longest run of losing trades"),
    ("avg_holding_time", "mean trade duration in days"),
    ("exposure", "fraction of bars that close with a position open"),
    ("buy_and_hold_return", "last close / first close - 1 over the same bars"),
    ("commissions", "commission paid, in cash"),
  ]

  /// How a metric reads: a count, a fraction shown as a percent, an amount of cash, or a
  /// plain number (ratios such as sharpe).
  public enum Kind: Sendable { case count, percent, money, number }

  public static func kind(_ name: String) -> Kind {
    if isCount(name) { return .count }
    let percents: Set<String> = [
      "total_return", "annualized_return", "cagr", "volatility", "max_drawdown", "var_95", "cvar_95", "win_rate", "avg_win", "avg_loss", "best",
      "worst", "exposure", "buy_and_hold_return", "alpha",
    ]
    if percents.contains(name) { return .percent }
    if ["start_equity", "final_equity", "expectancy", "commissions"].contains(name) { return .money }
    return .number
  }

  /// Whether the metric named so counts something (trades, bars), so prints without decimals.
  public static func isCount(_ name: String) -> Bool { fields.contains { $0.key.stringValue == name && $0.isCount } }

  /// Each metric's key and value (counts as numbers), in declaration order: what `values`,
  /// ranking and encoding read, without reflection (a grid encodes thousands).
  static let fields: [(key: CodingKeys, read: @Sendable (Metrics) -> Double, isCount: Bool)] = [
    (.startEquity, { $0.startEquity }, false),
    (.finalEquity, { $0.finalEquity }, false),
    (.totalReturn, { $0.totalReturn }, false),
    (.annualizedReturn, { $0.annualizedReturn }, false),
    (.cagr, { $0.cagr }, false),
    (.volatility, { $0.volatility }, false),
    (.sharpe, { $0.sharpe }, false),
    (.sortino, { $0.sortino }, false),
    (.calmar, { $0.calmar }, false),
    (.maxDrawdown, { $0.maxDrawdown }, false),
    (.maxDrawdownDuration, { $0.maxDrawdownDuration }, false),
    (.beta, { $0.beta }, false),
    (.alpha, { $0.alpha }, false),
    (.var95, { $0.var95 }, false),
    (.cvar95, { $0.cvar95 }, false),
    (.trades, { Double($0.trades) }, true),
    (.winning, { Double($0.winning) }, true),
    (.losing, { Double($0.losing) }, true),
    (.winRate, { $0.winRate }, false),
    (.avgWin, { $0.avgWin }, false),
    (.avgLoss, { $0.avgLoss }, false),
    (.best, { $0.best }, false),
    (.worst, { $0.worst }, false),
    (.profitFactor, { $0.profitFactor }, false),
    (.expectancy, { $0.expectancy }, false),
    (.sqn, { $0.sqn }, false),
    (.maxConsecutiveWins, { Double($0.maxConsecutiveWins) }, true),
    (.maxConsecutiveLosses, { Double($0.maxConsecutiveLosses) }, true),
    (.avgHoldingDays, { $0.avgHoldingDays }, false),
    (.exposure, { $0.exposure }, false),
    (.buyAndHoldReturn, { $0.buyAndHoldReturn }, false),
    (.commissions, { $0.commissions }, false),
  ]

  /// Every metric by name (counts as numbers), undefined (NaN) and infinite ones included:
  /// what `--assert` reads.
  public var allValues: [String: Double] {
    var result: [String: Double] = [:]
    for field in Self.fields { result[field.key.rawValue] = field.read(self) }
    return result
  }

  /// Why the metric `name` is undefined (NaN) in this run, or nil when it has a value: the
  /// message an assertion on it fails with, e.g. `0 trades`.
  public func undefinedReason(_ name: String) -> String? {
    guard let read = Self.reader(name), read(self).isNaN else { return nil }
    let tradeCount = trades == 1 ? "1 trade" : "\(trades) trades"
    switch name {
    case "win_rate", "best", "worst", "expectancy", "avg_holding_time", "profit_factor":
      return trades == 0 ? "0 trades" : "every trade broke even"
    case "avg_win": return trades == 0 ? "0 trades" : "no winning trade among \(tradeCount)"
    case "avg_loss": return trades == 0 ? "0 trades" : "no losing trade among \(tradeCount)"
    case "sqn": return trades < 2 ? "\(tradeCount); it needs at least 2" : "every trade had the same pnl"
    case "sharpe", "sortino", "calmar":
      return trades == 0 ? "0 trades" : "the equity never changed"
    case "beta", "alpha": return "the benchmark never moved"
    default: return trades == 0 ? "0 trades" : "too few bars"
    }
  }

  /// Every finite metric by name (counts as numbers); a profit factor with no losses is left
  /// out, as it is null in JSON.
  public var values: [String: Double] {
    var result: [String: Double] = [:]
    for field in Self.fields {
      let number = field.read(self)
      if number.isFinite { result[field.key.rawValue] = number }
    }
    return result
  }

  /// Metrics as a store holds them (JSON, which has no infinity, so an infinite metric was
  /// written as null), by name, with the infinite ratios restored from the metrics they follow
  /// from, so a stored run shows and compares as it did when it ran: profit_factor is +inf when
  /// null with a winning trade (gross profit over no gross loss; with no win it is 0 or
  /// undefined), calmar is ±inf when null with a nonzero cagr and no drawdown, and sortino +inf
  /// when null with a positive annualized_return (no losing bar). Other nulls stay undefined.
  public static func stored(_ json: String?) -> [String: Double?] {
    var values = (try? JSONDecoder().decode([String: Double?].self, from: Data((json ?? "{}").utf8))) ?? [:]
    func number(_ name: String) -> Double? { values[name] ?? nil }
    func isNull(_ name: String) -> Bool { values.keys.contains(name) && number(name) == nil }
    if isNull("profit_factor"), let winning = number("winning"), winning > 0 { values["profit_factor"] = .infinity }
    if isNull("calmar"), let cagr = number("cagr"), cagr.isFinite, cagr != 0, number("max_drawdown") == 0 {
      values["calmar"] = cagr > 0 ? .infinity : -.infinity
    }
    if isNull("sortino"), let annualized = number("annualized_return"), annualized.isFinite, annualized > 0 { values["sortino"] = .infinity }
    return values
  }

  public func value(_ name: String) -> Double? { Self.reader(name).map { $0(self) }.flatMap { $0.isFinite ? $0 : nil } }

  /// Reads the metric `name`, or nil for an unknown name.
  public static func reader(_ name: String) -> (@Sendable (Metrics) -> Double)? { fields.first { $0.key.rawValue == name }?.read }

  /// The JSON object `JSONEncoder` with sorted keys writes, written directly: a grid records
  /// one per combination.
  public var sortedJSON: String {
    var text = "{"
    for (index, field) in Self.sortedFields.enumerated() {
      if index > 0 { text += "," }
      text += "\"\(field.key.rawValue)\":"
      let number = field.read(self)
      text += field.isCount ? String(Int(number)) : number.isFinite ? "\(number)" : "null"
    }
    return text + "}"
  }

  private static let sortedFields = fields.sorted { $0.key.rawValue < $1.key.rawValue }

  /// Equal when every metric is, an undefined (NaN) one equal to an undefined one: two runs
  /// with no trades have the same metrics.
  public static func == (lhs: Metrics, rhs: Metrics) -> Bool {
    fields.allSatisfy { field in
      let (a, b) = (field.read(lhs), field.read(rhs))
      return a == b || a.isNaN && b.isNaN
    }
  }

  public static func compute(_ outcome: BacktestOutcome, bars: BarSeries, barsPerYear: Double, benchmark: [Double]? = nil) -> Metrics {
    compute(outcome, bars: bars, barsPerYear: barsPerYear, benchmark: BenchmarkReturns(benchmark ?? bars.close))
  }

  /// With the benchmark's returns computed once: a grid shares them between combinations.
  public static func compute(_ outcome: BacktestOutcome, bars: BarSeries, barsPerYear: Double, benchmark: BenchmarkReturns) -> Metrics {
    compute(
      outcome, curve: ReturnStatistics(outcome.equity, benchmark: benchmark, timestamps: bars.timestamps), bars: bars, barsPerYear: barsPerYear,
      benchmark: benchmark)
  }

  /// From the statistics of the equity curve, which `outcome` need not hold (a grid's runs
  /// feed their curves to an accumulator as they go).
  public static func compute(
    _ outcome: BacktestOutcome, curve: ReturnStatistics, bars: BarSeries, barsPerYear: Double, benchmark: BenchmarkReturns
  ) -> Metrics {
    // One rule for what cannot be measured: NaN (null in JSON, n/a in tables), never 0. A
    // ratio over zero follows IEEE: x/0 is ±infinity, 0/0 is NaN. `qtool help metrics` says so.
    let nan = Double.nan
    let start = curve.bars > 0 ? curve.firstEquity : 0
    let final = curve.bars > 0 ? curve.lastEquity : 0
    let (mean, deviation, downside) = (curve.mean, curve.deviation, curve.downside)
    let hasReturns = curve.count > 0
    let hasDeviation = curve.count > 1
    let days = Double((bars.timestamps.last ?? 0) - (bars.timestamps.first ?? 0)) / 86_400_000
    let cagr = days > 0 && start > 0 ? (final > 0 ? pow(final / start, 365.25 / days) - 1 : -1) : nan
    let (maxDrawdown, longest) = (curve.maxDrawdown, curve.longestDrawdownDays)
    var beta = nan
    var alpha = nan
    if benchmark.returns.count == curve.count, curve.count > 1, benchmark.variance > 0 {
      beta = curve.covariance / benchmark.variance
      alpha = (mean - beta * benchmark.mean) * barsPerYear
    }
    let (var95, cvar95) = hasReturns ? (curve.var95, curve.cvar95) : (nan, nan)

    let trades = outcome.trades
    let wins = trades.filter { $0.pnl > 0 }
    let losses = trades.filter { $0.pnl <= 0 }
    let grossProfit = wins.reduce(0) { $0 + $1.pnl }
    let grossLoss = losses.reduce(0) { $0 - $1.pnl }  // +0 without losses, so a profit over it is +infinity
    let pnls = trades.map(\.pnl)
    let meanPnl = pnls.isEmpty ? nan : pnls.reduce(0, +) / Double(pnls.count)
    let pnlDeviation = standardDeviation(pnls)
    var run = (wins: 0, losses: 0, maxWins: 0, maxLosses: 0)
    for trade in trades {
      if trade.pnl > 0 {
        run.wins += 1
        run.losses = 0
      } else {
        run.losses += 1
        run.wins = 0
      }
      run.maxWins = max(run.maxWins, run.wins)
      run.maxLosses = max(run.maxLosses, run.losses)
    }
    let holding = trades.map { Double($0.exitTime - $0.entryTime) / 86_400_000 }
    func average(_ values: [Double]) -> Double { values.isEmpty ? nan : values.reduce(0, +) / Double(values.count) }
    let returns = trades.map(\.returnPct)
    return Metrics(
      startEquity: start, finalEquity: final, totalReturn: start > 0 ? final / start - 1 : nan,
      annualizedReturn: hasReturns ? mean * barsPerYear : nan, cagr: cagr, volatility: hasDeviation ? deviation * barsPerYear.squareRoot() : nan,
      sharpe: hasDeviation ? mean / deviation * barsPerYear.squareRoot() : nan,
      sortino: hasReturns ? mean / downside * barsPerYear.squareRoot() : nan,
      calmar: cagr / maxDrawdown, maxDrawdown: -maxDrawdown, maxDrawdownDuration: longest, beta: beta, alpha: alpha,
      var95: var95, cvar95: cvar95, trades: trades.count, winning: wins.count, losing: losses.count,
      winRate: trades.isEmpty ? nan : Double(wins.count) / Double(trades.count), avgWin: average(wins.map(\.returnPct)),
      avgLoss: average(losses.map(\.returnPct)), best: returns.max() ?? nan, worst: returns.min() ?? nan,
      profitFactor: grossProfit / grossLoss, expectancy: meanPnl,
      sqn: pnls.count > 1 ? Double(pnls.count).squareRoot() * meanPnl / pnlDeviation : nan, maxConsecutiveWins: run.maxWins,
      maxConsecutiveLosses: run.maxLosses, avgHoldingDays: average(holding),
      exposure: curve.bars == 0 ? nan : Double(outcome.exposedBars) / Double(curve.bars),
      buyAndHoldReturn: (bars.close.first ?? 0) > 0 ? bars.close.last! / bars.close.first! - 1 : nan, commissions: outcome.commissions)
  }

  /// Everything the metrics need from an equity curve and its per-bar returns. A grid
  /// computes this per combination, so the curve is fed to an `Accumulator` in pieces while
  /// the run produces them, the returns are taken in blocks that stay in the L1 cache, and
  /// only the negative returns are kept. Each block's deviation and covariance are taken
  /// about the block's own mean, then combined (Chan et al.), which is as exact as two passes
  /// over the whole curve. Sums run in four interleaved lanes (one chain of dependent
  /// additions costs four cycles a bar), so they can differ from a left-to-right sum in the
  /// last bits.
  public struct ReturnStatistics: Sendable {
    static let blockSize = 1024

    /// Bars of equity; the returns are one fewer.
    var bars = 0
    var firstEquity = 0.0
    var lastEquity = 0.0
    var count = 0
    var mean = 0.0
    var deviation = 0.0
    var downside = 0.0
    var covariance = 0.0
    var maxDrawdown = 0.0
    var longestDrawdownDays = 0.0
    var var95 = 0.0
    var cvar95 = 0.0

    private init() {}

    init(_ equity: [Double], benchmark: BenchmarkReturns, timestamps: [Int64]) {
      var accumulator = Accumulator(benchmark: benchmark, bars: equity.count)
      equity.withUnsafeBufferPointer { equity in
        timestamps.withUnsafeBufferPointer { timestamps in accumulator.add(equity, timestamps: timestamps) }
      }
      self = accumulator.finish(timestamps: timestamps) { Metrics.perBarReturns(equity) }!
    }

    /// The negative returns of a curve, in a buffer of the curve's length allocated once.
    final class NegativeReturns {
      let storage: UnsafeMutableBufferPointer<Double>
      var count = 0

      init(capacity: Int) { storage = .allocate(capacity: capacity) }
      deinit { storage.deallocate() }

      /// The k-th smallest, leaving the smaller ones before it.
      func select(_ k: Int) -> Double { Metrics.select(UnsafeMutableBufferPointer(rebasing: storage[..<count]), k) }
      /// The smallest after position k, once `select(k)` has run.
      func minimum(after k: Int) -> Double { storage[(k + 1)..<count].min()! }
    }

    /// Takes an equity curve of a known number of bars in consecutive pieces.
    public struct Accumulator {
      private let benchmark: BenchmarkReturns
      private let bars: Int
      private var fall = Drawdown()
      private var seen = 0
      private var first = 0.0
      private var previous = 0.0
      /// The returns of the block being filled.
      private var block: [Double]
      private var filled = 0
      private var blocks: [(count: Int, sum: Double, squares: Double, products: Double)] = []
      private var downsideSquares = (0.0, 0.0, 0.0, 0.0)
      private var zeros = 0
      /// Where the 5th percentile lies unless fewer than 5% of bars lost.
      private let negatives: NegativeReturns

      public init(benchmark: BenchmarkReturns, bars: Int) {
        self.benchmark = benchmark
        self.bars = bars
        block = [Double](repeating: 0, count: ReturnStatistics.blockSize)
        negatives = NegativeReturns(capacity: max(0, bars - 1))
      }

      /// The next `equity.count` bars of the curve; `timestamps` are all the bars'.
      public mutating func add(_ equity: UnsafeBufferPointer<Double>, timestamps: UnsafeBufferPointer<Int64>) {
        guard !equity.isEmpty else { return }
        fall.advance(equity, timestamps, startingAt: seen)
        let mayTouchZero = fall.lowestSoFar <= 0
        if seen == 0 {
          first = equity[0]
        } else {
          push(previous != 0 ? equity[0] / previous - 1 : 0)
        }
        var i = 0
        while i < equity.count - 1 {
          let (at, run) = (filled, min(ReturnStatistics.blockSize - filled, equity.count - 1 - i))
          block.withUnsafeMutableBufferPointer { block in
            ReturnStatistics.returns(
              of: equity, from: i, count: run, into: UnsafeMutableBufferPointer(rebasing: block[at...]), mayTouchZero: mayTouchZero)
          }
          filled += run
          i += run
          if filled == ReturnStatistics.blockSize { closeBlock() }
        }
        seen += equity.count
        previous = equity[equity.count - 1]
      }

      private mutating func push(_ value: Double) {
        block[filled] = value
        filled += 1
        if filled == ReturnStatistics.blockSize { closeBlock() }
      }

      /// The block's sum and downside, its negative returns kept, then its squares and
      /// products about its means, while it is in cache. Branch-free: in a position a
      /// return's sign is a coin flip.
      private mutating func closeBlock() {
        let length = filled
        guard length > 0 else { return }
        filled = 0
        let offset = blocks.count * ReturnStatistics.blockSize
        var negativeCount = negatives.count
        var zeros = 0
        var sum = (0.0, 0.0, 0.0, 0.0)
        var downside = downsideSquares
        block.withUnsafeBufferPointer { r in
          do {
            let negatives = negatives.storage
            func visit(_ value: Double, _ sum: inout Double, _ squares: inout Double) {
              sum += value
              let loss = min(value, 0)
              squares += loss * loss
              negatives[negativeCount] = value
              negativeCount &+= value < 0 ? 1 : 0
              zeros &+= value == 0 ? 1 : 0
            }
            var i = 0
            while i + 4 <= length {
              visit(r[i], &sum.0, &downside.0)
              visit(r[i + 1], &sum.1, &downside.1)
              visit(r[i + 2], &sum.2, &downside.2)
              visit(r[i + 3], &sum.3, &downside.3)
              i += 4
            }
            while i < length {
              visit(r[i], &sum.0, &downside.0)
              i += 1
            }
          }
        }
        negatives.count = negativeCount
        downsideSquares = downside
        self.zeros += zeros
        let blockSum = sum.0 + sum.1 + (sum.2 + sum.3)
        let blockMean = blockSum / Double(length)
        var squares = (0.0, 0.0, 0.0, 0.0)
        var products = (0.0, 0.0, 0.0, 0.0)
        let withBenchmark = benchmark.returns.count == bars - 1
        block.withUnsafeBufferPointer { r in
          benchmark.centered.withUnsafeBufferPointer { centered in
            func visit(_ i: Int, _ squares: inout Double, _ products: inout Double) {
              let difference = r[i] - blockMean
              squares += difference * difference
              if withBenchmark { products += difference * centered[offset + i] }
            }
            var i = 0
            while i + 4 <= length {
              visit(i, &squares.0, &products.0)
              visit(i + 1, &squares.1, &products.1)
              visit(i + 2, &squares.2, &products.2)
              visit(i + 3, &squares.3, &products.3)
              i += 4
            }
            while i < length {
              visit(i, &squares.0, &products.0)
              i += 1
            }
          }
        }
        blocks.append((length, blockSum, squares.0 + squares.1 + (squares.2 + squares.3), products.0 + products.1 + (products.2 + products.3)))
      }

      /// The statistics, once every bar has been added. Nil when fewer than 5% of the returns
      /// are negative and `allReturns` is not given: the 5th percentile then lies among
      /// returns that were not kept.
      public mutating func finish(timestamps: [Int64], allReturns: (() -> [Double])? = nil) -> ReturnStatistics? {
        precondition(seen == bars, "an accumulator for \(bars) bars was given \(seen)")
        closeBlock()
        var result = ReturnStatistics()
        result.bars = bars
        result.firstEquity = first
        result.lastEquity = previous
        (result.maxDrawdown, result.longestDrawdownDays) = timestamps.withUnsafeBufferPointer { fall.finish(lastIndex: bars - 1, $0) }
        guard bars > 1 else { return result }
        let n = bars - 1
        result.count = n
        let mean = blocks.reduce(0) { $0 + $1.sum } / Double(n)
        result.mean = mean
        result.downside = ((downsideSquares.0 + downsideSquares.1 + (downsideSquares.2 + downsideSquares.3)) / Double(n)).squareRoot()
        let withBenchmark = benchmark.returns.count == n
        var squareSum = 0.0
        var productSum = 0.0
        for (index, block) in blocks.enumerated() {
          let shift = block.sum / Double(block.count) - mean
          squareSum += block.squares + Double(block.count) * shift * shift
          if withBenchmark { productSum += block.products + Double(block.count) * shift * (benchmark.blockMeans[index] - benchmark.mean) }
        }
        result.deviation = n > 1 ? (squareSum / Double(n - 1)).squareRoot() : 0
        result.covariance = productSum

        // The 5th percentile as numpy takes it: interpolated between the order statistics around it.
        let position = 0.05 * Double(n - 1)
        let lower = Int(position.rounded(.down))
        let fraction = position - Double(lower)
        let (low, high): (Double, Double)
        var all: [Double]? = nil
        if lower + 1 < negatives.count {
          low = negatives.select(lower)
          high = negatives.minimum(after: lower)
        } else if lower + 1 < negatives.count + zeros {
          low = lower < negatives.count ? negatives.select(lower) : 0
          high = 0
        } else {
          guard var returns = allReturns?() else { return nil }
          low = Metrics.select(&returns, lower)
          high = lower + 1 < returns.count ? returns[(lower + 1)...].min()! : low
          all = returns
        }
        let var95 = fraction > 0 ? low + (high - low) * fraction : low
        result.var95 = var95
        // The tail at or below var_95.
        var tailSum = 0.0
        var tailCount = 0
        func take(_ values: UnsafeBufferPointer<Double>) {
          for value in values where value <= var95 {
            tailSum += value
            tailCount += 1
          }
        }
        if let all {
          all.withUnsafeBufferPointer(take)
        } else {
          take(UnsafeBufferPointer(start: negatives.storage.baseAddress, count: negatives.count))
          // Without all the returns var_95 is at most 0: the zero returns are in the tail when it is 0.
          if var95 >= 0 { tailCount += zeros }
        }
        result.cvar95 = tailCount == 0 ? 0 : tailSum / Double(tailCount)
        return result
      }
    }

    /// 1 - min(equity / running peak) and the longest time in days spent under a peak, fed
    /// the curve a piece at a time. Under a positive peak the lowest ratio is the trough's
    /// (division by a positive number is monotonic, rounding included), so most bars cost a
    /// comparison and a minimum.
    struct Drawdown {
      private var peak = -Double.infinity
      private var peakIndex = 0
      private var trough = Double.infinity
      private var lowestRatio = 1.0
      private var lowest = Double.infinity
      private var longest: Int64 = 0

      /// The lowest equity seen so far.
      var lowestSoFar: Double { min(lowest, trough) }

      /// The bars `offset ..< offset + equity.count`; `timestamps` are all the bars'.
      mutating func advance(_ equity: UnsafeBufferPointer<Double>, _ timestamps: UnsafeBufferPointer<Int64>, startingAt offset: Int) {
        // The running peak and trough in locals: as stored properties they would make a trip
        // through memory on every bar.
        var peak = peak
        var trough = trough
        for k in equity.indices {
          let value = equity[k]
          if value >= peak {
            self.trough = trough
            closeStretch(endingAt: offset + k - 1, timestamps)
            peak = value
            self.peak = value
            peakIndex = offset + k
            trough = .infinity
            lowest = min(lowest, value)
          } else if peak > 0 {
            trough = value < trough ? value : trough
          } else {
            // Only a curve starting at or below zero gets here.
            if value / peak < lowestRatio { lowestRatio = value / peak }
            lowest = min(lowest, value)
          }
        }
        self.trough = trough
      }

      private mutating func closeStretch(endingAt last: Int, _ timestamps: UnsafeBufferPointer<Int64>) {
        guard last > peakIndex else { return }
        if peak > 0, trough / peak < lowestRatio { lowestRatio = trough / peak }
        lowest = min(lowest, trough)
        longest = max(longest, timestamps[last] - timestamps[peakIndex])
      }

      /// Called after the last bar: the drawdown and its longest duration in days.
      mutating func finish(lastIndex: Int, _ timestamps: UnsafeBufferPointer<Int64>) -> (Double, Double) {
        closeStretch(endingAt: lastIndex, timestamps)
        return (1 - lowestRatio, Double(longest) / 86_400_000)
      }
    }

    /// equity[i + 1] / equity[i] - 1 for `count` bars from `start`, four at a time (the
    /// division is the cost), and 0 after a bar with no equity.
    static func returns(
      of equity: UnsafeBufferPointer<Double>, from start: Int, count: Int, into out: UnsafeMutableBufferPointer<Double>, mayTouchZero: Bool
    ) {
      var i = 0
      if !mayTouchZero {
        let source = UnsafeRawPointer(equity.baseAddress! + start)
        let target = UnsafeMutableRawPointer(out.baseAddress!)
        while i + 4 <= count {
          let now = source.loadUnaligned(fromByteOffset: i * 8, as: SIMD4<Double>.self)
          let next = source.loadUnaligned(fromByteOffset: (i + 1) * 8, as: SIMD4<Double>.self)
          target.storeBytes(of: next / now - 1, toByteOffset: i * 8, as: SIMD4<Double>.self)
          i += 4
        }
      }
      while i < count {
        let now = equity[start + i]
        out[i] = now != 0 ? equity[start + i + 1] / now - 1 : 0
        i += 1
      }
    }
  }

  static func perBarReturns(_ values: [Double]) -> [Double] {
    guard values.count > 1 else { return [] }
    return (1..<values.count).map { values[$0 - 1] != 0 ? values[$0] / values[$0 - 1] - 1 : 0 }
  }

  static func standardDeviation(_ values: [Double]) -> Double {
    guard values.count > 1 else { return 0 }
    let mean = values.reduce(0, +) / Double(values.count)
    return (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)).squareRoot()
  }

  /// Rearranges `values` so the k-th smallest is at index k. Quickselect with a branch-free
  /// partition: returns' order is a coin flip, so branching on each comparison mispredicts
  /// half the time. Many equal values can stall it; then Hoare's partition finishes.
  static func select(_ values: inout [Double], _ k: Int) -> Double {
    values.withUnsafeMutableBufferPointer { select($0, k) }
  }

  static func select(_ v: UnsafeMutableBufferPointer<Double>, _ k: Int) -> Double {
    do {
      var low = 0
      var high = v.count - 1
      var rounds = 0
      while low < high {
        rounds += 1
        if rounds > 64 { return hoareSelect(v, k, low, high) }
        // The median of three, moved to `high`, is the pivot.
        let middle = low + (high - low) / 2
        if v[middle] < v[low] { v.swapAt(middle, low) }
        if v[high] < v[low] { v.swapAt(high, low) }
        if v[middle] < v[high] { v.swapAt(middle, high) }
        let pivot = v[high]
        var store = low
        for i in low..<high {
          let value = v[i]
          v[i] = v[store]
          v[store] = value
          store += value < pivot ? 1 : 0
        }
        v.swapAt(store, high)
        if k < store { high = store - 1 } else if k > store { low = store + 1 } else { return v[k] }
      }
      return v[k]
    }
  }

  private static func hoareSelect(_ values: UnsafeMutableBufferPointer<Double>, _ k: Int, _ low: Int, _ high: Int) -> Double {
    var low = low
    var high = high
    while low < high {
      let pivot = values[(low + high) / 2]
      var i = low
      var j = high
      while i <= j {
        while values[i] < pivot { i += 1 }
        while values[j] > pivot { j -= 1 }
        if i <= j {
          values.swapAt(i, j)
          i += 1
          j -= 1
        }
      }
      if k <= j { high = j } else if k >= i { low = i } else { return values[k] }
    }
    return values[k]
  }

}

/// A benchmark curve's per-bar returns with their mean and (unnormalised) variance, and per
/// block of `Metrics.ReturnStatistics.blockSize` returns, the block's mean and the returns
/// less it: what a strategy's returns are paired with for the covariance.
public struct BenchmarkReturns: Sendable {
  public let returns: [Double]
  public let mean: Double
  public let variance: Double
  let blockMeans: [Double]
  let centered: [Double]

  public init(_ curve: [Double]) {
    let returns = Metrics.perBarReturns(curve)
    let mean = returns.isEmpty ? 0 : returns.reduce(0, +) / Double(returns.count)
    self.returns = returns
    self.mean = mean
    variance = returns.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
    let size = Metrics.ReturnStatistics.blockSize
    var blockMeans: [Double] = []
    var centered = [Double](repeating: 0, count: returns.count)
    for start in stride(from: 0, to: returns.count, by: size) {
      let block = returns[start..<min(start + size, returns.count)]
      let blockMean = block.reduce(0, +) / Double(block.count)
      blockMeans.append(blockMean)
      for i in block.indices { centered[i] = returns[i] - blockMean }
    }
    self.blockMeans = blockMeans
    self.centered = centered
  }
}

extension Metrics {
  /// JSON can't carry infinity; a profit factor with no losses is reported as null.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    for field in Self.fields {
      let number = field.read(self)
      if field.isCount {
        try container.encode(Int(number), forKey: field.key)
      } else if number.isFinite {
        try container.encode(number, forKey: field.key)
      } else {
        try container.encodeNil(forKey: field.key)
      }
    }
  }
}
