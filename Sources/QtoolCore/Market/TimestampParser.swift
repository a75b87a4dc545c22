/// Parses timestamps from raw bytes (CSV fields), to UTC epoch milliseconds, without allocating.
///
/// Accepts epoch numbers in seconds, milliseconds, microseconds or nanoseconds (told apart by
/// magnitude, per value, so a file that switches unit — Binance's spot archives did on
/// 2025-01-01 — still parses), `YYYYMMDD`, `YYYY-MM-DD`, and ISO-8601 date-times with `T` or a
/// space, optional fraction, and `Z` or `±hh:mm` offsets.
public enum TimestampParser {
  public enum EpochUnit: String, Sendable, CaseIterable, Codable {
    case seconds = "s", milliseconds = "ms", microseconds = "us", nanoseconds = "ns"
  }

  /// - parameter unit: force the unit of epoch numbers instead of guessing from magnitude.
  public static func parse(_ bytes: UnsafeBufferPointer<UInt8>, unit: EpochUnit? = nil) -> Int64? {
    var start = 0
    var end = bytes.count
    while start < end, bytes[start] == 32 || bytes[start] == 34 { start += 1 }  // spaces, quotes
    while end > start, bytes[end - 1] == 32 || bytes[end - 1] == 34 || bytes[end - 1] == 13 { end -= 1 }
    guard end > start else { return nil }
    let length = end - start

    // All digits (optionally a fraction): an epoch number or YYYYMMDD.
    var allDigits = true
    var dot = -1
    for i in start..<end {
      let b = bytes[i]
      if b == 46, dot < 0 { dot = i } else if b < 48 || b > 57 { allDigits = false; break }
    }
    if allDigits {
      let integerEnd = dot >= 0 ? dot : end
      var value: Int64 = 0
      for i in start..<integerEnd {
        let (product, overflow) = value.multipliedReportingOverflow(by: 10)
        guard !overflow else { return nil }
        value = product + Int64(bytes[i] - 48)
      }
      if dot < 0, integerEnd - start == 8, unit == nil {
        let year = Int(value / 10_000)
        let month = Int(value / 100 % 100)
        let day = Int(value % 100)
        if (1900...2200).contains(year), (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year) {
          return UTCCalendar.timestamp(year: year, month: month, day: day)
        }
      }
      var fraction = 0.0
      if dot >= 0 {
        var scale = 0.1
        for i in (dot + 1)..<end {
          fraction += Double(bytes[i] - 48) * scale
          scale /= 10
        }
      }
      switch unit ?? guessUnit(value) {
      case .seconds:
        // A forced unit may not fit: nil, never a trap on overflow.
        let (milliseconds, overflow) = value.multipliedReportingOverflow(by: 1000)
        let (total, overflowAgain) = milliseconds.addingReportingOverflow(Int64((fraction * 1000).rounded()))
        return overflow || overflowAgain ? nil : total
      case .milliseconds: return value
      case .microseconds: return value / 1000
      case .nanoseconds: return value / 1_000_000
      }
    }

    // YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM|±HHMM]
    func number(_ from: Int, _ count: Int) -> Int? {
      guard from + count <= end else { return nil }
      var value = 0
      for i in from..<(from + count) {
        let b = bytes[i]
        guard b >= 48, b <= 57 else { return nil }
        value = value * 10 + Int(b - 48)
      }
      return value
    }
    guard length >= 10, bytes[start + 4] == 45, bytes[start + 7] == 45 || bytes[start + 7] == 45,
      let year = number(start, 4), let month = number(start + 5, 2), let day = number(start + 8, 2),
      (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year)
    else { return nil }
    var ms = UTCCalendar.timestamp(year: year, month: month, day: day)
    var i = start + 10
    if i == end { return ms }
    guard bytes[i] == 84 || bytes[i] == 32, let hour = number(i + 1, 2), hour < 24, i + 3 < end, bytes[i + 3] == 58,
      let minute = number(i + 4, 2), minute < 60
    else { return nil }
    ms += Int64(hour * 3_600_000 + minute * 60_000)
    i += 6
    if i < end, bytes[i] == 58 {
      guard let second = number(i + 1, 2), second < 61 else { return nil }
      ms += Int64(second * 1000)
      i += 3
      if i < end, bytes[i] == 46 {
        i += 1
        var scale = 100
        while i < end, bytes[i] >= 48, bytes[i] <= 57 {
          ms += Int64(Int(bytes[i] - 48) * scale)
          scale /= 10
          i += 1
        }
      }
    }
    if i == end { return ms }
    if bytes[i] == 90, i + 1 == end { return ms }  // Z
    let sign = bytes[i]
    guard sign == 43 || sign == 45, let offsetHours = number(i + 1, 2) else { return nil }
    var offsetMinutes = 0
    if i + 3 < end {
      let minuteStart = bytes[i + 3] == 58 ? i + 4 : i + 3
      guard let minutes = number(minuteStart, 2), minuteStart + 2 == end else { return nil }
      offsetMinutes = minutes
    } else if i + 3 != end {
      return nil
    }
    let offset = Int64(offsetHours * 3_600_000 + offsetMinutes * 60_000)
    return sign == 43 ? ms - offset : ms + offset
  }

  /// The calendar date a timestamp is written with, in its own offset, as UTC midnight of that
  /// date: `2020-01-02T00:00:00+01:00` (the instant 2020-01-01T23:00Z) is 2020-01-02. What a
  /// daily (or longer) bar stamped at local midnight means. Nil for an epoch number, which
  /// is an instant with no date of its own, and for anything `parse` does not read.
  public static func localDate(_ bytes: UnsafeBufferPointer<UInt8>) -> Int64? {
    var start = 0
    var end = bytes.count
    while start < end, bytes[start] == 32 || bytes[start] == 34 { start += 1 }
    while end > start, bytes[end - 1] == 32 || bytes[end - 1] == 34 || bytes[end - 1] == 13 { end -= 1 }
    guard end - start >= 10, bytes[start + 4] == 45, bytes[start + 7] == 45,
      parse(UnsafeBufferPointer(rebasing: bytes[start..<end])) != nil
    else { return nil }
    // `parse` read it, so the first ten bytes are a valid date.
    func digits(_ from: Int, _ count: Int) -> Int { (from..<(from + count)).reduce(0) { $0 * 10 + Int(bytes[$1] - 48) } }

    return UTCCalendar.timestamp(year: digits(start, 4), month: digits(start + 5, 2), day: digits(start + 8, 2))
  }

  public static func localDate(_ text: String) -> Int64? {
    var text = text
    return text.withUTF8 { localDate($0) }
  }

  public static func parse(_ text: String, unit: EpochUnit? = nil) -> Int64? {
    var text = text
    return text.withUTF8 { parse($0, unit: unit) }
  }

  /// Seconds until 5138 AD, milliseconds until 5138, microseconds until 5138, then nanoseconds.
  static func guessUnit(_ value: Int64) -> EpochUnit {
    switch value {
    case ..<100_000_000_000: return .seconds
    case ..<100_000_000_000_000: return .milliseconds
    case ..<100_000_000_000_000_000: return .microseconds
    default: return .nanoseconds
    }
  }

  static func daysIn(month: Int, year: Int) -> Int {
    switch month {
    case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: return 30
    default: return 31
    }
  }
}
