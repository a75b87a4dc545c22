import Foundation
import Testing

@testable import QtoolArgs

@Suite struct ValueParsingTests {
  /// An empty path (a shell variable that came out empty) names no file: refused while parsing.
  @Test func anEmptyPathIsNoPath() {
    for kind in [PathKind.file(extensions: []), .namedFile(extensions: ["db"]), .directory] {
      #expect(ArgumentValue.convert("", to: .path(kind)) == nil, "\(kind)")
      #expect(ArgumentValue.convert("a.db", to: .path(kind)) == .string("a.db"), "\(kind)")
    }
    #expect(ArgumentValue.convert("-", to: .path(.file(extensions: []))) == .string("-"), "- is standard input or output")
    #expect(ArgumentValue.convert("", to: .string) == .string(""))
  }

  @Test func datesAreUTC() {
    #expect(ValueParsing.date("2024-01-31")?.timeIntervalSince1970 == 1_706_659_200)
    #expect(ValueParsing.date("2024-01-31T12:30:00Z")?.timeIntervalSince1970 == 1_706_704_200)
    #expect(ValueParsing.date("2024-01-31T14:30:00+02:00")?.timeIntervalSince1970 == 1_706_704_200)
    #expect(ValueParsing.date("2024-01-31 12:30")?.timeIntervalSince1970 == 1_706_704_200)
    #expect(ValueParsing.date("2024-01-31T12:30:00.5Z")?.timeIntervalSince1970 == 1_706_704_200.5)
    #expect(ValueParsing.date("2024-02-29") != nil)
  }

  @Test func impossibleDatesAreRejected() {
    for text in ["2024-13-01", "2023-02-29", "2024-1-01", "24-01-01", "2024-01-31T25:00", "2024-01-31X", "tomorrow"] {
      #expect(ValueParsing.date(text) == nil, "\(text)")
    }
  }

  @Test func durations() {
    #expect(ValueParsing.durationSeconds("90s") == 90)
    #expect(ValueParsing.durationSeconds("15m") == 900)
    #expect(ValueParsing.durationSeconds("4h") == 14_400)
    #expect(ValueParsing.durationSeconds("2d") == 172_800)
    #expect(ValueParsing.durationSeconds("1w") == 604_800)
    #expect(ValueParsing.durationSeconds("0m") == nil)
    #expect(ValueParsing.durationSeconds("m") == nil)
    #expect(ValueParsing.durationSeconds("+5m") == nil, "as the server reads it")
    // Too many seconds for an Int: nil, not a trap (found by fuzzing).
    #expect(ValueParsing.durationSeconds("202406700000000000m") == nil)
    // At most 1000 years, so that a duration counted back from now in milliseconds cannot overflow.
    #expect(ValueParsing.durationSeconds("\(Int.max / 604_800)w") == nil)
    #expect(ValueParsing.durationSeconds("365000d") == 31_536_000_000)
    #expect(ValueParsing.durationSeconds("365001d") == nil)
  }

  @Test func timeframes() {
    for text in ["1m", "15m", "1h", "4h", "1d", "1w", "1M", "30s"] { #expect(ValueParsing.isTimeframe(text), "\(text)") }
    for text in ["1y", "h", "0h", "-1h", "+1h", "1.5h", "1000001m", "1706732417067M"] { #expect(!ValueParsing.isTimeframe(text), "\(text)") }
    #expect(ValueParsing.isTimeframe("1000000M"))
  }
}
