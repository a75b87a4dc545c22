/// Evaluates expressions over whole columns. Each distinct sub-expression (by its canonical
/// text) is computed once and shared between rules, so `sma(close, 20)` in entry and exit
/// costs one pass. Conditions are columns of 1 (true) and 0 (false); NaN compares false.
public final class RuleEvaluator {
  public let bars: BarSeries
  /// What each `model("name")` reads.
  public let models: [String: any ModelSeries]
  private var cache: [String: [Double]] = [:]
  /// The opposite direction of the last cross computed.
  private var pendingCross: (key: String, column: [Bool])?

  public init(bars: BarSeries, models: [String: any ModelSeries] = [:]) {
    self.bars = bars
    self.models = models
  }

  /// Open and close interleaved (open₀, close₀, open₁, …), as the backtest engine reads them.
  public private(set) lazy var openAndClose: [Double] = [Double](unsafeUninitializedCapacity: 2 * bars.count) { buffer, initialized in
    for i in 0..<bars.count {
      buffer[2 * i] = bars.open[i]
      buffer[2 * i + 1] = bars.close[i]
    }
    initialized = 2 * bars.count
  }

  public func evaluate(_ expression: Expression) -> [Double] {
    // Only indicator calls and models are kept: they are what rules share and what a grid
    // reuses across combinations; keeping every comparison would grow without bound over a grid.
    switch expression {
    case .call(let name, _) where !["cross_above", "cross_below", "abs", "min", "max"].contains(name): break
    case .model: break
    default: return compute(expression)
    }
    let key = expression.description
    if let cached = cache[key] { return cached }
    let result = compute(expression)
    cache[key] = result
    return result
  }

  /// A condition as booleans (NaN and 0 are false).
  public func condition(_ expression: Expression) -> [Bool] {
    booleans(expression) ?? evaluate(expression).map { $0 != 0 && !$0.isNaN }
  }

  /// `compute(expression) == 1` for the nodes whose value is 0 or 1 (comparisons, crosses,
  /// and, or, not), computed straight into booleans: a rule's conditions never build the
  /// columns of doubles that `compute` would. Nil for other nodes.
  private func booleans(_ expression: Expression) -> [Bool]? {
    let count = bars.count
    func column(_ body: (UnsafeMutableBufferPointer<Bool>) -> Void) -> [Bool] {
      [Bool](unsafeUninitializedCapacity: count) { buffer, initialized in
        body(buffer)
        initialized = count
      }
    }
    /// An operand of and/or as `compute` sees it: true exactly when its value is 1.
    func isOne(_ operand: Expression) -> [Bool] { booleans(operand) ?? evaluate(operand).map { $0 == 1 } }
    switch expression {
    case .call(let name, let arguments) where name == "cross_above" || name == "cross_below":
      // x crossing above y: cross_below(a, b) is b crossing above a.
      let (x, y) = name == "cross_above" ? (arguments[0], arguments[1]) : (arguments[1], arguments[0])
      let key = Self.crossKey(x, above: y)
      if let sibling = pendingCross, sibling.key == key {
        pendingCross = nil
        return sibling.column
      }
      let (upward, downward) = crosses(evaluate(x), evaluate(y))
      // Rules usually ask for both directions of one pair (entry and exit): the other one
      // costs nothing more now, and is kept until the next cross is asked for.
      pendingCross = (Self.crossKey(y, above: x), downward)
      return upward
    case .binary(let op, let lhs, let rhs) where ["<", "<=", ">", ">=", "==", "!="].contains(op):
      let a = evaluate(lhs)
      let b = evaluate(rhs)
      return column { out in
        a.withUnsafeBufferPointer { a in
          b.withUnsafeBufferPointer { b in
            switch op {
            case "<": for i in 0..<count { out[i] = a[i] < b[i] }
            case "<=": for i in 0..<count { out[i] = a[i] <= b[i] }
            case ">": for i in 0..<count { out[i] = a[i] > b[i] }
            case ">=": for i in 0..<count { out[i] = a[i] >= b[i] }
            case "==": for i in 0..<count { out[i] = a[i] == b[i] }
            default: for i in 0..<count { out[i] = !a[i].isNaN && !b[i].isNaN && a[i] != b[i] }
            }
          }
        }
      }
    case .binary(let op, let lhs, let rhs) where op == "and" || op == "or":
      let a = isOne(lhs)
      let b = isOne(rhs)
      return column { out in
        if op == "and" {
          for i in 0..<count { out[i] = a[i] && b[i] }
        } else {
          for i in 0..<count { out[i] = a[i] || b[i] }
        }
      }
    case .not(let inner):
      return condition(inner).map { !$0 }
    default:
      return nil
    }
  }

  private static func crossKey(_ x: Expression, above y: Expression) -> String { "\(x) ↑ \(y)" }

  /// Where a crosses above b and where it crosses below, as backtesting.py's crossover:
  /// strictly on one side on the previous bar, strictly on the other now. Branch-free.
  private func crosses(_ a: [Double], _ b: [Double]) -> (upward: [Bool], downward: [Bool]) {
    let count = bars.count
    var downward = [Bool](repeating: false, count: count)
    let upward = [Bool](unsafeUninitializedCapacity: count) { up, initialized in
      downward.withUnsafeMutableBufferPointer { down in
        a.withUnsafeBufferPointer { a in
          b.withUnsafeBufferPointer { b in
            var wasAbove = false
            var wasBelow = false
            for i in 0..<count {
              let above = a[i] > b[i]
              let below = a[i] < b[i]
              up[i] = wasBelow && above
              down[i] = wasAbove && below
              wasAbove = above
              wasBelow = below
            }
          }
        }
      }
      initialized = count
    }
    return (upward, downward)
  }

  private func compute(_ expression: Expression) -> [Double] {
    let count = bars.count
    switch expression {
    case .constant(let value): return [Double](repeating: value, count: count)
    case .flag(let value): return [Double](repeating: value ? 1 : 0, count: count)
    case .column(let name):
      // A feature column is there: `CompiledStrategy.checkColumns` made sure the data has it.
      return bars.column(named: name) ?? [Double](repeating: .nan, count: count)
    case .lag(let inner, let n):
      let x = evaluate(inner)
      return (0..<count).map { $0 >= n ? x[$0 - n] : .nan }
    case .negate(let inner): return evaluate(inner).map { -$0 }
    case .not(let inner): return evaluate(inner).map { $0 != 0 && !$0.isNaN ? 0 : 1 }
    case .model(let name):
      guard let source = models[name] else { return [Double](repeating: .nan, count: count) }
      let values = source.predictions(for: bars)
      return values.count == count ? values : [Double](repeating: .nan, count: count)
    case .binary(let op, let lhs, let rhs):
      let a = evaluate(lhs)
      let b = evaluate(rhs)
      var out = [Double](repeating: 0, count: count)
      switch op {
      case "+": for i in 0..<count { out[i] = a[i] + b[i] }
      case "-": for i in 0..<count { out[i] = a[i] - b[i] }
      case "*": for i in 0..<count { out[i] = a[i] * b[i] }
      case "/": for i in 0..<count { out[i] = a[i] / b[i] }
      case "<": for i in 0..<count { out[i] = a[i] < b[i] ? 1 : 0 }
      case "<=": for i in 0..<count { out[i] = a[i] <= b[i] ? 1 : 0 }
      case ">": for i in 0..<count { out[i] = a[i] > b[i] ? 1 : 0 }
      case ">=": for i in 0..<count { out[i] = a[i] >= b[i] ? 1 : 0 }
      case "==": for i in 0..<count { out[i] = a[i] == b[i] ? 1 : 0 }
      case "!=": for i in 0..<count { out[i] = !a[i].isNaN && !b[i].isNaN && a[i] != b[i] ? 1 : 0 }
      case "and": for i in 0..<count { out[i] = a[i] == 1 && b[i] == 1 ? 1 : 0 }
      default: for i in 0..<count { out[i] = a[i] == 1 || b[i] == 1 ? 1 : 0 }
      }
      return out
    case .call(let name, let arguments):
      func series(_ index: Int) -> [Double] { evaluate(arguments[index]) }
      func period(_ index: Int) -> Int {
        if case .constant(let value) = arguments[index] { return Swift.max(1, Expression.bars(value)) }
        return 1
      }
      switch name {
      case "sma": return Indicators.sma(series(0), period(1))
      case "ema": return Indicators.ema(series(0), period(1))
      case "wma": return Indicators.wma(series(0), period(1))
      case "rsi": return Indicators.rsi(series(0), period(1))
      case "macd": return Indicators.macd(series(0), fast: period(1), slow: period(2), signal: period(3)).macd
      case "macd_signal": return Indicators.macd(series(0), fast: period(1), slow: period(2), signal: period(3)).signal
      case "macd_hist": return Indicators.macd(series(0), fast: period(1), slow: period(2), signal: period(3)).histogram
      case "bb_upper", "bb_mid", "bb_lower":
        let k = { if case .constant(let value) = arguments[2] { return value } else { return 2 } }()
        let bands = Indicators.bollinger(series(0), period(1), k)
        return name == "bb_upper" ? bands.upper : name == "bb_mid" ? bands.middle : bands.lower
      case "atr": return Indicators.atr(high: bars.high, low: bars.low, close: bars.close, period(0))
      case "stddev": return Indicators.stddev(series(0), period(1))
      case "zscore": return Indicators.zscore(series(0), period(1))
      case "roc": return Indicators.roc(series(0), period(1))
      case "highest": return Indicators.highest(series(0), period(1))
      case "lowest": return Indicators.lowest(series(0), period(1))
      case "returns": return Indicators.returns(series(0), period(1))
      case "log_returns": return Indicators.logReturns(series(0), period(1))
      case "forward_return":
        let (x, n) = (series(0), period(1))
        return (0..<count).map { i in i + n < count && x[i] != 0 ? x[i + n] / x[i] - 1 : .nan }
      case "future":
        let (x, n) = (series(0), period(1))
        return (0..<count).map { i in i + n < count ? x[i + n] : .nan }
      case "abs": return series(0).map { abs($0) }
      // Undefined in, undefined out, whichever side: Swift.max(1, .nan) is 1 but
      // Swift.max(.nan, 1) is NaN, so a gate on max(1, sharpe) passed a run without trades.
      case "min": return zip(series(0), series(1)).map { $0.isNaN || $1.isNaN ? .nan : Swift.min($0, $1) }
      case "max": return zip(series(0), series(1)).map { $0.isNaN || $1.isNaN ? .nan : Swift.max($0, $1) }
      case "cross_above", "cross_below": return booleans(expression)!.map { $0 ? 1 : 0 }
      default: return [Double](repeating: .nan, count: count)
      }
    }
  }
}
