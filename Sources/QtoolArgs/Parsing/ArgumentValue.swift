import Foundation

/// A parsed, type-checked value.
public enum ArgumentValue: Sendable, Equatable {
  case string(String)
  case int(Int)
  case double(Double)
  case bool(Bool)
  case date(Date)
  /// Seconds.
  case duration(Int)

  /// Converts `text` to `type`, or returns nil when it does not have that form.
  static func convert(_ text: String, to type: ValueType) -> ArgumentValue? {
    switch type {
    // An empty path names no file (a shell variable that came out empty): refused here, as a
    // usage error, rather than by whatever the file system says of "".
    case .path(.namedFile), .path(.directory):
      return text == "-" || text.isEmpty ? nil : .string(text)
    case .path:
      return text.isEmpty ? nil : .string(text)
    case .string:
      return .string(text)
    case .int:
      return Int(text).map(ArgumentValue.int)
    case .double:
      guard let value = Double(text), value.isFinite else { return nil }
      return .double(value)
    case .date:
      return ValueParsing.date(text).map(ArgumentValue.date)
    case .duration:
      return ValueParsing.durationSeconds(text).map(ArgumentValue.duration)
    case .timeframe:
      return ValueParsing.isTimeframe(text) ? .string(text) : nil
    case .choice(let values):
      return values.contains(text) ? .string(text) : nil
    }
  }
}

/// Parsers for the textual forms the command line accepts.
public enum ValueParsing {
  /// `2024-01-31`, `2024-01-31T12:00:00Z`, `2024-01-31T12:00:00.250+02:00`, `2024-01-31 12:00`.
  public static func date(_ text: String) -> Date? {
    let bytes = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int? {
      guard range.upperBound <= bytes.count else { return nil }
      var value = 0
      for index in range {
        let byte = bytes[index]
        guard byte >= 48, byte <= 57 else { return nil }
        value = value * 10 + Int(byte - 48)
      }
      return value
    }
    guard bytes.count >= 10, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
      let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
      (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
    else { return nil }
    var seconds = Double(daysFromCivil(year: year, month: month, day: day)) * 86_400
    if bytes.count == 10 { return Date(timeIntervalSince1970: seconds) }
    guard bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " "),
      let hour = number(11..<13), hour < 24, bytes.count >= 16, bytes[13] == UInt8(ascii: ":"),
      let minute = number(14..<16), minute < 60
    else { return nil }
    seconds += Double(hour * 3600 + minute * 60)
    var index = 16
    if index < bytes.count, bytes[index] == UInt8(ascii: ":") {
      guard let second = number(17..<19), second < 61 else { return nil }
      seconds += Double(second)
      index = 19
      if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        var scale = 0.1
        index += 1
        let start = index
        while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
          seconds += Double(bytes[index] - 48) * scale
          scale /= 10
          index += 1
        }
        guard index > start else { return nil }
      }
    }
    if index == bytes.count { return Date(timeIntervalSince1970: seconds) }
    if bytes[index] == UInt8(ascii: "Z"), index + 1 == bytes.count {
      return Date(timeIntervalSince1970: seconds)
    }
    let sign = bytes[index]
    guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"), bytes.count == index + 6,
      let offsetHours = number(index + 1..<index + 3), bytes[index + 3] == UInt8(ascii: ":"),
      let offsetMinutes = number(index + 4..<index + 6)
    else { return nil }
    let offset = Double(offsetHours * 3600 + offsetMinutes * 60)
    return Date(timeIntervalSince1970: sign == UInt8(ascii: "+") ? seconds - offset : seconds + offset)
  }

  /// `90s`, `15m`, `4h`, `2d`, `1w` in seconds; at most 1000 years (so that callers can count
  /// it in milliseconds back from now without overflow).
  public static func durationSeconds(_ text: String) -> Int? {
    guard let unit = text.last, let count = Int(text.dropLast()), count > 0, !text.hasPrefix("+") else { return nil }
    let scale: Int
    switch unit {
    case "s": scale = 1
    case "m": scale = 60
    case "h": scale = 3600
    case "d": scale = 86_400
    case "w": scale = 604_800
    default: return nil
    }
    let (seconds, overflow) = count.multipliedReportingOverflow(by: scale)
    guard !overflow, seconds <= 31_536_000_000 else { return nil }
    return seconds
  }

  /// `1m`…`1M`: a count from 1 to 1,000,000 and one of s, m, h, d, w, M (month), as QtoolCore's
  /// Timeframe reads it.
  public static func isTimeframe(_ text: String) -> Bool {
    guard let unit = text.last, "smhdwM".contains(unit), let count = Int(text.dropLast()),
      count > 0, count <= 1_000_000, !text.hasPrefix("+")
    else { return false }
    return true
  }

  static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }
}
