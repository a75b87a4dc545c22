import Foundation

/// The one way qtool prints numbers and times for people — tables, summaries, messages and the
/// HTML reports all go through here, so a price never shows as `345.95288999999997`, a size of
/// 0.30000001 BTC never as `0.3`, and nothing comes out in scientific notation.
public enum DisplayFormat {
  /// A number as a user would write it: `20`, `0.5`, `1e+20`, `inf` — whole numbers without
  /// `.0`, the rest in Swift's shortest form (which reads back bit for bit).
  public static func written(_ value: Double) -> String {
    value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
  }

  /// The most decimals a price or size is shown with.
  public static let maximumPlaces = 8

  /// `value` with exactly `places` decimals, never in scientific notation; -0 prints as 0.
  public static func fixed(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "n/a" : (value > 0 ? "inf" : "-inf") }
    let places = max(0, min(places, 17))
    let text = String(format: "%.\(places)f", value)
    // A negative value that rounds to zero prints without its sign.
    if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) { return String(text.dropFirst()) }
    return text
  }

  /// The fewest decimals (at most `cap`) that show every one of `values` as it is stored:
  /// 345.95288999999997 needs 5 (it is 345.95289 in binary floating point), 0.30000001 needs 8,
  /// prices quoted in cents 2. An instrument's precision, derived from its stored prices.
  public static func places<S: Sequence>(of values: S, cap: Int = maximumPlaces) -> Int where S.Element == Double {
    var needed = 0
    for value in values where value.isFinite && value != 0 {
      while needed < cap && !exact(value, places: needed) { needed += 1 }
      if needed == cap { break }
    }
    return needed
  }

  private static let powers: [Double] = (0...17).map { pow(10, Double($0)) }

  /// Whether `value` rounded to `places` decimals is `value` up to floating-point noise.
  static func exact(_ value: Double, places: Int) -> Bool {
    let scaled = abs(value) * powers[places]
    // Relative to the value: a double carries about 16 significant digits, so what is left
    // below the 11th is representation noise, not a digit of the price.
    return abs(scaled - scaled.rounded()) <= max(1e-9, scaled * 1e-11)
  }

  /// A column of prices or sizes: each at the precision the whole column needs.
  public static func column(_ values: [Double], places: Int? = nil) -> [String] {
    let places = places ?? Self.places(of: values)
    return values.map { fixed($0, places: places) }
  }

  /// A ratio as a percent: 0.1234 → `12.34%`; n/a when undefined.
  public static func percent(_ ratio: Double, places: Int = 2) -> String {
    ratio.isNaN ? "n/a" : ratio.isInfinite ? (ratio > 0 ? "inf" : "-inf") : fixed(ratio * 100, places: places) + "%"
  }

  /// A count: always an integer.
  public static func count(_ value: Double) -> String {
    value.isFinite ? String(Int(value.rounded())) : fixed(value, places: 0)
  }

  /// `1 trade`, `2 trades`; `plural` for irregular words (`1 day`, `3 days` need none).
  public static func plural(_ count: Int, _ singular: String, _ plural: String? = nil) -> String {
    "\(count) " + (count == 1 ? singular : plural ?? singular + "s")
  }

  /// A param value: as written (`20`, `0.5`, `1.25`), never `20.0` or `2e-05`.
  public static func param(_ value: Double) -> String {
    guard value.isFinite else { return fixed(value, places: 0) }
    return fixed(value, places: places(of: [value], cap: 12))
  }

  // MARK: Metrics

  /// Metrics that are ratios, shown as percents (as the run's summary shows them).
  public static let percentMetrics: Set<String> = [
    "total_return", "annualized_return", "cagr", "volatility", "max_drawdown", "var_95", "cvar_95", "win_rate", "avg_win", "avg_loss", "best",
    "worst", "exposure", "buy_and_hold_return", "alpha",
  ]

  /// A metric as every table, summary and report shows it: ratios as percents, counts as
  /// integers, the rest with two decimals; n/a when undefined, inf when infinite.
  public static func metric(_ name: String, _ value: Double?) -> String {
    guard let value, !value.isNaN else { return "n/a" }
    if value.isInfinite { return value > 0 ? "inf" : "-inf" }
    if Metrics.isCount(name) { return count(value) }
    if percentMetrics.contains(name) { return percent(value) }
    return fixed(value, places: 2)
  }

  // MARK: Times

  /// Whether a column of times is shown as dates: every time is at midnight UTC (daily and
  /// longer bars); otherwise every time of the column is shown in RFC 3339.
  public static func isDaily<S: Sequence>(_ times: S) -> Bool where S.Element == Int64 {
    times.allSatisfy { $0 % 86_400_000 == 0 }
  }

  /// A time in the form its column uses: `2024-01-31` when `daily`, `2024-01-31T14:00:00Z` otherwise.
  public static func time(_ timestamp: Int64, daily: Bool) -> String {
    daily ? String(UTCCalendar.format(timestamp).prefix(10)) : UTCCalendar.format(timestamp, alwaysTime: true)
  }

  /// A column of times, all in one form (see `isDaily`).
  public static func times(_ timestamps: [Int64]) -> [String] {
    let daily = isDaily(timestamps)
    return timestamps.map { time($0, daily: daily) }
  }

  /// An ISO-8601 time from a report shown in the form of `daily`; `-` when missing.
  public static func time(_ iso: String?, daily: Bool) -> String {
    guard let iso else { return "-" }
    guard let timestamp = TimestampParser.parse(iso) else { return iso }
    return time(timestamp, daily: daily)
  }
}
