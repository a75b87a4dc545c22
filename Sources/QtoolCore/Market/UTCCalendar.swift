/// Civil-date arithmetic on epoch milliseconds in UTC, without Foundation's Calendar (which is
/// slow in hot loops and depends on the process time zone).
public enum UTCCalendar {
  public static let dayMilliseconds: Int64 = 86_400_000

  /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
  public static func days(year: Int, month: Int, day: Int) -> Int64 {
    let y = Int64(month <= 2 ? year - 1 : year)
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let m = Int64(month)
    let dayOfYear = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + Int64(day) - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  public static func timestamp(year: Int, month: Int, day: Int) -> Int64 {
    days(year: year, month: month, day: day) * dayMilliseconds
  }

  /// (year, month, day, milliseconds into the day).
  public static func components(_ timestamp: Int64) -> (Int, Int, Int, Int64) {
    var dayNumber = timestamp / dayMilliseconds
    var rest = timestamp % dayMilliseconds
    if rest < 0 {
      rest += dayMilliseconds
      dayNumber -= 1
    }
    let z = dayNumber + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let mp = (5 * dayOfYear + 2) / 153
    let day = dayOfYear - (153 * mp + 2) / 5 + 1
    let month = mp < 10 ? mp + 3 : mp - 9
    let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    return (Int(year), Int(month), Int(day), rest)
  }

  /// 0 = Monday … 6 = Sunday.
  public static func weekday(_ timestamp: Int64) -> Int {
    var dayNumber = timestamp / dayMilliseconds
    if timestamp % dayMilliseconds < 0 { dayNumber -= 1 }
    // 1970-01-01 was a Thursday (3).
    return Int(((dayNumber + 3) % 7 + 7) % 7)
  }

  /// `2024-01-31` or `2024-01-31T12:00:00Z` (the time part only when it is not midnight).
  public static func format(_ timestamp: Int64, alwaysTime: Bool = false) -> String {
    let (year, month, day, rest) = components(timestamp)
    let date = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))"
    if rest == 0 && !alwaysTime { return date }
    let seconds = rest / 1000
    let millis = rest % 1000
    var time = "\(pad(Int(seconds / 3600), 2)):\(pad(Int(seconds / 60 % 60), 2)):\(pad(Int(seconds % 60), 2))"
    if millis != 0 { time += "." + pad(Int(millis), 3) }
    return date + "T" + time + "Z"
  }

  private static func pad(_ value: Int, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
  }
}
