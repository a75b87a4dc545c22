import Testing

@testable import QtoolCore

@Suite struct TimestampParserTests {
  @Test func epochUnitsAreToldApartBySize() {
    #expect(TimestampParser.parse("1735689600") == 1_735_689_600_000)
    #expect(TimestampParser.parse("1735689600000") == 1_735_689_600_000)
    #expect(TimestampParser.parse("1735689600000000") == 1_735_689_600_000)
    #expect(TimestampParser.parse("1735689600000000000") == 1_735_689_600_000)
    #expect(TimestampParser.parse("1735689600.5") == 1_735_689_600_500)
    #expect(TimestampParser.parse("1735689600", unit: .milliseconds) == 1_735_689_600)
  }

  @Test func calendarForms() {
    let day = UTCCalendar.timestamp(year: 2024, month: 1, day: 31)
    #expect(TimestampParser.parse("2024-01-31") == day)
    #expect(TimestampParser.parse("20240131") == day)
    #expect(TimestampParser.parse("\"2024-01-31\"") == day)
    #expect(TimestampParser.parse("2024-01-31 09:30:00") == day + 34_200_000)
    #expect(TimestampParser.parse("2024-01-31T09:30:00Z") == day + 34_200_000)
    #expect(TimestampParser.parse("2024-01-31T09:30:00.250Z") == day + 34_200_250)
    #expect(TimestampParser.parse("2024-01-31 09:30:00+00:00") == day + 34_200_000)
    #expect(TimestampParser.parse("2024-01-31T11:30:00+02:00") == day + 34_200_000)
    #expect(TimestampParser.parse("2024-01-31T04:30:00-0500") == day + 34_200_000)
    #expect(TimestampParser.parse("2024-01-31T09:30") == day + 34_200_000)
  }

  @Test func garbageIsRejected() {
    for text in ["", "abc", "2024-13-01", "2024-02-30", "2024-01-31T25:00", "2024/01/31", "2024-01-31X"] {
      #expect(TimestampParser.parse(text) == nil, "\(text)")
    }
  }

  /// Epoch seconds forced on a number too large for milliseconds: nil, not a trap.
  @Test func forcedSecondsThatOverflowAreRejected() {
    #expect(TimestampParser.parse("9223372036854775", unit: .seconds) == 9_223_372_036_854_775_000)
    #expect(TimestampParser.parse("9223372036854776", unit: .seconds) == nil)
    #expect(TimestampParser.parse("9223372036854775.9", unit: .seconds) == nil)
  }
}

@Suite struct LocalDateTests {
  @Test func theDateIsTheOneWrittenInItsOwnOffset() {
    let day = UTCCalendar.timestamp(year: 2020, month: 1, day: 2)
    #expect(TimestampParser.parse("2020-01-02T00:00:00+01:00") == day - 3_600_000, "the instant is the day before in UTC")
    #expect(TimestampParser.localDate("2020-01-02T00:00:00+01:00") == day)
    #expect(TimestampParser.localDate("2020-01-02 23:30:00-05:00") == day)
    #expect(TimestampParser.localDate("\"2020-01-02T00:00:00+0900\"") == day)
    #expect(TimestampParser.localDate("2020-01-02") == day)
    #expect(TimestampParser.localDate("2020-01-02T00:00:00Z") == day)
    #expect(TimestampParser.localDate("1577923200") == nil, "an epoch number is an instant")
    #expect(TimestampParser.localDate("2020-13-02T00:00:00+01:00") == nil)
    #expect(TimestampParser.localDate("Date") == nil)
  }
}
