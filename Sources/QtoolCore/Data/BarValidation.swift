/// Where a series of incoming bars came from, to name a bad row: a file (or URL) and, when
/// known, the line of each row.
///
/// ```swift
/// let origin = BarOrigin(file: "BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv", lines: [1, 2, 3])
/// origin.locate(row: 1, timestamp: ts)   // "BTCUSDT-1d-2024-03.zip: BTCUSDT-1d-2024-03.csv:2 (2024-03-02)"
/// ```
public struct BarOrigin: Sendable, Equatable {
  public var file: String
  /// The 1-based line (or, for JSON, element) of each row, in the order of the series; nil
  /// when unknown, and rows are then named by their position in the series.
  public var lines: [Int]?
  /// True when `lines` are text lines (`file:12`); false for elements of a JSON array (`file, row 12`).
  public var textLines: Bool

  public init(file: String, lines: [Int]? = nil, textLines: Bool = true) {
    self.file = file
    self.lines = lines
    self.textLines = textLines
  }

  public func line(of row: Int) -> Int? {
    guard let lines, row >= 0, row < lines.count else { return nil }
    return lines[row]
  }

  /// `line 12` or `row 12`.
  public func name(of row: Int) -> String {
    if let line = line(of: row) { return textLines ? "line \(line)" : "row \(line)" }
    return "row \(row + 1)"
  }

  /// `file:line (time)`, or `file, row N (time)`.
  public func locate(row: Int, timestamp: Int64) -> String {
    if let line = line(of: row), textLines { return "\(file):\(line) (\(UTCCalendar.format(timestamp)))" }
    return "\(file), \(name(of: row)) (\(UTCCalendar.format(timestamp)))"
  }
}

/// The first thing wrong with incoming bars, with the row it is on.
public struct BarProblem: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Kind: String, Sendable, Codable {
    case nonFinite = "non_finite", nonPositive = "non_positive", highBelowLow = "high_below_low", ohlc
    case negativeVolume = "negative_volume", offGrid = "off_grid", conflictingDuplicate = "conflicting_duplicate"
  }

  public var kind: Kind
  /// The row in the series as given (0-based).
  public var row: Int
  public var timestamp: Int64
  /// `file:line (time)`.
  public var location: String
  /// What is wrong, without the location.
  public var reason: String

  public var description: String { "\(location): \(reason)" }
}

/// One set of rules for bars coming into the store, whichever way they come (download,
/// import): every price finite and above zero, high ≥ low, open and close within them,
/// volume finite and not negative, open times on the timeframe's grid, and no two rows at
/// one time with different values.
///
/// ```swift
/// if let problem = BarValidation.check(series, timeframe: tf, calendar: .allDays, origin: origin) {
///   throw problem   // "BTCUSDT-1d-2024-03.zip: …csv:5 (2024-03-05): high 61000 is below low 62000"
/// }
/// ```
public enum BarValidation {
  /// The first problem in `series` (rows in the order given), or nil when every row is fine.
  ///
  /// The grid rule follows `data verify`: timeframes below a week must open on their grid
  /// (Binance weeks and Stooq's end-of-period weeks and months are not held to one). Intraday
  /// bars on a weekdays calendar (equities open at 13:30Z) may sit off the grid by a fixed
  /// offset, the same for every row.
  ///
  /// `allowNonPositive` lets zero and negative prices through (spreads, some futures);
  /// `grid: false` leaves the open times to a later check (an import that moves dated bars first).
  public static func check(
    _ series: BarSeries, timeframe: Timeframe, calendar: TradingCalendar, origin: BarOrigin, allowNonPositive: Bool = false, grid: Bool = true
  ) -> BarProblem? {
    let checksGrid = grid && timeframe.milliseconds < Timeframe(count: 1, unit: .week).milliseconds
    let sessionOffset = calendar == .weekdays && timeframe.milliseconds < UTCCalendar.dayMilliseconds
    let step = timeframe.milliseconds
    var phase: Int64?
    for i in 0..<series.count {
      let (o, h, l, c, v) = (series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i])
      let ts = series.timestamps[i]
      func problem(_ kind: BarProblem.Kind, _ reason: String) -> BarProblem {
        BarProblem(kind: kind, row: i, timestamp: ts, location: origin.locate(row: i, timestamp: ts), reason: reason)
      }
      // The common case in one test, without building anything: a million rows an import.
      let plain = o.isFinite && h.isFinite && l.isFinite && c.isFinite && v.isFinite && (allowNonPositive || (o > 0 && h > 0 && l > 0 && c > 0))
      if !plain {
        for (name, value) in [("open", o), ("high", h), ("low", l), ("close", c), ("volume", v)] where !value.isFinite {
          return problem(.nonFinite, "\(name) is \(value), not a number a market trades at")
        }
        for (name, value) in [("open", o), ("high", h), ("low", l), ("close", c)] where value <= 0 {
          return problem(.nonPositive, "\(name) is \(DisplayFormat.written(value)); prices must be above zero")
        }
      }
      if h < l { return problem(.highBelowLow, "high \(DisplayFormat.written(h)) is below low \(DisplayFormat.written(l))") }
      if o < l || o > h || c < l || c > h {
        return problem(.ohlc, "open \(DisplayFormat.written(o)) or close \(DisplayFormat.written(c)) lies outside low \(DisplayFormat.written(l)) … high \(DisplayFormat.written(h))")
      }
      if v < 0 { return problem(.negativeVolume, "volume \(DisplayFormat.written(v)) is negative") }
      if checksGrid {
        if sessionOffset {
          let offset = ((ts % step) + step) % step
          if let phase, offset != phase {
            return problem(.offGrid, "opens at \(UTCCalendar.format(ts, alwaysTime: true)), off the \(timeframe) grid of the rows before it")
          }
          phase = phase ?? offset
        } else if !timeframe.isAligned(ts) {
          return problem(
            .offGrid,
            "opens at \(UTCCalendar.format(ts, alwaysTime: true)), not on the \(timeframe) grid (a row of another timeframe?)")
        }
      }
    }
    return nil
  }

  /// Why bars at these (sorted) open times cannot be of `timeframe`, or nil: the usual step
  /// between bars is less than half the timeframe's (hourly bars called 1d, daily called 1w or
  /// 1M) or more than three times it (weekly bars called 1d). Gaps and weekends are allowed:
  /// the most common step decides. Two bars are judged too: bars closer than half the
  /// timeframe cannot be of it however few they are; but one wide step alone may be a hole
  /// (a weekend and a holiday), so it refuses only when it is the usual one of several.
  public static func spacingProblem(_ timestamps: [Int64], timeframe: Timeframe) -> String? {
    guard timestamps.count >= 2 else { return nil }
    var counts: [Int64: Int] = [:]
    // Ten thousand steps spread over the series judge a million bars as well as all of them.
    let stride = max(1, (timestamps.count - 1) / 10_000)
    for i in Swift.stride(from: 1, to: timestamps.count, by: stride) where timestamps[i] > timestamps[i - 1] {
      counts[timestamps[i] - timestamps[i - 1], default: 0] += 1
    }
    guard let usual = counts.max(by: { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key })?.key else { return nil }
    let nominal = timeframe.unit == .month ? Int64(timeframe.count) * 30 * UTCCalendar.dayMilliseconds : timeframe.milliseconds
    let steps = counts.values.reduce(0, +)
    guard usual * 2 < nominal || (usual > nominal * 3 && steps >= 2) else { return nil }
    return "the bars are \(describe(usual)) apart, not \(timeframe) bars"
  }

  /// `1 hour`, `1 day`, `7 days`, `90 seconds`.
  static func describe(_ milliseconds: Int64) -> String {
    let units: [(Int64, String)] = [(86_400_000, "day"), (3_600_000, "hour"), (60_000, "minute"), (1000, "second")]
    for (size, name) in units where milliseconds % size == 0 {
      let count = milliseconds / size
      return "\(count) \(name)\(count == 1 ? "" : "s")"
    }
    return "\(milliseconds) ms"
  }

  /// The rows sorted by time with identical repeats dropped (`identical` counts them); rows
  /// at one time with different values are a problem naming both.
  public static func deduplicate(_ series: BarSeries, origin: BarOrigin) -> Result<(series: BarSeries, identical: Int), BarProblem> {
    let ts = series.timestamps
    let sorted = zip(ts, ts.dropFirst()).allSatisfy { $0 < $1 }
    if sorted { return .success((series, 0)) }
    let order = ts.indices.sorted { ts[$0] < ts[$1] || (ts[$0] == ts[$1] && $0 < $1) }
    var result = BarSeries(reservingCapacity: series.count)
    var identical = 0
    var previous = -1
    for index in order {
      if previous >= 0, ts[previous] == ts[index] {
        let a = [series.open[previous], series.high[previous], series.low[previous], series.close[previous], series.volume[previous]]
        let b = [series.open[index], series.high[index], series.low[index], series.close[index], series.volume[index]]
        // Bit for bit: NaN rows are never identical, and are refused by `check` anyway.
        if zip(a, b).allSatisfy({ $0.bitPattern == $1.bitPattern }) {
          identical += 1
          continue
        }
        let names = ["open", "high", "low", "close", "volume"]
        let differences = (0..<5).filter { a[$0].bitPattern != b[$0].bitPattern }.map { "\(names[$0]) \(DisplayFormat.written(a[$0])) vs \(DisplayFormat.written(b[$0]))" }
        let first = origin.name(of: previous)
        let second = origin.name(of: index)
        return .failure(
          BarProblem(
            kind: .conflictingDuplicate, row: index, timestamp: ts[index], location: origin.locate(row: index, timestamp: ts[index]),
            reason: "\(first) and \(second) both open at \(UTCCalendar.format(ts[index], alwaysTime: true)) with different values ("
              + differences.joined(separator: ", ") + ")"))
      }
      result.append(
        timestamp: ts[index], open: series.open[index], high: series.high[index], low: series.low[index], close: series.close[index],
        volume: series.volume[index])
      previous = index
    }
    return .success((result, identical))
  }
}

/// What writing incoming bars over stored ones changes: compared before writing, so a
/// refetch can say what it repaired.
public struct BarChanges: Sendable, Equatable, Codable {
  public var added = 0
  public var replaced = 0
  public var unchanged = 0
  /// Stored open times inside the refetched window that the source did not send again.
  public var removed: [Int64] = []

  public init() {}

  /// `stored` are the bars stored in `window`; `incoming` the sorted, unique bars to write.
  public static func compare(stored: BarSeries, incoming: BarSeries, window: Range<Int64>) -> BarChanges {
    var changes = BarChanges()
    var s = 0
    var n = 0
    while n < incoming.count {
      let t = incoming.timestamps[n]
      while s < stored.count, stored.timestamps[s] < t {
        if window.contains(stored.timestamps[s]) { changes.removed.append(stored.timestamps[s]) }
        s += 1
      }
      if s < stored.count, stored.timestamps[s] == t {
        let same =
          stored.open[s].bitPattern == incoming.open[n].bitPattern && stored.high[s].bitPattern == incoming.high[n].bitPattern
          && stored.low[s].bitPattern == incoming.low[n].bitPattern && stored.close[s].bitPattern == incoming.close[n].bitPattern
          && stored.volume[s].bitPattern == incoming.volume[n].bitPattern
        if same { changes.unchanged += 1 } else { changes.replaced += 1 }
        s += 1
      } else {
        changes.added += 1
      }
      n += 1
    }
    while s < stored.count {
      if window.contains(stored.timestamps[s]) { changes.removed.append(stored.timestamps[s]) }
      s += 1
    }
    return changes
  }

  public static func += (lhs: inout BarChanges, rhs: BarChanges) {
    lhs.added += rhs.added
    lhs.replaced += rhs.replaced
    lhs.unchanged += rhs.unchanged
    lhs.removed += rhs.removed
  }
}
