import Foundation

/// The trading rules every simulation obeys — a single-symbol run, a grid's batched runs, a
/// portfolio and the live paper account — written once: what a fill costs, where slippage puts
/// its price, how many units an entry buys, where stops, targets and the trailing stop close a
/// position inside a bar, and when the drawdown halt stops trading.
///
/// The arithmetic is backtesting.py's, in its order, so single-symbol results agree with it to
/// the last bit.
public struct TradingRules: Sendable {
  public let commissionRate: Double
  public let commissionFixed: Double
  /// A fraction of the price (slippage_bps / 10,000).
  public let slippage: Double
  public let risk: StrategySpec.Risk?
  public let sizing: StrategySpec.Sizing?
  public let wholeUnits: Bool
  public let drawdownHalt: Double?

  public init(_ strategy: CompiledStrategy) {
    commissionRate = strategy.commission
    commissionFixed = strategy.commissionFixed
    slippage = strategy.slippage
    risk = strategy.spec.risk
    sizing = strategy.spec.sizing
    wholeUnits = strategy.wholeUnits
    drawdownHalt = strategy.spec.risk?.maxDrawdownHalt
  }

  /// The commission of a fill of `units` at `price`.
  @inline(__always) public func commission(_ units: Double, _ price: Double) -> Double {
    commissionFixed + abs(units) * price * commissionRate
  }

  /// The price a trade at `price` gets: slippage moves it against the trade (`direction` +1
  /// buys, −1 sells).
  @inline(__always) public func fill(_ price: Double, direction: Double) -> Double {
    price * (1 + copysign(slippage, direction))
  }

  /// The units an entry at `fill` buys with `available` cash: the sizing's fixed units, or its
  /// fraction of the cash (less than all of it by an ulp, as backtesting.py sizes, so rounding
  /// never overspends), capped by its notional and its caps; whole or fractional units. Zero
  /// when the cash cannot pay for it, as a broker would refuse.
  @inline(__always) public func entryUnits(fill: Double, available cash: Double) -> Double {
    let fraction = sizing?.fraction ?? 1
    let portion = fraction >= 1 ? 1 - Double.ulpOfOne : fraction
    let perUnit = fill + commission(portion, fill) / portion
    let available = max(0, cash)
    var units: Double
    if let fixedUnits = sizing?.units {
      units = fixedUnits
    } else {
      let budget = min(sizing?.notional ?? available * portion, available * portion, sizing?.maxNotional ?? .infinity)
      units = wholeUnits ? Backtester.pythonFloorDivide(budget, perUnit) : (budget / perUnit * 1e8).rounded(.down) / 1e8
    }
    if let cap = sizing?.maxUnits { units = min(units, cap) }
    guard units > 0, units * perUnit <= available else { return 0 }
    return units
  }

  /// Where a stop, target or trailing stop closes a position inside a bar with this open, high
  /// and low, if one does: a gap through the level fills at the open; stop and target both
  /// inside one bar — the stop is assumed first. `peak` is the best price since entry.
  @inline(__always) public func exit(long: Bool, entryPrice: Double, peak: Double, open o: Double, high h: Double, low l: Double)
    -> (price: Double, reason: Trade.Reason)?
  {
    guard risk != nil else { return nil }
    let (stop, stopReason, target) = levels(long: long, entryPrice: entryPrice, peak: peak)
    if let stop {
      if long ? o <= stop : o >= stop { return (o, stopReason) }
      if long ? l <= stop : h >= stop { return (stop, stopReason) }
    }
    if let target {
      if long ? o >= target : o <= target { return (o, .target) }
      if long ? h >= target : l <= target { return (target, .target) }
    }
    return nil
  }

  /// The price levels that close a position in the next bar: the stop (the stop loss, or the
  /// trailing stop when it is tighter, and which of them) and the target. What `exit` checks,
  /// and what the live paper account shows.
  @inline(__always) public func levels(long: Bool, entryPrice: Double, peak: Double) -> (stop: Double?, stopReason: Trade.Reason, target: Double?) {
    guard let risk else { return (nil, .stop, nil) }
    var stop: Double? = risk.stopLoss.map { long ? entryPrice * (1 - $0) : entryPrice * (1 + $0) }
    var stopReason = Trade.Reason.stop
    if let trail = risk.trailingStop {
      let trailing = long ? peak * (1 - trail) : peak * (1 + trail)
      if stop == nil || (long ? trailing > stop! : trailing < stop!) {
        stop = trailing
        stopReason = .trailing
      }
    }
    let target = risk.takeProfit.map { long ? entryPrice * (1 + $0) : entryPrice * (1 - $0) }
    return (stop, stopReason, target)
  }

  /// The best price since entry after a bar (for the trailing stop).
  @inline(__always) public func peak(after peak: Double, long: Bool, high: Double, low: Double) -> Double {
    long ? max(peak, high) : min(peak, low)
  }

  /// True when equity has fallen from its peak by the halt's fraction or more.
  @inline(__always) public func haltsTrading(equity: Double, peak: Double) -> Bool {
    guard let limit = drawdownHalt else { return false }
    return 1 - equity / peak >= limit
  }
}

/// An order decided at a run's last bar that has not filled yet (it fills at the next bar's
/// open): what the live runner acts on when that bar arrives.
public struct PendingOrder: Codable, Sendable, Equatable {
  /// The bar whose close decided it.
  public var decidedAt: Int64
  /// Close the position held.
  public var close: Bool
  /// Open a position: `long` or `short`.
  public var open: String?
  /// Portfolios: the symbols to hold after the next open.
  public var targets: [String]?

  public init(decidedAt: Int64, close: Bool, open: String?, targets: [String]? = nil) {
    self.decidedAt = decidedAt
    self.close = close
    self.open = open
    self.targets = targets
  }

  enum CodingKeys: String, CodingKey { case decidedAt = "decided_at", close, open, targets }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(UTCCalendar.format(decidedAt, alwaysTime: true), forKey: .decidedAt)
    try container.encode(close, forKey: .close)
    try container.encode(open, forKey: .open)
    try container.encode(targets, forKey: .targets)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    let text = try container.decode(String.self, forKey: .decidedAt)
    guard let time = TimestampParser.parse(text) else {
      throw DecodingError.dataCorruptedError(forKey: .decidedAt, in: container, debugDescription: "not a time: \(text)")
    }
    decidedAt = time
    close = try container.decode(Bool.self, forKey: .close)
    open = try container.decodeIfPresent(String.self, forKey: .open)
    targets = try container.decodeIfPresent([String].self, forKey: .targets)
  }
}

/// A position still open after a run's last bar (a run that does not close at the end, as the
/// live paper account runs): what the account holds and where its stop and target are for the
/// next bar.
public struct OpenPosition: Codable, Sendable, Equatable {
  public var symbol: String?
  /// `long` or `short`.
  public var side: String
  /// Units, positive.
  public var size: Double
  public var entryBar: Int
  public var entryTime: Int64
  /// The fill price of the entry (slippage included).
  public var entryPrice: Double
  /// The best price since entry (the trailing stop's reference).
  public var peak: Double
  public var stop: Double?
  public var target: Double?

  public init(
    symbol: String?, side: String, size: Double, entryBar: Int, entryTime: Int64, entryPrice: Double, peak: Double, stop: Double?, target: Double?
  ) {
    self.symbol = symbol
    self.side = side
    self.size = size
    self.entryBar = entryBar
    self.entryTime = entryTime
    self.entryPrice = entryPrice
    self.peak = peak
    self.stop = stop
    self.target = target
  }

  enum CodingKeys: String, CodingKey {
    case symbol, side, size, entryBar = "entry_bar", entryTime = "entry_time", entryPrice = "entry_price", peak, stop, target
  }
}

/// An entry the rules decided on while entries were suspended (a paused live account): not
/// made, and reported.
public struct BlockedEntry: Codable, Sendable, Equatable {
  public var bar: Int
  public var time: Int64
  public var symbol: String?
  /// `long` or `short`.
  public var side: String

  public init(bar: Int, time: Int64, symbol: String?, side: String) {
    self.bar = bar
    self.time = time
    self.symbol = symbol
    self.side = side
  }
}

/// Bar times on which the rules may not open positions (a paused live account): each range
/// is `[from, to)` of decision bars' open times. Exits, stops and targets still act.
public struct EntrySuspensions: Sendable, Equatable {
  public var ranges: [Range<Int64>]
  public init(_ ranges: [Range<Int64>]) { self.ranges = ranges }
  public func contains(_ time: Int64) -> Bool { ranges.contains { $0.contains(time) } }
}
