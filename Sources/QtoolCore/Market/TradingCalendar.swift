/// When a market trades, which decides what counts as a gap in a dataset.
public enum TradingCalendar: String, Sendable, Codable, CaseIterable {
  /// Crypto: every minute of every day.
  case allDays = "24x7"
  /// Equities and FX: Monday to Friday; a weekend is never a gap.
  case weekdays

  /// Days a year used to annualise daily returns on this calendar.
  public var tradingDaysPerYear: Double {
    switch self {
    case .allDays: return 365
    case .weekdays: return 252
    }
  }

  /// True when a bar opening at `timestamp` is expected on this calendar.
  public func isTradingTime(_ timestamp: Int64) -> Bool {
    switch self {
    case .allDays: return true
    case .weekdays: return UTCCalendar.weekday(timestamp) < 5
    }
  }

  /// A sensible default for a source or a symbol: crypto sources trade all week.
  public static func guess(source: String, symbol: String) -> TradingCalendar {
    let crypto = ["binance", "binance-bulk"]
    if crypto.contains(source) { return .allDays }
    let upper = symbol.uppercased()
    let cryptoQuotes = ["USDT", "BUSD", "USDC", "-USD", "BTC", "ETH"]
    if cryptoQuotes.contains(where: { upper.hasSuffix($0) }) && !upper.contains("=") { return .allDays }
    return .weekdays
  }
}
