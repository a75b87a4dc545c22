/// Reruns a strategy on the data cut after bar t, for several t, and reports any decision up to
/// t that changes. A strategy that peeks at the future (or whose indicators are not warmed up
/// the same way on shorter data) changes its past when the future is removed.
public enum LookaheadCheck {
  public struct Change: Codable, Sendable, Equatable {
    public var cut: Int
    public var bar: Int
    public var timestamp: Int64
    public var what: String
  }

  public struct Report: Codable, Sendable, Equatable {
    public var cuts: [Int]
    public var changes: [Change]
    /// Look-ahead in the data itself: preprocessing steps of the datasets (or their parents)
    /// that used later bars for earlier ones.
    public var data: [String] = []
    /// The bars of history the rules need before a decision, and what needs them.
    public var warmupBars: Int?
    public var warmupExpression: String?
    public var clean: Bool { changes.isEmpty && data.isEmpty }

    public init(cuts: [Int], changes: [Change], data: [String] = [], warmupBars: Int? = nil, warmupExpression: String? = nil) {
      self.cuts = cuts
      self.changes = changes
      self.data = data
      self.warmupBars = warmupBars
      self.warmupExpression = warmupExpression
    }

    enum CodingKeys: String, CodingKey {
      case cuts, changes, data, clean, warmupBars = "warmup_bars", warmupExpression = "warmup_expression"
    }
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(cuts, forKey: .cuts)
      try container.encode(changes, forKey: .changes)
      try container.encode(data, forKey: .data)
      try container.encode(clean, forKey: .clean)
      try container.encode(warmupBars, forKey: .warmupBars)
      try container.encode(warmupExpression, forKey: .warmupExpression)
    }
    public init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      cuts = try container.decode([Int].self, forKey: .cuts)
      changes = try container.decode([Change].self, forKey: .changes)
      data = try container.decodeIfPresent([String].self, forKey: .data) ?? []
      warmupBars = try container.decodeIfPresent(Int.self, forKey: .warmupBars)
      warmupExpression = try container.decodeIfPresent(String.self, forKey: .warmupExpression)
    }
  }

  /// - parameter tradingStart: as in `Backtester.run`: the bars before it only warm up.
  public static func run(_ strategy: CompiledStrategy, bars: BarSeries, from tradingStart: Int = 0, cuts count: Int = 10) -> Report {
    let full = Backtester.run(strategy, bars: bars, from: tradingStart, recordPositions: true)
    let start = max(strategy.firstDecisionBar, tradingStart) + 1
    guard bars.count > start + 2 else { return Report(cuts: [], changes: []) }
    let cuts = Set((1...count).map { start + ($0 * (bars.count - 1 - start)) / (count + 1) }).sorted()
    var changes: [Change] = []
    for cut in cuts {
      let partial = Backtester.run(strategy, bars: bars.slice(0..<cut), from: tradingStart, recordPositions: true)
      // Compare what both runs knew by bar cut-2: the last bar's decisions fill after the cut.
      // The outcomes count bars from the first traded one.
      let horizon = cut - 2 - tradingStart
      let fullEvents = events(full.trades, upTo: horizon)
      let partialEvents = events(partial.trades, upTo: horizon)
      if fullEvents != partialEvents {
        let first =
          zip(fullEvents, partialEvents).first { $0 != $1 } ?? (
            fullEvents.count > partialEvents.count ? fullEvents[partialEvents.count] : partialEvents[fullEvents.count], (0, "")
          )
        changes.append(
          Change(
            cut: cut, bar: first.0.0 + tradingStart, timestamp: bars.timestamps[first.0.0 + tradingStart],
            what: "with data up to bar \(cut) only: \(first.0.1) differs"))
      }
      for i in 0..<max(0, horizon) where full.position[i] != partial.position[i] {
        changes.append(
          Change(
            cut: cut, bar: i + tradingStart, timestamp: bars.timestamps[i + tradingStart],
            what: "position at bar \(i + tradingStart) is \(partial.position[i]) with data up to bar \(cut), \(full.position[i]) with all data"))
        break
      }
    }
    return Report(cuts: cuts, changes: changes)
  }

  /// The same check for any simulation: `simulate(nil)` runs on all the data, `simulate(cut)`
  /// on the bars before `timestamps[cut]`; each returns its trades and their symbols.
  public static func run(
    timestamps: [Int64], firstDecisionBar: Int, cuts count: Int = 10, simulate: (Int?) throws -> ([Trade], [String])
  ) rethrows -> Report {
    let start = firstDecisionBar + 1
    guard timestamps.count > start + 2 else { return Report(cuts: [], changes: []) }
    let index = Dictionary(timestamps.enumerated().map { ($1, $0) }) { first, _ in first }
    func events(_ result: ([Trade], [String]), upTo horizon: Int) -> [(Int, String)] {
      var events: [(Int, String)] = []
      for (trade, symbol) in zip(result.0, result.1) {
        let entry = index[trade.entryTime] ?? 0
        let exit = index[trade.exitTime] ?? 0
        if entry <= horizon { events.append((entry, "\(symbol) \(trade.side) entry at bar \(entry)")) }
        if exit <= horizon, trade.reason != .end { events.append((exit, "\(symbol) exit at bar \(exit) (\(trade.reason.rawValue))")) }
      }
      return events.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
    }
    let full = try simulate(nil)
    let cuts = Set((1...count).map { start + ($0 * (timestamps.count - 1 - start)) / (count + 1) }).sorted()
    var changes: [Change] = []
    for cut in cuts {
      let partial = try simulate(cut)
      let horizon = cut - 2
      let (fullEvents, partialEvents) = (events(full, upTo: horizon), events(partial, upTo: horizon))
      if fullEvents != partialEvents {
        let first =
          zip(fullEvents, partialEvents).first { $0 != $1 } ?? (
            fullEvents.count > partialEvents.count ? fullEvents[partialEvents.count] : partialEvents[fullEvents.count], (0, "")
          )
        changes.append(
          Change(cut: cut, bar: first.0.0, timestamp: timestamps[first.0.0], what: "with data up to bar \(cut) only: \(first.0.1) differs"))
      }
    }
    return Report(cuts: cuts, changes: changes)
  }

  static func events(_ trades: [Trade], upTo horizon: Int) -> [(Int, String)] {
    var result: [(Int, String)] = []
    for trade in trades {
      if trade.entryBar <= horizon { result.append((trade.entryBar, "\(trade.side) entry at bar \(trade.entryBar)")) }
      if trade.exitBar <= horizon, trade.reason != .end { result.append((trade.exitBar, "exit at bar \(trade.exitBar) (\(trade.reason.rawValue))")) }
    }
    return result
  }
}

extension Array where Element == (Int, String) {
  static func != (lhs: [(Int, String)], rhs: [(Int, String)]) -> Bool {
    lhs.count != rhs.count || zip(lhs, rhs).contains { $0.0 != $1.0 || $0.1 != $1.1 }
  }
}
