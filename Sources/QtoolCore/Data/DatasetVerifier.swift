/// One finding of `data verify`.
public struct VerifyFinding: Codable, Sendable, Equatable {
  public enum Kind: String, Codable, Sendable {
    case gap, possibleHoliday = "possible_holiday", duplicate, ohlc, negativeVolume = "negative_volume"
    case offGrid = "off_grid", nonFinite = "non_finite", outOfOrder = "out_of_order", nonPositive = "non_positive", spacing
  }

  public var kind: Kind
  /// The bar concerned, or the last bar before a gap.
  public var timestamp: Int64
  /// For gaps: the first bar after it.
  public var until: Int64?
  /// For gaps: how many bars (or weekdays) are missing.
  public var missing: Int?
  public var message: String

  enum CodingKeys: String, CodingKey { case kind, timestamp = "time", until, missing, message }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(kind, forKey: .kind)
    try container.encode(UTCCalendar.format(timestamp, alwaysTime: true), forKey: .timestamp)
    try container.encode(until.map { UTCCalendar.format($0, alwaysTime: true) }, forKey: .until)
    try container.encode(missing, forKey: .missing)
    try container.encode(message, forKey: .message)
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    func time(_ key: CodingKeys) throws -> Int64? {
      guard let text = try container.decodeIfPresent(String.self, forKey: key) else { return nil }
      guard let value = TimestampParser.parse(text) else {
        throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "not a time: \(text)")
      }
      return value
    }
    kind = try container.decode(Kind.self, forKey: .kind)
    timestamp = try time(.timestamp) ?? 0
    until = try time(.until)
    missing = try container.decodeIfPresent(Int.self, forKey: .missing)
    message = try container.decode(String.self, forKey: .message)
  }

  public init(kind: Kind, timestamp: Int64, until: Int64? = nil, missing: Int? = nil, message: String) {
    self.kind = kind
    self.timestamp = timestamp
    self.until = until
    self.missing = missing
    self.message = message
  }
}

/// The result of checking one dataset.
public struct VerifyReport: Codable, Sendable, Equatable {
  public var bars: Int
  /// Problems make `data verify` exit 65.
  public var problems: [VerifyFinding]
  /// Worth knowing, not wrong: a lone missing weekday is most likely a market holiday.
  public var warnings: [VerifyFinding]
  public var ok: Bool { problems.isEmpty }

  public init(bars: Int, problems: [VerifyFinding], warnings: [VerifyFinding]) {
    self.bars = bars
    self.problems = problems
    self.warnings = warnings
  }

  /// Gaps only (not holidays), as `data list` shows them.
  public var gapCount: Int { problems.filter { $0.kind == .gap }.count }
}

/// Checks bars against their timeframe and trading calendar: gaps, duplicates, OHLC sanity,
/// negative volume, off-grid timestamps. Runs on columns; ~1M bars in a few milliseconds.
public enum DatasetVerifier {
  /// - parameter allowNonPositive: zero and negative prices are not problems (a dataset of
  ///   spreads, or futures that trade below zero).
  public static func verify(_ series: BarSeries, timeframe: Timeframe, calendar: TradingCalendar, allowNonPositive: Bool = false) -> VerifyReport {
    var problems: [VerifyFinding] = []
    var warnings: [VerifyFinding] = []
    let ts = series.timestamps
    if let spacing = BarValidation.spacingProblem(ts, timeframe: timeframe) {
      problems.append(finding(.spacing, ts[0], spacing + " (imported with the wrong timeframe?)"))
    }
    for i in 0..<series.count {
      let (o, h, l, c, v) = (series.open[i], series.high[i], series.low[i], series.close[i], series.volume[i])
      if !(o.isFinite && h.isFinite && l.isFinite && c.isFinite && v.isFinite) {
        problems.append(finding(.nonFinite, ts[i], "a price or the volume is not a finite number"))
      } else if !allowNonPositive, !(o > 0 && h > 0 && l > 0 && c > 0) {
        problems.append(finding(.nonPositive, ts[i], "a price at or below zero: open \(o) high \(h) low \(l) close \(c)"))
      } else if !(l <= o && l <= c && o <= h && c <= h && l <= h) {
        problems.append(finding(.ohlc, ts[i], "OHLC out of order: open \(o) high \(h) low \(l) close \(c)"))
      }
      if v < 0 { problems.append(finding(.negativeVolume, ts[i], "negative volume \(v)")) }
      if timeframe.milliseconds < Timeframe.Unit.week.baseMilliseconds, !timeframe.isAligned(ts[i]) {
        problems.append(finding(.offGrid, ts[i], "not on the \(timeframe) grid"))
      }
    }
    var i = 1
    while i < ts.count {
      let previous = ts[i - 1]
      let current = ts[i]
      if current == previous {
        problems.append(finding(.duplicate, current, "duplicate timestamp"))
      } else if current < previous {
        problems.append(finding(.outOfOrder, current, "timestamp before the previous bar's"))
      } else {
        gapFindings(from: previous, to: current, timeframe: timeframe, calendar: calendar, problems: &problems, warnings: &warnings)
      }
      i += 1
    }
    return VerifyReport(bars: series.count, problems: problems, warnings: warnings)
  }

  /// Counts gaps from timestamps alone (for the catalog).
  public static func gapCount(_ timestamps: [Int64], timeframe: Timeframe, calendar: TradingCalendar) -> Int {
    var problems: [VerifyFinding] = []
    var warnings: [VerifyFinding] = []
    for i in timestamps.indices.dropFirst() where timestamps[i] > timestamps[i - 1] {
      gapFindings(from: timestamps[i - 1], to: timestamps[i], timeframe: timeframe, calendar: calendar, problems: &problems, warnings: &warnings)
    }
    return problems.count
  }

  private static func gapFindings(
    from previous: Int64, to current: Int64, timeframe: Timeframe, calendar: TradingCalendar,
    problems: inout [VerifyFinding], warnings: inout [VerifyFinding]
  ) {
    switch (calendar, timeframe.unit) {
    case (_, .month):
      let (y0, m0, _, _) = UTCCalendar.components(previous)
      let (y1, m1, _, _) = UTCCalendar.components(current)
      let missing = ((y1 * 12 + m1) - (y0 * 12 + m0)) / timeframe.count - 1
      if missing > 0 { problems.append(gap(previous, current, missing, "bars")) }
    case (.allDays, _), (.weekdays, .week):
      let step = timeframe.milliseconds
      let missing = Int((current - previous - 1) / step)
      if missing > 0 { problems.append(gap(previous, current, missing, "bars")) }
    case (.weekdays, _):
      // Judged by whole days: intraday sessions and weekends vary, a missing weekday does not.
      let firstDay = previous / UTCCalendar.dayMilliseconds + 1
      let lastDay = current / UTCCalendar.dayMilliseconds
      guard lastDay > firstDay else { return }
      var run = 0
      var runStart: Int64 = 0
      func close() {
        guard run > 0 else { return }
        let start = runStart * UTCCalendar.dayMilliseconds
        // Exchanges close for a day or two (holidays, 2007-01-02, Hurricane Sandy); longer is a gap.
        if run <= 2 {
          let what = run == 1 ? "weekday \(UTCCalendar.format(start))" : "2 weekdays from \(UTCCalendar.format(start))"
          warnings.append(
            VerifyFinding(
              kind: .possibleHoliday, timestamp: start, until: nil, missing: run,
              message: "no bars on \(what); a market holiday?"))
        } else {
          problems.append(gap(previous, current, run, "weekdays"))
        }
        run = 0
      }
      for day in firstDay..<lastDay {
        let weekday = UTCCalendar.weekday(day * UTCCalendar.dayMilliseconds)
        if weekday < 5 {
          if run == 0 { runStart = day }
          run += 1
        }
      }
      close()
    }
  }

  private static func gap(_ previous: Int64, _ current: Int64, _ missing: Int, _ unit: String) -> VerifyFinding {
    VerifyFinding(
      kind: .gap, timestamp: previous, until: current, missing: missing,
      message: "\(missing) \(unit) missing between \(UTCCalendar.format(previous)) and \(UTCCalendar.format(current))")
  }

  private static func finding(_ kind: VerifyFinding.Kind, _ timestamp: Int64, _ message: String) -> VerifyFinding {
    VerifyFinding(kind: kind, timestamp: timestamp, until: nil, missing: nil, message: message)
  }
}

extension Timeframe.Unit {
  var baseMilliseconds: Int64 { Timeframe(count: 1, unit: self).milliseconds }
}
