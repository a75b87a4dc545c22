/// Results derived from the equity curve: drawdown periods and calendar-month returns.
public enum ResultSeries {
  public struct DrawdownPeriod: Codable, Sendable, Equatable {
    public var start: String
    public var trough: String
    /// When equity regained the peak; nil while still under water at the end.
    public var end: String?
    /// The deepest fall in the period, negative (e.g. -0.12).
    public var depth: Double
    public var days: Double
  }

  public struct MonthlyReturn: Codable, Sendable, Equatable {
    public var month: String
    public var value: Double
    enum CodingKeys: String, CodingKey { case month, value = "return" }
  }

  /// Every period under a previous equity peak, deepest first.
  public static func drawdownPeriods(_ timestamps: [Int64], _ equity: [Double]) -> [DrawdownPeriod] {
    var periods: [DrawdownPeriod] = []
    var peak = equity.first ?? 0
    var peakIndex = 0
    var troughIndex = 0
    var underwater = false
    func close(_ endIndex: Int?) {
      let last = endIndex ?? (equity.count - 1)
      periods.append(
        DrawdownPeriod(
          start: UTCCalendar.format(timestamps[peakIndex], alwaysTime: true), trough: UTCCalendar.format(timestamps[troughIndex], alwaysTime: true),
          end: endIndex.map { UTCCalendar.format(timestamps[$0], alwaysTime: true) }, depth: equity[troughIndex] / peak - 1,
          days: Double(timestamps[last] - timestamps[peakIndex]) / 86_400_000))
    }
    for i in equity.indices {
      if equity[i] >= peak {
        if underwater { close(i) }
        underwater = false
        peak = equity[i]
        peakIndex = i
        troughIndex = i
      } else {
        if !underwater { troughIndex = i }
        underwater = true
        if equity[i] < equity[troughIndex] { troughIndex = i }
      }
    }
    if underwater { close(nil) }
    return periods.sorted { $0.depth < $1.depth }
  }

  /// The return of each calendar month (UTC), from month-end to month-end equity.
  public static func monthlyReturns(_ timestamps: [Int64], _ equity: [Double]) -> [MonthlyReturn] {
    var result: [MonthlyReturn] = []
    var previous = equity.first ?? 0
    var i = 0
    while i < timestamps.count {
      let (year, month, _, _) = UTCCalendar.components(timestamps[i])
      // The month's last bar: every bar before the first of the next month.
      let nextMonth = Timeframe(count: 1, unit: .month).next(after: timestamps[i])
      var j = i
      while j + 1 < timestamps.count, timestamps[j + 1] < nextMonth { j += 1 }
      result.append(MonthlyReturn(month: "\(year)-\(month < 10 ? "0" : "")\(month)", value: previous != 0 ? equity[j] / previous - 1 : 0))
      previous = equity[j]
      i = j + 1
    }
    return result
  }
}
