/// Bars plus any extra columns (features), all aligned by position.
public struct Frame: Sendable, Equatable {
  public var bars: BarSeries
  public var timeframe: Timeframe
  public var calendar: TradingCalendar
  /// Extra columns in the order they were added.
  public var extraNames: [String]
  public var extra: [String: [Double]]

  public init(bars: BarSeries, timeframe: Timeframe, calendar: TradingCalendar, extra: [(String, [Double])] = []) {
    self.bars = bars
    self.timeframe = timeframe
    self.calendar = calendar
    extraNames = extra.map(\.0)
    self.extra = Dictionary(uniqueKeysWithValues: extra)
  }

  public var count: Int { bars.count }

  static let priceColumns = ["open", "high", "low", "close", "volume"]

  public func column(_ name: String) -> [Double]? {
    Self.priceColumns.contains(name) ? bars.column(named: name) : extra[name]
  }

  mutating func setColumn(_ name: String, _ values: [Double]) {
    if Self.priceColumns.contains(name) { return bars.setColumn(named: name, values) }
    if extra[name] == nil { extraNames.append(name) }
    extra[name] = values
  }

  /// Keeps the rows at `indices`, in that order, in every column.
  mutating func select(_ indices: [Int]) {
    bars = BarSeries(
      timestamps: indices.map { bars.timestamps[$0] }, open: indices.map { bars.open[$0] }, high: indices.map { bars.high[$0] },
      low: indices.map { bars.low[$0] }, close: indices.map { bars.close[$0] }, volume: indices.map { bars.volume[$0] })
    for name in extraNames { extra[name] = indices.map { extra[name]![$0] } }
  }
}
