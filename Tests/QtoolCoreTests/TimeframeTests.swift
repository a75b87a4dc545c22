import Testing

@testable import QtoolCore

@Suite struct TimeframeTests {
  @Test func parsesAndMeasures() {
    #expect(Timeframe("1h")?.milliseconds == 3_600_000)
    #expect(Timeframe("15m")?.milliseconds == 900_000)
    #expect(Timeframe("1d")?.description == "1d")
    #expect(Timeframe("1y") == nil)
    #expect(Timeframe("0d") == nil)
    // Counts past a million overflowed the millisecond arithmetic (found by fuzzing).
    #expect(Timeframe("1706732417067M") == nil)
    #expect(Timeframe("1000000M")!.next(after: 0) == UTCCalendar.timestamp(year: 85303, month: 5, day: 1))
  }

  @Test func alignment() {
    let day = Timeframe("1d")!
    #expect(day.isAligned(UTCCalendar.timestamp(year: 2024, month: 3, day: 1)))
    #expect(!day.isAligned(UTCCalendar.timestamp(year: 2024, month: 3, day: 1) + 3_600_000))
    let week = Timeframe("1w")!
    #expect(week.isAligned(UTCCalendar.timestamp(year: 2024, month: 1, day: 1)), "2024-01-01 was a Monday")
    #expect(!week.isAligned(UTCCalendar.timestamp(year: 2024, month: 1, day: 2)))
    let month = Timeframe("1M")!
    #expect(month.isAligned(UTCCalendar.timestamp(year: 2024, month: 2, day: 1)))
    #expect(month.next(after: UTCCalendar.timestamp(year: 2024, month: 12, day: 1)) == UTCCalendar.timestamp(year: 2025, month: 1, day: 1))
  }

  @Test func barsPerYear() {
    #expect(Timeframe("1d")!.barsPerYear(tradingDays: 252) == 252)
    #expect(Timeframe("1h")!.barsPerYear(tradingDays: 365) == 8760)
  }
}

@Suite struct UTCCalendarTests {
  @Test func roundTripsCivilDates() {
    for (y, m, d) in [(1970, 1, 1), (2000, 2, 29), (2024, 12, 31), (1969, 12, 31), (2100, 3, 1)] {
      let ts = UTCCalendar.timestamp(year: y, month: m, day: d)
      let (year, month, day, rest) = UTCCalendar.components(ts)
      #expect(year == y && month == m && day == d && rest == 0)
    }
  }

  @Test func weekdaysAndFormatting() {
    #expect(UTCCalendar.weekday(UTCCalendar.timestamp(year: 2024, month: 1, day: 6)) == 5, "Saturday")
    #expect(UTCCalendar.format(UTCCalendar.timestamp(year: 2024, month: 1, day: 6)) == "2024-01-06")
    #expect(UTCCalendar.format(1_706_704_200_250) == "2024-01-31T12:30:00.250Z")
  }
}

@Suite struct BarSeriesTests {
  @Test func sortsAndKeepsTheLastDuplicate() {
    let series = BarSeries(
      timestamps: [3, 1, 2, 1], open: [3, 1, 2, 9], high: [3, 1, 2, 9], low: [3, 1, 2, 9], close: [3, 1, 2, 9],
      volume: [3, 1, 2, 9])
    let clean = series.sortedAndDeduplicated()
    #expect(clean.timestamps == [1, 2, 3])
    #expect(clean.close == [9, 2, 3])
  }
}
