import Testing

@testable import QtoolCore

@Suite struct BarValidationTests {
  let day: Int64 = 86_400_000
  let daily = Timeframe("1d")!

  func bars(_ rows: [(Int64, Double, Double, Double, Double, Double)]) -> BarSeries {
    var series = BarSeries()
    for row in rows { series.append(timestamp: row.0, open: row.1, high: row.2, low: row.3, close: row.4, volume: row.5) }
    return series
  }

  func problem(_ series: BarSeries, _ timeframe: Timeframe? = nil, calendar: TradingCalendar = .allDays) -> BarProblem? {
    BarValidation.check(series, timeframe: timeframe ?? daily, calendar: calendar, origin: BarOrigin(file: "f.csv", lines: Array(1...max(1, series.count))))
  }

  @Test func cleanBarsPass() {
    #expect(problem(bars([(0, 1, 2, 0.5, 1.5, 10), (day, 1.5, 1.5, 1.5, 1.5, 0)])) == nil)
  }

  @Test func eachRuleNamesTheLineAndWhy() {
    let cases: [((Int64, Double, Double, Double, Double, Double), BarProblem.Kind, String)] = [
      ((day, .infinity, 2, 0.5, 1.5, 1), .nonFinite, "open is inf"),
      ((day, 1, 2, 0.5, .nan, 1), .nonFinite, "close is nan"),
      ((day, 1, 2, 0.5, 1.5, .nan), .nonFinite, "volume is nan"),
      ((day, 0, 2, 0.5, 1.5, 1), .nonPositive, "open is 0; prices must be above zero"),
      ((day, 1, 2, -0.5, 1.5, 1), .nonPositive, "low is -0.5"),
      ((day, 1, 0.5, 2, 1, 1), .highBelowLow, "high 0.5 is below low 2"),
      ((day, 3, 2, 0.5, 1.5, 1), .ohlc, "open 3 or close 1.5 lies outside low 0.5 … high 2"),
      ((day, 1, 2, 0.5, 1.5, -1), .negativeVolume, "volume -1 is negative"),
      ((day + 3_600_000, 1, 2, 0.5, 1.5, 1), .offGrid, "not on the 1d grid"),
    ]
    for (row, kind, text) in cases {
      let found = problem(bars([(0, 1, 2, 0.5, 1.5, 1), row]))
      #expect(found?.kind == kind, "\(row)")
      #expect(found?.row == 1)
      #expect(found?.description.hasPrefix("f.csv:2 (") == true, "\(String(describing: found))")
      #expect(found?.reason.contains(text) == true, "\(String(describing: found?.reason)) should say \(text)")
    }
  }

  @Test func hourlyRowsInADailyFileAreRefused() {
    let found = problem(bars([(0, 1, 2, 0.5, 1.5, 1), (3_600_000, 1, 2, 0.5, 1.5, 1)]))
    #expect(found?.kind == .offGrid)
    #expect(found?.reason.contains("a row of another timeframe") == true)
  }

  /// Two bars are enough to tell hourly bars from daily ones; one wide step alone is not
  /// enough to call daily bars weekly (it may be a weekend and a holiday).
  @Test func spacingIsJudgedFromTwoBars() {
    let day = UTCCalendar.dayMilliseconds
    let start = UTCCalendar.timestamp(year: 2024, month: 1, day: 5)
    #expect(BarValidation.spacingProblem([start, start + 3_600_000], timeframe: Timeframe("1d")!) == "the bars are 1 hour apart, not 1d bars")
    #expect(BarValidation.spacingProblem([start, start + day], timeframe: Timeframe("1w")!) == "the bars are 1 day apart, not 1w bars")
    #expect(BarValidation.spacingProblem([start, start + 4 * day], timeframe: Timeframe("1d")!) == nil, "Friday to Tuesday over a holiday")
    #expect(BarValidation.spacingProblem([start, start + day], timeframe: Timeframe("1d")!) == nil)
    #expect(BarValidation.spacingProblem([start], timeframe: Timeframe("1d")!) == nil)
    #expect(
      BarValidation.spacingProblem([start, start + 7 * day, start + 14 * day], timeframe: Timeframe("1d")!) == "the bars are 7 days apart, not 1d bars")
  }

  @Test func equitySessionsMaySitOffTheHourButAllAlike() {
    let hour: Int64 = 3_600_000
    let session = day * 4 + 13 * hour + 1_800_000  // 13:30Z
    let aligned = bars([(session, 1, 2, 0.5, 1.5, 1), (session + hour, 1, 2, 0.5, 1.5, 1), (session + 25 * hour, 1, 2, 0.5, 1.5, 1)])
    #expect(problem(aligned, Timeframe("1h")!, calendar: .weekdays) == nil)
    let shifted = bars([(session, 1, 2, 0.5, 1.5, 1), (session + hour + 60_000, 1, 2, 0.5, 1.5, 1)])
    #expect(problem(shifted, Timeframe("1h")!, calendar: .weekdays)?.kind == .offGrid)
    #expect(problem(aligned, Timeframe("1h")!, calendar: .allDays)?.kind == .offGrid, "crypto hours are on the hour")
  }

  @Test func duplicatesIdenticalAreDroppedDifferentAreRefused() throws {
    let origin = BarOrigin(file: "f.csv", lines: [1, 2, 3, 4])
    let same = bars([(0, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.5, 1), (2 * day, 1, 2, 0.5, 1.5, 1)])
    let result = try BarValidation.deduplicate(same, origin: origin).get()
    #expect(result.series.timestamps == [0, day, 2 * day])
    #expect(result.identical == 1)
    let different = bars([(0, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.5, 1), (2 * day, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.7, 1)])
    guard case .failure(let problem) = BarValidation.deduplicate(different, origin: origin) else {
      Issue.record("conflicting rows must be refused")
      return
    }
    #expect(problem.kind == .conflictingDuplicate)
    #expect(problem.reason == "line 2 and line 4 both open at 1970-01-02T00:00:00Z with different values (close 1.5 vs 1.7)")
  }

  @Test func changesAreCountedBeforeWriting() {
    let stored = bars([(0, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.5, 1), (2 * day, 1, 2, 0.5, 1.5, 1), (5 * day, 1, 2, 0.5, 1.5, 1)])
    let incoming = bars([(0, 1, 2, 0.5, 1.5, 1), (day, 1, 2, 0.5, 1.6, 1), (3 * day, 1, 2, 0.5, 1.5, 1)])
    let changes = BarChanges.compare(stored: stored, incoming: incoming, window: 0..<(4 * day))
    #expect(changes.added == 1)
    #expect(changes.replaced == 1)
    #expect(changes.unchanged == 1)
    #expect(changes.removed == [2 * day], "day 5 is outside the refetched window")
  }

  @Test func verifyNamesTheMonthsToRefetch() {
    var series = bars([])
    for d in [0, 1, 2, 40, 41] as [Int64] { series.append(timestamp: d * day, open: 1, high: 2, low: 0.5, close: 1.5, volume: 1) }
    series.high[4] = 0.1  // a bad bar on 1970-02-11
    let report = DatasetVerifier.verify(series, timeframe: daily, calendar: .allDays)
    #expect(report.refetchMonths(timeframe: daily) == ["1970-01", "1970-02"], "the gap from 01-04 to 02-09 and the bad bar")
    let gapInMarch = DatasetVerifier.verify(
      bars([(UTCCalendar.timestamp(year: 2024, month: 2, day: 29), 1, 2, 0.5, 1.5, 1), (UTCCalendar.timestamp(year: 2024, month: 4, day: 1), 1, 2, 0.5, 1.5, 1)]),
      timeframe: daily, calendar: .allDays)
    #expect(gapInMarch.refetchMonths(timeframe: daily) == ["2024-03"])
  }
}
