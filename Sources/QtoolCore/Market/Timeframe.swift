/// A bar interval such as `1m`, `4h`, `1d`, `1w` or `1M` (calendar month).
///
/// Fixed-length timeframes have an exact length in milliseconds; `1M` is a calendar month
/// and is aligned on month starts instead.
public struct Timeframe: Hashable, Sendable, CustomStringConvertible, Codable {
  public enum Unit: Character, Sendable, Codable {
    case second = "s", minute = "m", hour = "h", day = "d", week = "w", month = "M"
  }

  public let count: Int
  public let unit: Unit

  /// The largest count: larger ones overflowed the millisecond arithmetic (1706732417067M).
  /// `ValueParsing.isTimeframe` on the command line takes the same.
  public static let maxCount = 1_000_000

  public init?(_ text: String) {
    guard let last = text.last, let unit = Unit(rawValue: last), let count = Int(text.dropLast()),
      count > 0, count <= Self.maxCount, !text.hasPrefix("+")
    else { return nil }
    self.count = count
    self.unit = unit
  }

  public init(count: Int, unit: Unit) {
    self.count = count
    self.unit = unit
  }

  public var description: String { "\(count)\(unit.rawValue)" }

  /// The length in milliseconds; for months, the average month (30.44 days), used only for
  /// annualisation and gap estimates.
  public var milliseconds: Int64 {
    let base: Int64
    switch unit {
    case .second: base = 1_000
    case .minute: base = 60_000
    case .hour: base = 3_600_000
    case .day: base = 86_400_000
    case .week: base = 604_800_000
    case .month: base = 2_629_746_000
    }
    return base * Int64(count)
  }

  public var isCalendarMonth: Bool { unit == .month }

  /// True when `timestamp` (epoch ms, UTC) is a bar boundary of this timeframe. Weeks start on
  /// Monday, as on Binance.
  public func isAligned(_ timestamp: Int64) -> Bool {
    switch unit {
    case .month:
      let (_, month, day, rest) = UTCCalendar.components(timestamp)
      return day == 1 && rest == 0 && (month - 1) % count == 0
    case .week:
      // 1970-01-05 was a Monday.
      let mondayOrigin: Int64 = 4 * 86_400_000
      return (timestamp - mondayOrigin) %% milliseconds == 0
    default:
      return timestamp %% milliseconds == 0
    }
  }

  /// The start of the next bar after the one opening at `timestamp`.
  public func next(after timestamp: Int64) -> Int64 {
    guard unit == .month else { return timestamp + milliseconds }
    let (year, month, _, _) = UTCCalendar.components(timestamp)
    let total = year * 12 + (month - 1) + count
    return UTCCalendar.timestamp(year: total / 12, month: total % 12 + 1, day: 1)
  }

  /// Bars per year for annualising metrics on a calendar where a year has `tradingDays` days.
  public func barsPerYear(tradingDays: Double) -> Double {
    switch unit {
    case .month: return 12.0 / Double(count)
    case .week: return 52.0 / Double(count)
    default: return tradingDays * 86_400_000.0 / Double(milliseconds)
    }
  }

  public init(from decoder: any Decoder) throws {
    let text = try decoder.singleValueContainer().decode(String.self)
    guard let value = Timeframe(text) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not a timeframe: \(text)"))
    }
    self = value
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(description)
  }
}

infix operator %% : MultiplicationPrecedence
/// Modulo that is never negative, for timestamps before 1970.
@inline(__always) func %% (lhs: Int64, rhs: Int64) -> Int64 {
  let r = lhs % rhs
  return r < 0 ? r + rhs : r
}
