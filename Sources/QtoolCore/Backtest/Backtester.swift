import Foundation

/// One closed trade.
public struct Trade: Encodable, Sendable, Equatable {
  public enum Reason: String, Codable, Sendable { case signal, stop, target, trailing, end, halt }
  public var side: String
  public var size: Double
  public var entryBar: Int
  public var entryTime: Int64
  public var entryPrice: Double
  public var exitBar: Int
  public var exitTime: Int64
  public var exitPrice: Double
  public var pnl: Double
  public var returnPct: Double
  public var commission: Double
  public var reason: Reason
  /// The symbol traded: set on every trade a run reports (a portfolio trades several).
  public var symbol: String?

  public init(
    side: String, size: Double, entryBar: Int, entryTime: Int64, entryPrice: Double, exitBar: Int, exitTime: Int64, exitPrice: Double,
    pnl: Double, returnPct: Double, commission: Double, reason: Reason, symbol: String? = nil
  ) {
    self.symbol = symbol
    self.side = side
    self.size = size
    self.entryBar = entryBar
    self.entryTime = entryTime
    self.entryPrice = entryPrice
    self.exitBar = exitBar
    self.exitTime = exitTime
    self.exitPrice = exitPrice
    self.pnl = pnl
    self.returnPct = returnPct
    self.commission = commission
    self.reason = reason
  }

  enum CodingKeys: String, CodingKey {
    case symbol, side, size, entryTime = "entry_time", entryPrice = "entry_price", exitTime = "exit_time", exitPrice = "exit_price", pnl
    case returnPct = "return", commission, reason
  }

  /// Times as ISO-8601 UTC; the bar indexes are the engine's business, not the JSON's.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(symbol, forKey: .symbol)
    try container.encode(side, forKey: .side)
    try container.encode(size, forKey: .size)
    try container.encode(UTCCalendar.format(entryTime, alwaysTime: true), forKey: .entryTime)
    try container.encode(entryPrice, forKey: .entryPrice)
    try container.encode(UTCCalendar.format(exitTime, alwaysTime: true), forKey: .exitTime)
    try container.encode(exitPrice, forKey: .exitPrice)
    try container.encode(pnl, forKey: .pnl)
    try container.encode(returnPct, forKey: .returnPct)
    try container.encode(commission, forKey: .commission)
    try container.encode(reason, forKey: .reason)
  }
}

/// What a run produces: the trades and the equity marked at every close.
public struct BacktestOutcome: Sendable, Equatable {
  public var trades: [Trade]
  public var equity: [Double]
  /// Position size (units, signed) held at each close; empty unless asked for (it is only
  /// needed by the look-ahead check, and a grid should not pay for it).
  public var position: [Double]
  public var timestamps: [Int64]
  public var commissions: Double
  public var halted: Bool
  /// Closes with a position open.
  public var exposedBars: Int
  /// When the drawdown halt (or ruin) stopped trading, the bar's time.
  public var haltedAt: Int64?
  /// Why trading stopped at `haltedAt`.
  public var haltReason: HaltReason?
  /// The order decided at the last bar, still waiting for the next bar's open.
  public var pendingOrder: PendingOrder?
  /// Positions still open after the last bar (only a run that does not close at the end has any).
  public var openPositions: [OpenPosition]
  /// Entries decided while entries were suspended, not made.
  public var blockedEntries: [BlockedEntry]

  public init(
    trades: [Trade], equity: [Double], position: [Double], timestamps: [Int64], commissions: Double, halted: Bool, exposedBars: Int,
    haltedAt: Int64? = nil, haltReason: HaltReason? = nil, pendingOrder: PendingOrder? = nil, openPositions: [OpenPosition] = [],
    blockedEntries: [BlockedEntry] = []
  ) {
    self.openPositions = openPositions
    self.blockedEntries = blockedEntries
    self.haltedAt = haltedAt
    self.haltReason = haltReason
    self.pendingOrder = pendingOrder
    self.trades = trades
    self.equity = equity
    self.position = position
    self.timestamps = timestamps
    self.commissions = commissions
    self.halted = halted
    self.exposedBars = exposedBars
  }
}

/// Why a run stopped trading before its last bar.
public enum HaltReason: String, Codable, Sendable, Equatable {
  /// Equity fell from its peak by `risk.max_drawdown_halt` or more: positions were closed at
  /// that bar's close and no trade was made after.
  case drawdown
  /// Equity reached zero.
  case ruin
}

extension BacktestOutcome {
  /// The outcome from bar `start` on: what a run that trades from `start` reports, the bars
  /// before it having only warmed its indicators up (no trade, no position, equity = capital).
  /// Trades' bar numbers count from `start`.
  public func dropping(first start: Int) -> BacktestOutcome {
    guard start > 0 else { return self }
    var result = self
    result.equity = Array(equity[start...])
    result.position = position.isEmpty ? [] : Array(position[start...])
    result.timestamps = Array(timestamps[start...])
    for k in result.trades.indices {
      result.trades[k].entryBar -= start
      result.trades[k].exitBar -= start
    }
    for k in result.openPositions.indices { result.openPositions[k].entryBar -= start }
    for k in result.blockedEntries.indices { result.blockedEntries[k].bar -= start }
    return result
  }
}

/// The backtest engine: decide on bar t's close, fill at bar t+1's open (or at t's close with
/// `fill: close`); stops and targets inside each bar from its OHLC; equity marked at each close.
/// Cash is kept as backtesting.py keeps it (positions on margin, commission on both legs), and
/// the arithmetic is done in the same order, so results agree with it to the last bit.
public enum Backtester {
  /// - parameter evaluator: one to reuse across runs on the same bars (a grid), so indicators
  ///   shared between combinations are computed once.
  /// - parameter recordPositions: fill `BacktestOutcome.position`.
  /// - parameter tradingStart: the first bar on which a decision may be made; the bars before
  ///   it only warm the indicators up, and the outcome covers the bars from it on.
  /// - parameter suspensions: bars on which the rules may not open positions (a paused live
  ///   account); the entries decided there are reported in `blockedEntries`.
  public static func run(
    _ strategy: CompiledStrategy, bars: BarSeries, from tradingStart: Int = 0, evaluator shared: RuleEvaluator? = nil,
    recordPositions: Bool = false, suspensions: EntrySuspensions? = nil
  ) -> BacktestOutcome {
    // A token nothing cancels: this cannot throw.
    try! run(
      strategy, bars: bars, from: tradingStart, evaluator: shared, recordPositions: recordPositions, suspensions: suspensions,
      cancellation: .never)
  }

  /// `run`, checking `cancellation` every 65,536 bars.
  public static func run(
    _ strategy: CompiledStrategy, bars: BarSeries, from tradingStart: Int = 0, evaluator shared: RuleEvaluator? = nil,
    recordPositions: Bool = false, suspensions: EntrySuspensions? = nil, cancellation: CancellationToken
  ) throws -> BacktestOutcome {
    precondition(tradingStart >= 0 && (tradingStart < bars.count || bars.count == 0), "trading starts inside the bars")
    let count = bars.count
    let evaluator = shared ?? RuleEvaluator(bars: bars, models: strategy.models)
    var simulation = Simulation(strategy: strategy, bars: bars, evaluator: evaluator, tradingStart: tradingStart)
    simulation.suspensions = suspensions.flatMap { $0.ranges.isEmpty ? nil : $0 }
    var position = [Double](repeating: 0, count: recordPositions ? count : 0)
    let equity = [Double](unsafeUninitializedCapacity: count) { buffer, initialized in
      guard let base = buffer.baseAddress else { return }
      buffer.initialize(repeating: strategy.capital)
      initialized = count
      position.withUnsafeMutableBufferPointer { positions in
        simulation.withColumns(interleaved: nil) { simulation in
          simulation.columns.equity = base
          simulation.columns.position = recordPositions ? positions.baseAddress : nil  // an empty array still has an address
          var done = 0
          while done < count, !cancellation.isCancelled {
            done = min(count, done + 1 << 16)
            simulation.run(until: done)
          }
          if done == count { simulation.finish() }
        }
      }
    }
    try cancellation.check()
    return BacktestOutcome(
      trades: simulation.timedTrades(), equity: equity, position: position, timestamps: bars.timestamps,
      commissions: simulation.commissions, halted: simulation.halted, exposedBars: simulation.exposedBars,
      haltedAt: simulation.haltedBar.map { bars.timestamps[$0] }, haltReason: simulation.haltReason, pendingOrder: simulation.pendingOrder,
      openPositions: simulation.openPosition.map { [$0] } ?? [], blockedEntries: simulation.blocked
    ).dropping(first: tradingStart)
  }

  /// The metrics of several strategies on the same bars, without their equity curves: each is
  /// marked a block of bars at a time into a buffer that stays in cache, and the statistics take
  /// the block from there. The strategies run side by side, so a block's prices and benchmark
  /// are read from memory once for all of them: what a grid runs, a batch per thread. The same
  /// numbers as `Metrics.compute` over each one's `run`.
  ///
  /// - parameter tradingStart: as in `run`: the metrics cover the bars from it on, and
  ///   `benchmark` holds their returns.
  public static func metrics(
    of strategies: [CompiledStrategy], bars: BarSeries, from tradingStart: Int = 0, evaluator: RuleEvaluator, barsPerYear: Double,
    benchmark: BenchmarkReturns
  ) -> [Metrics] {
    let count = bars.count
    let first = tradingStart
    let blockSize = 4096
    let prices = evaluator.openAndClose
    var simulations = strategies.map { Simulation(strategy: $0, bars: bars, evaluator: evaluator, tradingStart: first) }
    var accumulators = strategies.map { _ in Metrics.ReturnStatistics.Accumulator(benchmark: benchmark, bars: count - first) }
    withUnsafeTemporaryAllocation(of: Double.self, capacity: blockSize) { block in
      bars.timestamps.withUnsafeBufferPointer { all in
        // The accumulators count bars from the first traded one.
        let timestamps = UnsafeBufferPointer(rebasing: all[first...])
        var start = 0
        while start < count {
          let end = min(start + blockSize, count)
          let taken = max(start, first)
          for k in simulations.indices {
            simulations[k].withColumns(interleaved: prices) { simulation in
              // Bar i is marked at block[i - start].
              simulation.columns.equity = block.baseAddress! - start
              simulation.run(until: end)
              if end == count { simulation.finish() }
            }
            if taken < end { accumulators[k].add(UnsafeBufferPointer(rebasing: block[(taken - start)..<(end - start)]), timestamps: timestamps) }
          }
          start = end
        }
      }
    }
    let traded = first == 0 ? bars : bars.slice(first..<count)
    return strategies.indices.map { k in
      guard let curve = accumulators[k].finish(timestamps: traded.timestamps) else {
        // Fewer than 5% of bars lost, so var_95 needs returns that were not kept: run again
        // with the whole curve. Such runs are mostly flat, and quick.
        let outcome = run(strategies[k], bars: bars, from: first, evaluator: evaluator)
        return Metrics.compute(outcome, bars: traded, barsPerYear: barsPerYear, benchmark: benchmark)
      }
      let simulation = simulations[k]
      let outcome = BacktestOutcome(
        trades: simulation.timedTrades(), equity: [], position: [], timestamps: traded.timestamps, commissions: simulation.commissions,
        halted: simulation.halted, exposedBars: simulation.exposedBars)
      return Metrics.compute(outcome, curve: curve, bars: traded, barsPerYear: barsPerYear, benchmark: benchmark)
    }
  }

  /// Python's float `//`, exactly (CPython's float_floor_div), so whole-unit sizes agree with
  /// backtesting.py even where a/b lies within rounding of an integer.
  public static func pythonFloorDivide(_ a: Double, _ b: Double) -> Double {
    var mod = fmod(a, b)
    var div = (a - mod) / b
    if mod != 0 {
      if (b < 0) != (mod < 0) {
        mod += b
        div -= 1.0
      }
    }
    guard div != 0 else { return copysign(0, a / b) }
    var floorDiv = div.rounded(.down)
    if div - floorDiv > 0.5 { floorDiv += 1.0 }
    return floorDiv
  }
}

/// The state of one run. A struct with mutating methods rather than closures over local
/// variables: captured variables are checked for exclusive access at run time on every use,
/// which cost more than the simulation itself.
struct Simulation {
  let bars: BarSeries
  let entry: [Bool]
  let exit: [Bool]
  let shortEntry: [Bool]
  let shortExit: [Bool]
  let start: Int
  let rules: TradingRules
  let checksRisk: Bool
  let hasEntry: Bool
  let hasShortEntry: Bool
  let fillAtClose: Bool
  let closeAtEnd: Bool

  var cash: Double
  var size = 0.0  // signed units
  var entryPrice = 0.0
  var entryBar = 0
  var peak = 0.0  // best price since entry, for the trailing stop
  var trades: [Trade] = []
  /// Set by `Backtester.run` for the length of `run()`: the signals, the prices fills and
  /// marks use, the equity column, and the position column when positions are recorded.
  struct Columns {
    var entry, exit, shortEntry, shortExit: UnsafePointer<Bool>
    /// Bar i's open is `opens[i * stride]`, its close `closes[i * stride]`. A grid reads them
    /// interleaved (stride 2): a fill reads the open of a bar whose close was just read, from
    /// the same cache line; from separate columns it was a cache miss. A single run reads the
    /// columns as they are rather than hold a copy.
    var opens: UnsafePointer<Double>
    var closes: UnsafePointer<Double>
    var stride: Int
    var equity: UnsafeMutablePointer<Double>
    var position: UnsafeMutablePointer<Double>?

    @inline(__always) func open(_ i: Int) -> Double { opens[stride &* i] }
    @inline(__always) func close(_ i: Int) -> Double { closes[stride &* i] }
  }
  var columns: Columns! = nil
  /// Bars on which entries may not be made, and the entries refused there.
  var suspensions: EntrySuspensions?
  var blocked: [BlockedEntry] = []
  var exposedBars = 0
  var commissions = 0.0
  var halted = false
  var equityPeak: Double

  init(strategy: CompiledStrategy, bars: BarSeries, evaluator: RuleEvaluator, tradingStart: Int = 0) {
    let never = [Bool](repeating: false, count: bars.count)
    self.bars = bars
    entry = strategy.entry.map(evaluator.condition) ?? never
    exit = strategy.exit.map(evaluator.condition) ?? never
    shortEntry = strategy.shortEntry.map(evaluator.condition) ?? never
    shortExit = strategy.shortExit.map(evaluator.condition) ?? never
    start = max(strategy.firstDecisionBar, tradingStart)
    rules = TradingRules(strategy)
    checksRisk = strategy.spec.risk != nil
    hasEntry = strategy.entry != nil
    hasShortEntry = strategy.shortEntry != nil
    fillAtClose = strategy.fillAtClose
    closeAtEnd = strategy.closeAtEnd
    cash = strategy.capital
    equityPeak = strategy.capital
  }

  /// Runs `body` with `columns` pointing at the signals and the prices: `interleaved` (open
  /// and close side by side) or else the bars' columns. `body` sets the equity column.
  /// Element access through `self` paid a bounds and a uniqueness check each.
  mutating func withColumns(interleaved: [Double]?, _ body: (inout Simulation) -> Void) {
    let (entry, exit, shortEntry, shortExit) = (self.entry, self.exit, self.shortEntry, self.shortExit)
    let (open, close) = (bars.open, bars.close)
    entry.withUnsafeBufferPointer { entry in
      exit.withUnsafeBufferPointer { exit in
        shortEntry.withUnsafeBufferPointer { shortEntry in
          shortExit.withUnsafeBufferPointer { shortExit in
            open.withUnsafeBufferPointer { open in
              close.withUnsafeBufferPointer { close in
                (interleaved ?? []).withUnsafeBufferPointer { prices in
                  var placeholder = 0.0
                  withUnsafeMutablePointer(to: &placeholder) { placeholder in
                    let (opens, closes, stride) =
                      interleaved == nil ? (open.baseAddress!, close.baseAddress!, 1) : (prices.baseAddress!, prices.baseAddress! + 1, 2)
                    columns = Columns(
                      entry: entry.baseAddress!, exit: exit.baseAddress!, shortEntry: shortEntry.baseAddress!, shortExit: shortExit.baseAddress!,
                      opens: opens, closes: closes, stride: stride, equity: placeholder, position: nil)
                    body(&self)
                    columns = nil
                  }
                }
              }
            }
          }
        }
      }
    }
  }

  /// The trades with their times, looked up in one pass after the run: read while trading,
  /// each was a cache miss.
  func timedTrades() -> [Trade] {
    var trades = trades
    bars.timestamps.withUnsafeBufferPointer { timestamps in
      for k in trades.indices {
        trades[k].entryTime = timestamps[trades[k].entryBar]
        trades[k].exitTime = timestamps[trades[k].exitBar]
      }
    }
    return trades
  }

  mutating func close(at price: Double, bar: Int, reason: Trade.Reason) {
    let fill = rules.fill(price, direction: -size)
    let exitCommission = rules.commission(size, fill)
    let pnlBeforeCosts = size * (fill - entryPrice)
    cash += pnlBeforeCosts - exitCommission
    let entryCommission = rules.commission(size, entryPrice)
    commissions += exitCommission
    let total = entryCommission + exitCommission
    trades.append(
      Trade(
        side: size > 0 ? "long" : "short", size: abs(size), entryBar: entryBar, entryTime: 0, entryPrice: entryPrice,
        exitBar: bar, exitTime: 0, exitPrice: fill, pnl: pnlBeforeCosts - total,
        returnPct: (pnlBeforeCosts - total) / (abs(size) * entryPrice), commission: total, reason: reason))
    size = 0
  }

  mutating func open(_ direction: Double, at price: Double, bar: Int) {
    let fill = rules.fill(price, direction: direction)
    // Flat when opening: the cash is the equity.
    let units = rules.entryUnits(fill: fill, available: cash)
    guard units > 0 else { return }
    size = copysign(units, direction)
    entryPrice = fill
    entryBar = bar
    peak = fill
    let entryCommission = rules.commission(size, fill)
    cash -= entryCommission
    commissions += entryCommission
  }

  /// Stops, targets and the trailing stop inside bar i. Gap through → fill at the open; stop
  /// and target both inside one bar → the stop is assumed first.
  mutating func checkExits(bar i: Int) {
    guard size != 0, checksRisk else { return }
    let long = size > 0
    let (o, h, l) = (bars.open[i], bars.high[i], bars.low[i])
    if let hit = rules.exit(long: long, entryPrice: entryPrice, peak: peak, open: o, high: h, low: l) {
      return close(at: hit.price, bar: i, reason: hit.reason)
    }
    peak = rules.peak(after: peak, long: long, high: h, low: l)
  }

  @inline(__always) func mark(_ i: Int) {
    columns.equity[i] = cash + (columns.close(i) * size - size * entryPrice)
    columns.position?[i] = size
  }

  /// The order to place at bar i's close: close the position, and open one (+1 long, -1 short).
  // Mutating only so that self is passed by reference: a by-value call copied the struct per bar.
  @inline(__always) mutating func decide(_ i: Int) -> (close: Bool, open: Double)? {
    guard i >= start, !halted else { return nil }
    let c = columns!
    if size > 0 {
      let reverse = c.shortEntry[i] && hasShortEntry
      if c.exit[i] || reverse { return (true, reverse ? -1 : 0) }
    } else if size < 0 {
      let reverse = c.entry[i] && hasEntry
      if c.shortExit[i] || reverse { return (true, reverse ? 1 : 0) }
    } else if c.entry[i] {
      return (false, 1)
    } else if c.shortEntry[i] {
      return (false, -1)
    }
    return nil
  }

  /// Marks the bars from `i` on where nothing can happen — no order pending, no stops, no
  /// drawdown limit, no signal for the position held — in a loop that does only that, and
  /// returns the first bar that needs the full treatment. Most bars are quiet.
  @inline(__always) mutating func skipQuietBars(from i: Int, until end: Int) -> Int {
    let c = columns!
    // The signals that would act on the position held (as `decide` reads them).
    let (first, second) =
      size > 0
      ? (c.exit, hasShortEntry ? c.shortEntry : c.exit)
      : size < 0 ? (c.shortExit, hasEntry ? c.entry : c.shortExit) : (c.entry, c.shortEntry)
    let (cash, size, entryPrice) = (self.cash, self.size, self.entryPrice)
    var j = i
    while j < end {
      if j >= start, first[j] || second[j] { break }
      let value = cash + (c.close(j) * size - size * entryPrice)
      if value <= 0 { break }
      c.equity[j] = value
      c.position?[j] = size
      j += 1
    }
    if size != 0 { exposedBars += j - i }
    return j
  }

  /// The bar `run(until:)` takes next, and the order placed at the close before it.
  var next = 0
  var pending: (close: Bool, open: Double)? = nil
  /// Equity reached zero: every later bar is marked 0.
  var ruined = false
  /// The bar at which trading stopped (drawdown halt or ruin), and why.
  var haltedBar: Int?
  var haltReason: HaltReason?

  /// The position held after the last bar, with its stop and target for the next one.
  var openPosition: OpenPosition? {
    guard size != 0, bars.count > 0 else { return nil }
    let long = size > 0
    let levels = rules.levels(long: long, entryPrice: entryPrice, peak: peak)
    return OpenPosition(
      symbol: nil, side: long ? "long" : "short", size: abs(size), entryBar: entryBar, entryTime: bars.timestamps[entryBar], entryPrice: entryPrice,
      peak: peak, stop: levels.stop, target: levels.target)
  }

  /// The order decided at the last bar's close, not filled (a run that closes at the end has none).
  var pendingOrder: PendingOrder? {
    guard let pending, !closeAtEnd || size == 0, bars.count > 0 else { return nil }
    let open = pending.open > 0 ? "long" : pending.open < 0 ? "short" : nil
    return PendingOrder(decidedAt: bars.timestamps[bars.count - 1], close: pending.close, open: open)
  }

  /// Runs the bars from `next` up to `end`, so a caller can take the curve a piece at a time;
  /// `finish()` after the last bar.
  mutating func run(until end: Int) {
    let c = columns!
    if ruined {
      for j in next..<max(next, end) { c.equity[j] = 0 }
      next = max(next, end)
      return
    }
    let skips = !checksRisk && rules.drawdownHalt == nil
    while next < end {
      var i = next
      if skips, pending == nil, !halted {
        i = skipQuietBars(from: i, until: end)
        if i == end {
          next = end
          return
        }
      }
      if let order = pending {
        if order.close, size != 0 { close(at: c.open(i), bar: i, reason: .signal) }
        if order.open != 0, size == 0 { open(order.open, at: c.open(i), bar: i) }
        pending = nil
      }
      if size != 0, checksRisk { checkExits(bar: i) }
      mark(i)
      if c.equity[i] <= 0 {
        if size != 0 {
          exposedBars += 1  // it closed this bar with the position still marked
          close(at: c.close(i), bar: i, reason: .halt)
        }
        for j in i..<end { c.equity[j] = 0 }
        halted = true
        haltedBar = i
        haltReason = .ruin
        ruined = true
        next = end
        return
      }
      if rules.drawdownHalt != nil {
        equityPeak = max(equityPeak, c.equity[i])
        if !halted, rules.haltsTrading(equity: c.equity[i], peak: equityPeak) {
          if size != 0 { close(at: c.close(i), bar: i, reason: .halt) }
          mark(i)
          halted = true
          haltedBar = i
          haltReason = .drawdown
        }
      }
      if var order = decide(i) {
        if order.open != 0, let suspensions, suspensions.contains(bars.timestamps[i]) {
          blocked.append(BlockedEntry(bar: i, time: bars.timestamps[i], symbol: nil, side: order.open > 0 ? "long" : "short"))
          order.open = 0
        }
        if fillAtClose {
          if order.close, size != 0 { close(at: c.close(i), bar: i, reason: .signal) }
          if order.open != 0, size == 0 { open(order.open, at: c.close(i), bar: i) }
          mark(i)
        } else if order.close || order.open != 0 {
          pending = order
        }
      }
      if size != 0 { exposedBars += 1 }
      next = i + 1
    }
  }

  /// After the last bar: closes what is open when the strategy says so, re-marking that bar.
  mutating func finish() {
    let count = bars.count
    if closeAtEnd, size != 0, count > 0, !halted {
      close(at: columns.close(count - 1), bar: count - 1, reason: .end)
      mark(count - 1)
      exposedBars -= 1  // the last close is marked flat
    }
  }
}
