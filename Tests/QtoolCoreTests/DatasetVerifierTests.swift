import Testing

@testable import QtoolCore

func bars(_ timestamps: [Int64], close: Double = 10) -> BarSeries {
  BarSeries(
    timestamps: timestamps, open: timestamps.map { _ in close }, high: timestamps.map { _ in close + 1 },
    low: timestamps.map { _ in close - 1 }, close: timestamps.map { _ in close }, volume: timestamps.map { _ in 1 })
}

let hour: Int64 = 3_600_000
let day: Int64 = 86_400_000

@Suite struct DatasetVerifierTests {
  @Test func cleanHourlyCrypto() {
    let report = DatasetVerifier.verify(bars((0..<48).map { $0 * hour }), timeframe: Timeframe("1h")!, calendar: .allDays)
    #expect(report.ok)
    #expect(report.warnings.isEmpty)
  }

  @Test func gapOn24x7() {
    let report = DatasetVerifier.verify(bars([0, hour, 4 * hour, 5 * hour]), timeframe: Timeframe("1h")!, calendar: .allDays)
    #expect(report.problems.count == 1)
    #expect(report.problems[0].kind == .gap)
    #expect(report.problems[0].missing == 2)
    #expect(report.problems[0].message == "2 bars missing between 1970-01-01T01:00:00Z and 1970-01-01T04:00:00Z")
  }

  @Test func weekendsAreNotGapsOnWeekdays() {
    // Friday 2024-01-05 then Monday 2024-01-08.
    let friday = UTCCalendar.timestamp(year: 2024, month: 1, day: 5)
    let report = DatasetVerifier.verify(bars([friday, friday + 3 * day]), timeframe: Timeframe("1d")!, calendar: .weekdays)
    #expect(report.ok)
    #expect(report.warnings.isEmpty)
    let crypto = DatasetVerifier.verify(bars([friday, friday + 3 * day]), timeframe: Timeframe("1d")!, calendar: .allDays)
    #expect(crypto.problems.first?.missing == 2)
  }

  @Test func loneMissingWeekdayIsAPossibleHolidayAndThreeAreAGap() {
    let monday = UTCCalendar.timestamp(year: 2024, month: 1, day: 8)
    let holiday = DatasetVerifier.verify(bars([monday, monday + 2 * day]), timeframe: Timeframe("1d")!, calendar: .weekdays)
    #expect(holiday.ok)
    #expect(holiday.warnings.map(\.kind) == [.possibleHoliday])
    #expect(holiday.warnings[0].message == "no bars on weekday 2024-01-09; a market holiday?")
    let gap = DatasetVerifier.verify(bars([monday, monday + 4 * day]), timeframe: Timeframe("1d")!, calendar: .weekdays)
    #expect(gap.problems.map(\.kind) == [.gap])
    #expect(gap.problems[0].missing == 3)
  }

  @Test func impossibleBarsDuplicatesAndOffGrid() {
    var series = bars([0, hour, hour, 2 * hour + 60_000])
    series.high[0] = 5  // below open/close
    series.volume[1] = -1
    let report = DatasetVerifier.verify(series, timeframe: Timeframe("1h")!, calendar: .allDays)
    let kinds = report.problems.map(\.kind)
    #expect(kinds.contains(.ohlc))
    #expect(kinds.contains(.negativeVolume))
    #expect(kinds.contains(.duplicate))
    #expect(kinds.contains(.offGrid))
  }

  @Test func monthlyBarsLabelledAtMonthEnd() {
    let ends = [(2024, 1, 31), (2024, 2, 29), (2024, 3, 31), (2024, 5, 31)].map { UTCCalendar.timestamp(year: $0.0, month: $0.1, day: $0.2) }
    let report = DatasetVerifier.verify(bars(ends), timeframe: Timeframe("1M")!, calendar: .weekdays)
    #expect(report.problems.map(\.kind) == [.gap])
    #expect(report.problems[0].missing == 1)
  }
}
