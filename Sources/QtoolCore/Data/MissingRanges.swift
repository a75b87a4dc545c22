/// What a download still has to fetch: the windows of open times in `[from, to)` with no
/// stored bars where bars are expected (before the first, after the last, and gaps between,
/// judged by the calendar as `data verify` judges them).
public enum MissingRanges {
  public struct Plan: Sendable, Equatable {
    public var windows: [Range<Int64>]
    /// How many of the windows are gaps between stored bars.
    public var internalGaps: Int
  }

  public static func plan(existing: [Int64], from: Int64, to: Int64, timeframe: Timeframe, calendar: TradingCalendar) -> Plan {
    guard from < to else { return Plan(windows: [], internalGaps: 0) }
    let stored = existing.filter { $0 >= from && $0 < to }
    guard let first = stored.first, let last = stored.last else {
      return Plan(windows: expectsBar(from: from, before: to, timeframe: timeframe, calendar: calendar) ? [from..<to] : [], internalGaps: 0)
    }
    var windows: [Range<Int64>] = []
    if expectsBar(from: from, before: first, timeframe: timeframe, calendar: calendar) { windows.append(from..<first) }
    var gapWindows = 0
    for (previous, next) in zip(stored, stored.dropFirst()) where next > previous {
      let probe = BarSeries(timestamps: [previous, next], open: [1, 1], high: [1, 1], low: [1, 1], close: [1, 1], volume: [0, 0])
      if DatasetVerifier.verify(probe, timeframe: timeframe, calendar: calendar).gapCount > 0 {
        windows.append(timeframe.next(after: previous)..<next)
        gapWindows += 1
      }
    }
    let tail = timeframe.next(after: last)
    if expectsBar(from: tail, before: to, timeframe: timeframe, calendar: calendar) { windows.append(tail..<to) }
    return Plan(windows: windows, internalGaps: gapWindows)
  }

  /// True when a bar opening in `[from, before)` could exist and be final by `before`.
  static func expectsBar(from: Int64, before: Int64, timeframe: Timeframe, calendar: TradingCalendar) -> Bool {
    guard timeframe.next(after: from) <= before else { return false }
    guard calendar == .weekdays, timeframe.unit != .week, timeframe.unit != .month else { return true }
    var day = from / UTCCalendar.dayMilliseconds
    while day * UTCCalendar.dayMilliseconds < before {
      if UTCCalendar.weekday(day * UTCCalendar.dayMilliseconds) < 5 { return true }
      day += 1
    }
    return false
  }
}
