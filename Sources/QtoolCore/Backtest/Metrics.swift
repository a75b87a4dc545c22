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

  /// Definitions, for `qtool help metrics` and the man page.
  public static let definitions: [(String, String)] = [
    ("start_equity", "capital at the start"),
    ("final_equity", "equity at the last close"),
    ("total_return", "final_equity / start_equity - 1"),
    ("annualized_return", "mean per-bar return x bars per year"),
    ("cagr", "(final_equity / start_equity)^(365.25 / days) - 1, over calendar time"),
    ("volatility", "standard deviation of per-bar returns (n-1) x sqrt(bars per year)"),
    ("sharpe", "mean / standard deviation of per-bar returns x sqrt(bars per year); risk-free rate 0"),
    ("sortino", "mean per-bar return / downside deviation (root mean square of negative returns) x sqrt(bars per year)"),
    ("calmar", "cagr / |max_drawdown|"),
    ("max_drawdown", "the largest fall from a running equity peak, negative: min(equity / running max - 1)"),
    ("max_drawdown_duration", "the longest time in days from an equity peak until equity exceeds it again (or the end)"),
    ("beta", "covariance of per-bar returns with the benchmark's / the benchmark's variance"),
    ("alpha", "(mean return - beta x mean benchmark return) x bars per year"),
    ("var_95", "historical 95% value at risk: the 5th percentile of per-bar returns"),
    ("cvar_95", "mean of the per-bar returns at or below var_95"),
    ("trades", "closed trades"),
    ("winning", "trades with pnl > 0"),
    ("losing", "trades with pnl <= 0"),
    ("win_rate", "winning / trades"),
    ("avg_win", "mean return of winning trades"),
    ("avg_loss", "mean return of losing trades"),
    ("best", "best trade return"),
    ("worst", "worst trade return"),
    ("profit_factor", "gross profit / gross loss of trades"),
    ("expectancy", "mean trade pnl in cash"),
    ("sqn", "system quality number: sqrt(trades) x mean pnl / standard deviation of pnl"),
    ("max_consecutive_wins", "longest run of winning trades"),
    ("max_consecutive_losses", "longest run of losing trades"),
    ("avg_holding_time", "mean trade duration in days"),
    ("exposure", "fraction of bars that close with a position open"),
    ("buy_and_hold_return", "last close / first close - 1 over the same bars"),
    ("commissions", "commission paid, in cash"),
  ]

  /// Every finite metric by name (counts as numbers); a profit factor with no losses is left
  /// out, as it is null in JSON.
  public var values: [String: Double] {
    var result: [String: Double] = [:]
    for (child, key) in zip(Mirror(reflecting: self).children, CodingKeys.allCases) {
      if let number = child.value as? Double, number.isFinite {
        result[key.rawValue] = number
      } else if let count = child.value as? Int {
        result[key.rawValue] = Double(count)
      }
    }
    return result
  }

  public func value(_ name: String) -> Double? { values[name] }

  public static func compute(_ outcome: BacktestOutcome, bars: BarSeries, barsPerYear: Double, benchmark: [Double]? = nil) -> Metrics {
    compute(outcome, bars: bars, barsPerYear: barsPerYear, benchmark: BenchmarkReturns(benchmark ?? bars.close))
  }

  /// With the benchmark's returns computed once: a grid shares them between combinations.
  public static func compute(_ outcome: BacktestOutcome, bars: BarSeries, barsPerYear: Double, benchmark: BenchmarkReturns) -> Metrics {
    let equity = outcome.equity
    let start = equity.first ?? 0
    let final = equity.last ?? 0
    let curve = ReturnStatistics(equity, benchmark: benchmark, timestamps: bars.timestamps)
    let (mean, deviation, downside) = (curve.mean, curve.deviation, curve.downside)
    let days = Double((bars.timestamps.last ?? 0) - (bars.timestamps.first ?? 0)) / 86_400_000
    let cagr = days > 0 && start > 0 && final > 0 ? pow(final / start, 365.25 / days) - 1 : 0
    let (maxDrawdown, longest) = (curve.maxDrawdown, curve.longestDrawdownDays)
    var beta = 0.0
    var alpha = 0.0
    if benchmark.returns.count == curve.count, curve.count > 1 {
      beta = benchmark.variance > 0 ? curve.covariance / benchmark.variance : 0
      alpha = (mean - beta * benchmark.mean) * barsPerYear
    }
    let (var95, cvar95) = (curve.var95, curve.cvar95)

    let trades = outcome.trades
    let wins = trades.filter { $0.pnl > 0 }
    let losses = trades.filter { $0.pnl <= 0 }
    let grossProfit = wins.reduce(0) { $0 + $1.pnl }
    let grossLoss = -losses.reduce(0) { $0 + $1.pnl }
    let pnls = trades.map(\.pnl)
    let meanPnl = pnls.isEmpty ? 0 : pnls.reduce(0, +) / Double(pnls.count)
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
    func average(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
    return Metrics(
      startEquity: start, finalEquity: final, totalReturn: start > 0 ? final / start - 1 : 0, annualizedReturn: mean * barsPerYear,
      cagr: cagr, volatility: deviation * barsPerYear.squareRoot(),
      sharpe: deviation > 0 ? mean / deviation * barsPerYear.squareRoot() : 0,
      sortino: downside > 0 ? mean / downside * barsPerYear.squareRoot() : 0,
      calmar: maxDrawdown > 0 ? cagr / maxDrawdown : 0, maxDrawdown: -maxDrawdown, maxDrawdownDuration: longest, beta: beta, alpha: alpha,
      var95: var95, cvar95: cvar95, trades: trades.count, winning: wins.count, losing: losses.count,
      winRate: trades.isEmpty ? 0 : Double(wins.count) / Double(trades.count), avgWin: average(wins.map(\.returnPct)),
      avgLoss: average(losses.map(\.returnPct)), best: trades.map(\.returnPct).max() ?? 0, worst: trades.map(\.returnPct).min() ?? 0,
      profitFactor: grossLoss > 0 ? grossProfit / grossLoss : (grossProfit > 0 ? .infinity : 0), expectancy: meanPnl,
      sqn: pnlDeviation > 0 ? Double(pnls.count).squareRoot() * meanPnl / pnlDeviation : 0, maxConsecutiveWins: run.maxWins,
      maxConsecutiveLosses: run.maxLosses, avgHoldingDays: average(holding),
      exposure: equity.isEmpty ? 0 : Double(outcome.exposedBars) / Double(equity.count),
      buyAndHoldReturn: (bars.close.first ?? 0) > 0 ? bars.close.last! / bars.close.first! - 1 : 0, commissions: outcome.commissions)
  }

  /// Everything the metrics need from the per-bar returns of an equity curve, in two passes
  /// over the curve without storing the returns: a grid computes this per combination. Sums
  /// run in bar order, as a plain reduce over the returns would.
  struct ReturnStatistics {
    var count = 0
    var mean = 0.0
    var deviation = 0.0
    var downside = 0.0
    var covariance = 0.0
    var maxDrawdown = 0.0
    var longestDrawdownDays = 0.0
    var var95 = 0.0
    var cvar95 = 0.0

    init(_ equity: [Double], benchmark: BenchmarkReturns, timestamps: [Int64]) {
      self = equity.withUnsafeBufferPointer { equity in
        timestamps.withUnsafeBufferPointer { timestamps in Self(equity, benchmark: benchmark, timestamps: timestamps) }
      }
    }

    private init(_ equity: UnsafeBufferPointer<Double>, benchmark: BenchmarkReturns, timestamps: UnsafeBufferPointer<Int64>) {
      var peak = -Double.infinity
      var peakTime = timestamps.first ?? 0
      var longest: Int64 = 0
      // max(1 - equity / peak) is 1 - min(equity / peak): rounding is monotonic, so the same
      // number, without a max of the difference on every bar's dependency chain.
      var lowestRatio = 1.0
      for i in equity.indices {
        if equity[i] >= peak {
          peak = equity[i]
          peakTime = timestamps[i]
        } else {
          let ratio = equity[i] / peak
          if ratio < lowestRatio { lowestRatio = ratio }
          longest = max(longest, timestamps[i] - peakTime)
        }
      }
      maxDrawdown = 1 - lowestRatio
      longestDrawdownDays = Double(longest) / 86_400_000
      guard equity.count > 1 else { return }
      count = equity.count - 1
      let n = count
      // Pass 1: the returns, their mean, the downside, and the negative returns (where the
      // 5th percentile lies unless fewer than 5% of bars lost): selecting among them is
      // selecting among all. Branch-free: in a position a return's sign is a coin flip.
      var sum = 0.0
      var downsideSquares = 0.0
      var zeros = 0
      var negativeCount = 0
      let returns = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
        for i in 0..<n { buffer[i] = equity[i] != 0 ? equity[i + 1] / equity[i] - 1 : 0 }
        initialized = n
      }
      var negatives = [Double](unsafeUninitializedCapacity: n) { buffer, initialized in
        returns.withUnsafeBufferPointer { returns in
          for value in returns {
            sum += value
            let loss = min(value, 0)
            downsideSquares += loss * loss
            buffer[negativeCount] = value
            negativeCount += value < 0 ? 1 : 0
            zeros += value == 0 ? 1 : 0
          }
        }
        initialized = negativeCount
      }
      mean = sum / Double(count)
      downside = (downsideSquares / Double(count)).squareRoot()
      // The quantile as `Metrics.quantile` over the sorted returns.
      let position = 0.05 * Double(count - 1)
      let lower = Int(position.rounded(.down))
      let fraction = position - Double(lower)
      func orderStatistics() -> (Double, Double) {
        if lower + 1 < negatives.count {
          let low = Metrics.select(&negatives, lower)
          return (low, negatives[(lower + 1)...].min()!)
        }
        if lower < negatives.count {
          // The next order statistic is the smallest return that is not negative.
          let smallest = zeros > 0 ? 0 : returns.lazy.filter { $0 >= 0 }.min() ?? .infinity
          return (Metrics.select(&negatives, lower), smallest)
        }
        if lower + 1 < negatives.count + zeros { return (0, 0) }
        var all = returns
        let low = Metrics.select(&all, lower)
        return (low, lower + 1 < all.count ? all[(lower + 1)...].min()! : low)
      }
      let (low, high) = orderStatistics()
      var95 = fraction > 0 ? low + (high - low) * fraction : low
      // Pass 2: deviation, covariance with the benchmark, and the tail at or below var_95.
      var squares = 0.0
      var covarianceSum = 0.0
      var tailSum = 0.0
      var tailCount = 0
      let threshold = var95
      returns.withUnsafeBufferPointer { returns in
        if benchmark.returns.count == n {
          benchmark.returns.withUnsafeBufferPointer { benchmarkReturns in
            for i in 0..<n { covarianceSum += (returns[i] - mean) * (benchmarkReturns[i] - benchmark.mean) }
          }
        }
        for value in returns {
          squares += (value - mean) * (value - mean)
          let inTail = value <= threshold
          tailSum += inTail ? value : 0
          tailCount += inTail ? 1 : 0
        }
      }
      deviation = count > 1 ? (squares / Double(count - 1)).squareRoot() : 0
      covariance = covarianceSum
      cvar95 = tailCount == 0 ? 0 : tailSum / Double(tailCount)
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

  /// The same value as `quantile(sorted, q)` without sorting: two quickselects, O(n), which
  /// matters when a grid computes metrics for every combination.
  static func quantileBySelection(_ values: [Double], _ q: Double) -> Double {
    var work = values
    let position = q * Double(work.count - 1)
    let lower = Int(position.rounded(.down))
    let low = select(&work, lower)
    guard lower + 1 < work.count, position > Double(lower) else { return low }
    // After selecting `lower`, everything right of it is ≥ it: the next order statistic is their minimum.
    let high = work[(lower + 1)...].min()!
    return low + (high - low) * (position - Double(lower))
  }

  /// Rearranges `values` so the k-th smallest is at index k (Hoare's quickselect).
  static func select(_ values: inout [Double], _ k: Int) -> Double {
    var low = 0
    var high = values.count - 1
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

  static func quantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let upper = min(lower + 1, sorted.count - 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
  }
}

/// A benchmark curve's per-bar returns with their mean and (unnormalised) variance.
public struct BenchmarkReturns: Sendable {
  public let returns: [Double]
  public let mean: Double
  public let variance: Double

  public init(_ curve: [Double]) {
    let returns = Metrics.perBarReturns(curve)
    let mean = returns.isEmpty ? 0 : returns.reduce(0, +) / Double(returns.count)
    self.returns = returns
    self.mean = mean
    variance = returns.reduce(0) { $0 + ($1 - mean) * ($1 - mean) }
  }
}

extension Metrics {
  /// JSON can't carry infinity; a profit factor with no losses is reported as null.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    let mirror = Mirror(reflecting: self)
    for (child, key) in zip(mirror.children, CodingKeys.allCases) {
      if let number = child.value as? Double {
        if number.isFinite { try container.encode(number, forKey: key) } else { try container.encodeNil(forKey: key) }
      } else if let count = child.value as? Int {
        try container.encode(count, forKey: key)
      }
    }
  }
}
