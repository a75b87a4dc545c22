/// Technical indicators over whole columns, following TA-Lib's definitions so results agree
/// with it: values before an indicator has enough history are NaN ("warm-up"), EMAs are
/// seeded with the SMA of their first `n` values, RSI and ATR use Wilder's smoothing, and
/// standard deviations are population ones (divide by n).
///
/// Every function returns a column as long as its input.
public enum Indicators {
  public static func sma(_ x: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, x.count >= n else { return out }
    if x.allSatisfy(\.isFinite) {
      // Prices, and most inputs: the plain rolling sum, with no test per value in the loop.
      var sum = 0.0
      for i in 0..<x.count {
        sum += x[i]
        if i >= n { sum -= x[i - n] }
        if i >= n - 1 { out[i] = sum / Double(n) }
      }
      return out
    }
    // Values that are not finite (another indicator's warm-up NaNs, a division by zero) stay out
    // of the rolling sum, where one would poison every later value: a window holding one is NaN
    // (or infinite), as its plain sum would be, and the windows after it are whole again.
    var sum = 0.0
    var (nans, positive, negative) = (0, 0, 0)
    for i in 0..<x.count {
      let value = x[i]
      if value.isFinite { sum += value } else if value.isNaN { nans += 1 } else if value > 0 { positive += 1 } else { negative += 1 }
      if i >= n {
        let old = x[i - n]
        if old.isFinite { sum -= old } else if old.isNaN { nans -= 1 } else if old > 0 { positive -= 1 } else { negative -= 1 }
      }
      if i >= n - 1 {
        out[i] =
          nans > 0 || (positive > 0 && negative > 0)
          ? .nan : positive > 0 ? .infinity : negative > 0 ? -.infinity : sum / Double(n)
      }
    }
    // Re-sum periodically would cost more than it saves; rolling sums drift by ~1e-15 relative.
    return out
  }

  /// Exponential moving average, k = 2/(n+1), seeded with the SMA of the first `n` valid values.
  public static func ema(_ x: [Double], _ n: Int) -> [Double] {
    emaWithFactor(x, n, 2.0 / Double(n + 1))
  }

  static func emaWithFactor(_ x: [Double], _ n: Int, _ k: Double) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, let start = x.firstIndex(where: { !$0.isNaN }), x.count - start >= n else { return out }
    var value = 0.0
    for i in start..<(start + n) { value += x[i] }
    value /= Double(n)
    out[start + n - 1] = value
    for i in (start + n)..<x.count {
      value = (x[i] - value) * k + value
      out[i] = value
    }
    return out
  }

  /// Weighted moving average with weights 1…n (the newest weighs n).
  public static func wma(_ x: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, x.count >= n else { return out }
    let divisor = Double(n * (n + 1) / 2)
    for i in (n - 1)..<x.count {
      var sum = 0.0
      for j in 0..<n { sum += x[i - n + 1 + j] * Double(j + 1) }
      out[i] = sum / divisor
    }
    return out
  }

  /// Relative strength index with Wilder's smoothing; first value at index n.
  /// An input that starts undefined (another indicator's warm-up, a lag) starts the RSI at its
  /// first value, as the EMA does: Wilder's smoothing would carry a NaN to every later bar.
  public static func rsi(_ x: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, let start = x.firstIndex(where: { !$0.isNaN }), x.count - start > n else { return out }
    var gain = 0.0
    var loss = 0.0
    for i in (start + 1)...(start + n) {
      let change = x[i] - x[i - 1]
      if change > 0 { gain += change } else { loss -= change }
    }
    gain /= Double(n)
    loss /= Double(n)
    func value() -> Double { gain + loss == 0 ? 0 : 100 * gain / (gain + loss) }
    out[start + n] = value()
    if start + n + 1 < x.count {
      for i in (start + n + 1)..<x.count {
        let change = x[i] - x[i - 1]
        gain = (gain * Double(n - 1) + max(change, 0)) / Double(n)
        loss = (loss * Double(n - 1) + max(-change, 0)) / Double(n)
        out[i] = value()
      }
    }
    return out
  }

  /// MACD line, signal line and histogram (TA-Lib alignment: all start at slow+signal-2).
  public static func macd(_ x: [Double], fast: Int = 12, slow: Int = 26, signal: Int = 9) -> (macd: [Double], signal: [Double], histogram: [Double]) {
    let count = x.count
    var line = [Double](repeating: .nan, count: count)
    var signalLine = [Double](repeating: .nan, count: count)
    var histogram = [Double](repeating: .nan, count: count)
    let (fast, slow) = fast <= slow ? (fast, slow) : (slow, fast)
    guard fast >= 1, signal >= 1, count >= slow + signal - 1 else { return (line, signalLine, histogram) }
    // TA-Lib seeds the fast EMA on the `fast` values ending where the slow EMA starts.
    var fastInput = [Double](repeating: .nan, count: count)
    for i in (slow - fast)..<count { fastInput[i] = x[i] }
    let fastEMA = ema(fastInput, fast)
    let slowEMA = ema(x, slow)
    for i in (slow - 1)..<count { line[i] = fastEMA[i] - slowEMA[i] }
    let signalEMA = ema(line, signal)
    let first = slow + signal - 2
    for i in first..<count {
      signalLine[i] = signalEMA[i]
      histogram[i] = line[i] - signalEMA[i]
    }
    for i in 0..<first { line[i] = .nan }
    return (line, signalLine, histogram)
  }

  /// Population standard deviation over n values.
  public static func stddev(_ x: [Double], _ n: Int) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, x.count >= n else { return out }
    for i in (n - 1)..<x.count {
      var mean = 0.0
      for j in (i - n + 1)...i { mean += x[j] }
      mean /= Double(n)
      var squares = 0.0
      for j in (i - n + 1)...i { squares += (x[j] - mean) * (x[j] - mean) }
      out[i] = (squares / Double(n)).squareRoot()
    }
    return out
  }

  /// Bollinger bands: SMA ± k population standard deviations.
  public static func bollinger(_ x: [Double], _ n: Int = 20, _ k: Double = 2) -> (upper: [Double], middle: [Double], lower: [Double]) {
    let middle = sma(x, n)
    let deviation = stddev(x, n)
    var upper = middle
    var lower = middle
    for i in 0..<x.count {
      upper[i] = middle[i] + k * deviation[i]
      lower[i] = middle[i] - k * deviation[i]
    }
    return (upper, middle, lower)
  }

  /// Average true range with Wilder's smoothing; first value at index n.
  public static func atr(high: [Double], low: [Double], close: [Double], _ n: Int) -> [Double] {
    let count = close.count
    var out = [Double](repeating: .nan, count: count)
    guard n >= 1, count > n else { return out }
    var trueRange = [Double](repeating: .nan, count: count)
    for i in 1..<count {
      trueRange[i] = max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
    }
    var value = 0.0
    for i in 1...n { value += trueRange[i] }
    value /= Double(n)
    out[n] = value
    if n + 1 < count {
      for i in (n + 1)..<count {
        value = (value * Double(n - 1) + trueRange[i]) / Double(n)
        out[i] = value
      }
    }
    return out
  }

  /// (x − SMA) / population standard deviation over n.
  public static func zscore(_ x: [Double], _ n: Int) -> [Double] {
    let mean = sma(x, n)
    let deviation = stddev(x, n)
    return (0..<x.count).map { deviation[$0] == 0 ? 0 : (x[$0] - mean[$0]) / deviation[$0] }.enumerated().map {
      mean[$0.offset].isNaN ? .nan : $0.element
    }
  }

  /// Rate of change in percent: (x / x[n bars ago] − 1) · 100.
  public static func roc(_ x: [Double], _ n: Int) -> [Double] {
    (0..<x.count).map { i in i >= n && x[i - n] != 0 ? (x[i] / x[i - n] - 1) * 100 : .nan }
  }

  /// Highest value of the last n bars, including this one.
  public static func highest(_ x: [Double], _ n: Int) -> [Double] {
    window(x, n) { $0.max()! }
  }

  public static func lowest(_ x: [Double], _ n: Int) -> [Double] {
    window(x, n) { $0.min()! }
  }

  /// Simple return over n bars: x / x[n ago] − 1.
  public static func returns(_ x: [Double], _ n: Int = 1) -> [Double] {
    (0..<x.count).map { i in i >= n && x[i - n] != 0 ? x[i] / x[i - n] - 1 : .nan }
  }

  public static func logReturns(_ x: [Double], _ n: Int = 1) -> [Double] {
    (0..<x.count).map { i in i >= n && x[i - n] > 0 && x[i] > 0 ? Foundation_log(x[i] / x[i - n]) : .nan }
  }

  private static func window(_ x: [Double], _ n: Int, _ reduce: (ArraySlice<Double>) -> Double) -> [Double] {
    var out = [Double](repeating: .nan, count: x.count)
    guard n >= 1, x.count >= n else { return out }
    for i in (n - 1)..<x.count { out[i] = reduce(x[(i - n + 1)...i]) }
    return out
  }
}

#if canImport(Glibc)
  import Glibc
  @inline(__always) func Foundation_log(_ x: Double) -> Double { Glibc.log(x) }
#elseif canImport(Darwin)
  import Darwin
  @inline(__always) func Foundation_log(_ x: Double) -> Double { Darwin.log(x) }
#endif
