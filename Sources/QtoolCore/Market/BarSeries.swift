/// OHLCV bars as contiguous columns: what every hot loop (ingest, verify, indicators, the
/// backtest engine) iterates over. Timestamps are the bar open time in epoch milliseconds UTC.
public struct BarSeries: Sendable, Equatable {
  public var timestamps: [Int64]
  public var open: [Double]
  public var high: [Double]
  public var low: [Double]
  public var close: [Double]
  public var volume: [Double]
  /// A derived dataset's feature columns (`data preprocess --op 'features …'`), by name, each
  /// as long as the bars; rules read them by name. Empty for downloaded and imported data.
  public var columns: [String: [Double]] = [:]

  public init(
    timestamps: [Int64] = [], open: [Double] = [], high: [Double] = [], low: [Double] = [],
    close: [Double] = [], volume: [Double] = []
  ) {
    precondition(
      [open.count, high.count, low.count, close.count, volume.count].allSatisfy { $0 == timestamps.count },
      "columns of a BarSeries must have equal lengths")
    self.timestamps = timestamps
    self.open = open
    self.high = high
    self.low = low
    self.close = close
    self.volume = volume
  }

  public init(reservingCapacity capacity: Int) {
    self.init()
    reserveCapacity(capacity)
  }

  public var count: Int { timestamps.count }

  /// The column a rule reads by `name`: one of the five price columns, else a feature column.
  public func column(named name: String) -> [Double]? {
    switch name {
    case "open": return open
    case "high": return high
    case "low": return low
    case "close": return close
    case "volume": return volume
    default: return columns[name]
    }
  }

  /// Sets the column a rule reads by `name` (as `column(named:)` finds it).
  public mutating func setColumn(named name: String, _ values: [Double]) {
    switch name {
    case "open": open = values
    case "high": high = values
    case "low": low = values
    case "close": close = values
    case "volume": volume = values
    default: columns[name] = values
    }
  }
  public var isEmpty: Bool { timestamps.isEmpty }

  public mutating func reserveCapacity(_ capacity: Int) {
    timestamps.reserveCapacity(capacity)
    open.reserveCapacity(capacity)
    high.reserveCapacity(capacity)
    low.reserveCapacity(capacity)
    close.reserveCapacity(capacity)
    volume.reserveCapacity(capacity)
  }

  public mutating func append(timestamp: Int64, open: Double, high: Double, low: Double, close: Double, volume: Double) {
    timestamps.append(timestamp)
    self.open.append(open)
    self.high.append(high)
    self.low.append(low)
    self.close.append(close)
    self.volume.append(volume)
  }

  /// Appends bar `index` of `other`.
  @inline(__always)
  public mutating func append(_ other: BarSeries, at index: Int) {
    append(
      timestamp: other.timestamps[index], open: other.open[index], high: other.high[index], low: other.low[index], close: other.close[index],
      volume: other.volume[index])
  }

  public mutating func append(contentsOf other: BarSeries) {
    timestamps += other.timestamps
    open += other.open
    high += other.high
    low += other.low
    close += other.close
    volume += other.volume
  }

  /// The bars in `range` of positions.
  public func slice(_ range: Range<Int>) -> BarSeries {
    var sliced = BarSeries(
      timestamps: Array(timestamps[range]), open: Array(open[range]), high: Array(high[range]),
      low: Array(low[range]), close: Array(close[range]), volume: Array(volume[range]))
    sliced.columns = columns.mapValues { Array($0[range]) }
    return sliced
  }

  /// The position of the first bar at or after `timestamp` (`count` if none), for sorted
  /// timestamps (binary search).
  public func index(atOrAfter timestamp: Int64) -> Int {
    var low = 0
    var high = timestamps.count
    while low < high {
      let middle = (low + high) / 2
      if timestamps[middle] < timestamp { low = middle + 1 } else { high = middle }
    }
    return low
  }

  /// The bars with `from <= timestamp < to`, for sorted timestamps (binary search).
  public func between(from: Int64, to: Int64) -> BarSeries {
    let first = index(atOrAfter: from)
    let end = max(first, index(atOrAfter: to))
    return first == 0 && end == count ? self : slice(first..<end)
  }

  /// Sorted by timestamp; for equal timestamps the last one given wins (as an upsert would).
  public func sortedAndDeduplicated() -> BarSeries {
    if zip(timestamps, timestamps.dropFirst()).allSatisfy({ $0 < $1 }) { return self }
    let order = timestamps.indices.sorted { timestamps[$0] < timestamps[$1] || (timestamps[$0] == timestamps[$1] && $0 < $1) }
    var result = BarSeries(reservingCapacity: count)
    for index in order {
      if let last = result.timestamps.last, last == timestamps[index] {
        result.open[result.count - 1] = open[index]
        result.high[result.count - 1] = high[index]
        result.low[result.count - 1] = low[index]
        result.close[result.count - 1] = close[index]
        result.volume[result.count - 1] = volume[index]
      } else {
        result.append(timestamp: timestamps[index], open: open[index], high: high[index], low: low[index], close: close[index], volume: volume[index])
      }
    }
    return result
  }
}
