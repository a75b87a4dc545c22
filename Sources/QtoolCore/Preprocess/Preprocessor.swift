import Foundation

/// Applies a pipeline of operations to a frame. Pure: the engine reads and writes the store.
public enum Preprocessor {
  /// What one operation did, for the report.
  public struct Step: Codable, Sendable, Equatable {
    public var type: String
    public var summary: String
    /// How this step lets a bar see later bars (statistics of the whole range, values filled
    /// from later bars), or nil: a backtest on the result is not out of sample.
    public var lookAhead: String?

    public init(type: String, summary: String, lookAhead: String? = nil) {
      self.type = type
      self.summary = summary
      self.lookAhead = lookAhead
    }

    enum CodingKeys: String, CodingKey { case type, summary, lookAhead = "look_ahead" }
  }

  /// Returns the result and the operations as applied (normalize parameters filled in).
  public static func apply(_ operations: [PreprocessOperation], to input: Frame) throws -> (Frame, [PreprocessOperation], [Step]) {
    var frame = input
    var applied: [PreprocessOperation] = []
    var steps: [Step] = []
    for operation in operations {
      var operation = operation
      let before = frame.count
      let fittedHere = operation.parameters == nil
      let summary: String
      switch operation.type {
      case "fill_missing": summary = try fillMissing(&frame, operation)
      case "resample": summary = try resample(&frame, operation)
      case "normalize": summary = try normalize(&frame, &operation)
      case "dedupe":
        let clean = frame.bars.timestamps.indices.filter { $0 == frame.count - 1 || frame.bars.timestamps[$0] != frame.bars.timestamps[$0 + 1] }
        frame.select(clean)
        summary = "\(DisplayFormat.plural(before - frame.count, "duplicate bar")) removed"
      case "clip_outliers": summary = try clipOutliers(&frame, operation)
      case "features": summary = try features(&frame, operation)
      default:
        throw PreprocessError.invalid("unknown operation '\(operation.type)'; operations: \(PreprocessOperation.types.joined(separator: ", "))")
      }
      applied.append(operation)
      steps.append(Step(type: operation.type, summary: summary, lookAhead: lookAhead(operation, fittedHere: fittedHere)))
    }
    return (frame, applied, steps)
  }

  /// Why `operation` as applied uses later bars for earlier ones, or nil.
  static func lookAhead(_ operation: PreprocessOperation, fittedHere: Bool) -> String? {
    switch operation.type {
    case "normalize" where fittedHere:
      return "normalize (\(operation.method ?? "zscore")) scaled every bar with statistics of the whole range, later bars included"
    case "clip_outliers":
      return "clip_outliers (\(operation.method ?? "zscore")) clipped every bar at limits computed over the whole range, later bars included"
    case "fill_missing" where operation.method == "backward_fill" || operation.method == "interpolate":
      return "fill_missing (\(operation.method!)) filled missing bars from the bars after them"
    default:
      return nil
    }
  }

  static func columns(_ operation: PreprocessOperation, _ frame: Frame, default fallback: [String]) throws -> [String] {
    let names = operation.columns ?? fallback
    for name in names where frame.column(name) == nil {
      throw PreprocessError.invalid(
        "\(operation.type): no column '\(name)'; columns: \((Frame.priceColumns + frame.extraNames).joined(separator: ", "))")
    }
    return names
  }

  // MARK: fill_missing

  /// The timestamps missing between consecutive bars by the frame's calendar (the rule
  /// `data preprocess --help` states),
  /// with `holidays` also the 1- and 2-weekday runs; and how many holidays were left out.
  /// Refuses (before building them) more than `limit` bars in all.
  static func missingBars(_ ts: [Int64], timeframe: Timeframe, calendar: TradingCalendar, holidays: Bool, limit: Int = .max) throws -> (
    inserted: [(after: Int, timestamps: [Int64])], holidaysLeft: Int
  ) {
    var inserted: [(after: Int, timestamps: [Int64])] = []
    var holidaysLeft = 0
    var total = 0
    func admit(_ count: Int, after i: Int) throws {
      total += count
      guard total > limit else { return }
      // Intraday bars: both ends with their time, so a midnight end does not read as a date.
      let intraday = timeframe.milliseconds < 86_400_000
      let from = UTCCalendar.format(ts[i - 1], alwaysTime: intraday), to = UTCCalendar.format(ts[i], alwaysTime: intraday)
      throw PreprocessError.invalid(
        "fill_missing: would insert more than \(limit) bars (the gap from \(from) to \(to) alone is about \(count) \(timeframe) bars); "
          + "check those timestamps with `qtool data verify`, or raise the limit with max_bars=N")
    }
    let day = UTCCalendar.dayMilliseconds
    let byGrid = calendar == .allDays || timeframe.unit == .month || timeframe.unit == .week
    for i in 1..<max(1, ts.count) {
      var missing: [Int64] = []
      if byGrid {
        try admit(max(0, Int((ts[i] - ts[i - 1]) / max(1, timeframe.milliseconds)) - 1), after: i)
        var t = timeframe.next(after: ts[i - 1])
        while t < ts[i] {
          missing.append(t)
          t = timeframe.next(after: t)
        }
      } else {
        let (firstDay, lastDay) = (ts[i - 1] / day, ts[i] / day)
        if firstDay == lastDay {
          // Inside a day's session.
          var t = timeframe.next(after: ts[i - 1])
          while t < ts[i] {
            missing.append(t)
            t = timeframe.next(after: t)
          }
        } else {
          // Whole weekdays without bars: a holiday when 1 or 2 in a row, else a gap.
          let weekdays = ((firstDay + 1)..<lastDay).filter { UTCCalendar.weekday($0 * day) < 5 }
          if !weekdays.isEmpty, weekdays.count <= 2, !holidays {
            holidaysLeft += weekdays.count
          } else if !weekdays.isEmpty {
            // A day's bars: at midnight for daily bars, else at the times of the day before the gap.
            var session = [ts[i - 1] - firstDay * day]
            var k = i - 2
            while k >= 0, ts[k] / day == firstDay {
              session.insert(ts[k] - firstDay * day, at: 0)
              k -= 1
            }
            if timeframe.unit == .day { session = [0] }
            try admit(weekdays.count * session.count, after: i)
            for weekday in weekdays { missing += session.map { weekday * day + $0 } }
          }
        }
      }
      if !missing.isEmpty { inserted.append((i - 1, missing)) }
    }
    return (inserted, holidaysLeft)
  }

  /// The most bars `fill_missing` inserts unless `max_bars` says otherwise: nearly four years of
  /// minute bars, and about 150 MB of columns — where a stray year-2199 timestamp would ask for 10^8.
  public static let defaultFillLimit = 2_000_000

  /// Fills bars missing on the calendar's grid, and non-finite values in `columns`.
  static func fillMissing(_ frame: inout Frame, _ operation: PreprocessOperation) throws -> String {
    let method = operation.method ?? "forward_fill"
    let methods = ["forward_fill", "backward_fill", "interpolate", "drop", "zero_volume_candle"]
    guard methods.contains(method) else {
      throw PreprocessError.invalid("fill_missing: unknown method '\(method)'; methods: \(methods.joined(separator: ", "))")
    }
    let names = try columns(operation, frame, default: Frame.priceColumns)
    if method == "drop" {
      let keep = (0..<frame.count).filter { i in names.allSatisfy { frame.column($0)![i].isFinite } }
      let dropped = frame.count - keep.count
      frame.select(keep)
      return "\(DisplayFormat.plural(dropped, "bar")) with missing values dropped"
    }
    // 1. Insert the bars missing by the calendar, as NaN rows.
    var timestamps: [Int64] = []
    var source: [Int?] = []
    let ts = frame.bars.timestamps
    let (missing, holidaysLeft) = try missingBars(
      ts, timeframe: frame.timeframe, calendar: frame.calendar, holidays: operation.holidays ?? false,
      limit: operation.maxBars ?? defaultFillLimit)
    var next = 0
    for i in 0..<ts.count {
      timestamps.append(ts[i])
      source.append(i)
      if next < missing.count, missing[next].after == i {
        timestamps += missing[next].timestamps
        source += missing[next].timestamps.map { _ in nil }
        next += 1
      }
    }
    let inserted = source.filter { $0 == nil }.count
    var filled = Frame(bars: BarSeries(), timeframe: frame.timeframe, calendar: frame.calendar)
    filled.bars.timestamps = timestamps
    for name in Frame.priceColumns + frame.extraNames {
      let values = frame.column(name)!
      filled.setColumn(name, source.map { $0.map { values[$0] } ?? .nan })
    }
    // 2. Fill NaNs.
    var count = 0
    if method == "zero_volume_candle" {
      for i in 0..<filled.count where source[i] == nil {
        let previous = i > 0 ? filled.bars.close[i - 1] : .nan
        filled.bars.open[i] = previous
        filled.bars.high[i] = previous
        filled.bars.low[i] = previous
        filled.bars.close[i] = previous
        filled.bars.volume[i] = 0
      }
    }
    for name in Frame.priceColumns + filled.extraNames {
      var values = filled.column(name)!
      let fillThis = names.contains(name) || source.contains(where: { $0 == nil })
      guard fillThis else { continue }
      let missing = values.indices.filter { !values[$0].isFinite }
      if names.contains(name) { count += missing.count }
      if name == "volume" && method != "interpolate" {
        for i in missing { values[i] = 0 }
      } else {
        switch method {
        case "forward_fill", "zero_volume_candle":
          var last = Double.nan
          for i in values.indices { if values[i].isFinite { last = values[i] } else { values[i] = last } }
        case "backward_fill":
          var next = Double.nan
          for i in values.indices.reversed() { if values[i].isFinite { next = values[i] } else { values[i] = next } }
        default:  // interpolate, linearly in time
          var previous: Int?
          for i in values.indices where values[i].isFinite {
            if let p = previous, i - p > 1 {
              let span = Double(timestamps[i] - timestamps[p])
              for j in (p + 1)..<i { values[j] = values[p] + (values[i] - values[p]) * Double(timestamps[j] - timestamps[p]) / span }
            }
            previous = i
          }
        }
      }
      filled.setColumn(name, values)
    }
    frame = filled
    let left = holidaysLeft == 0 ? "" : "; \(DisplayFormat.plural(holidaysLeft, "weekday")) without bars left alone as market holidays (holidays=true fills them)"
    return "\(DisplayFormat.plural(inserted, "missing bar")) inserted, \(DisplayFormat.plural(count, "value")) filled (\(method))" + left
  }

  // MARK: resample

  static func resample(_ frame: inout Frame, _ operation: PreprocessOperation) throws -> String {
    guard let text = operation.timeframe, let target = Timeframe(text) else {
      throw PreprocessError.invalid("resample: needs timeframe=… (e.g. timeframe=4h)")
    }
    guard target.milliseconds > frame.timeframe.milliseconds else {
      throw PreprocessError.invalid("resample: \(target) is not larger than the dataset's \(frame.timeframe)")
    }
    let bars = frame.bars
    var out = BarSeries(reservingCapacity: bars.count / 2)
    var i = 0
    while i < bars.count {
      let bucket = bucketStart(bars.timestamps[i], target)
      var high = bars.high[i]
      var low = bars.low[i]
      var volume = 0.0
      var j = i
      while j < bars.count, bucketStart(bars.timestamps[j], target) == bucket {
        high = max(high, bars.high[j])
        low = min(low, bars.low[j])
        volume += bars.volume[j]
        j += 1
      }
      out.append(timestamp: bucket, open: bars.open[i], high: high, low: low, close: bars.close[j - 1], volume: volume)
      i = j
    }
    let before = frame.count
    frame = Frame(bars: out, timeframe: target, calendar: frame.calendar)
    return "\(DisplayFormat.plural(before, "bar")) → \(out.count) \(target) \(out.count == 1 ? "bar" : "bars") (feature columns are dropped; add them after resampling)"
  }

  /// The UTC-aligned start of the `target` bar containing `timestamp`.
  static func bucketStart(_ timestamp: Int64, _ target: Timeframe) -> Int64 {
    switch target.unit {
    case .month:
      let (year, month, _, _) = UTCCalendar.components(timestamp)
      let index = (year * 12 + month - 1) / target.count * target.count
      return UTCCalendar.timestamp(year: index / 12, month: index % 12 + 1, day: 1)
    case .week:
      let monday: Int64 = 4 * UTCCalendar.dayMilliseconds
      return timestamp - ((timestamp - monday) %% target.milliseconds)
    default:
      return timestamp - (timestamp %% target.milliseconds)
    }
  }

  // MARK: normalize

  static func normalize(_ frame: inout Frame, _ operation: inout PreprocessOperation) throws -> String {
    let method = operation.method ?? "zscore"
    guard method == "min_max" || method == "zscore" else {
      throw PreprocessError.invalid("normalize: unknown method '\(method)'; methods: min_max, zscore")
    }
    let names = try columns(operation, frame, default: ["close"])
    var parameters = operation.parameters ?? [:]
    for name in names {
      let values = frame.column(name)!
      let finite = values.filter(\.isFinite)
      // Parameters given (a re-applied pipeline) are used as they are; otherwise fitted here.
      let fitted: [Double]
      if let given = parameters[name], given.count == 2 {
        fitted = given
      } else if method == "min_max" {
        fitted = [finite.min() ?? 0, finite.max() ?? 1]
      } else {
        let mean = finite.reduce(0, +) / Double(max(1, finite.count))
        let variance = finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, finite.count - 1))
        fitted = [mean, variance.squareRoot()]
      }
      parameters[name] = fitted
      let scale = method == "min_max" ? fitted[1] - fitted[0] : fitted[1]
      frame.setColumn(name, values.map { scale == 0 ? 0 : ($0 - fitted[0]) / scale })
    }
    operation.parameters = parameters
    operation.method = method
    return "\(names.joined(separator: ", ")) scaled by \(method)"
  }

  // MARK: clip_outliers

  static func clipOutliers(_ frame: inout Frame, _ operation: PreprocessOperation) throws -> String {
    let method = operation.method ?? "zscore"
    let names = try columns(operation, frame, default: ["close"])
    var clipped = 0
    for name in names {
      let values = frame.column(name)!
      let finite = values.filter(\.isFinite).sorted()
      guard !finite.isEmpty else { continue }
      let low: Double
      let high: Double
      switch method {
      case "zscore":
        let k = operation.threshold ?? 3
        let mean = finite.reduce(0, +) / Double(finite.count)
        let std = (finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, finite.count - 1))).squareRoot()
        (low, high) = (mean - k * std, mean + k * std)
      case "percentile":
        let lowerQ = operation.lower ?? 0.01
        let upperQ = operation.upper ?? 0.99
        guard lowerQ >= 0, upperQ <= 1, lowerQ < upperQ else { throw PreprocessError.invalid("clip_outliers: need 0 ≤ lower < upper ≤ 1") }
        (low, high) = (quantile(finite, lowerQ), quantile(finite, upperQ))
      default:
        throw PreprocessError.invalid("clip_outliers: unknown method '\(method)'; methods: zscore, percentile")
      }
      clipped += values.filter { $0 < low || $0 > high }.count
      frame.setColumn(name, values.map { $0.isFinite ? min(max($0, low), high) : $0 })
    }
    return "\(clipped) values clipped (\(method))"
  }

  /// Linear-interpolated quantile of sorted values (numpy's default).
  static func quantile(_ sorted: [Double], _ q: Double) -> Double {
    let position = q * Double(sorted.count - 1)
    let lower = Int(position.rounded(.down))
    let upper = min(lower + 1, sorted.count - 1)
    return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
  }

  // MARK: features

  static func features(_ frame: inout Frame, _ operation: PreprocessOperation) throws -> String {
    guard let features = operation.features, !features.isEmpty else {
      throw PreprocessError.invalid("features: needs name=expression pairs, e.g. 'features rsi14=rsi(close, 14); trend=close / sma(close, 50) - 1'")
    }
    // The rules language of strategies and models (`qtool help rules`), over the frame's bars;
    // no look-ahead and no model().
    let evaluator = RuleEvaluator(bars: frame.bars)
    var added: [String] = []
    for feature in features {
      guard CompiledModel.isColumnName(feature.name), !Frame.priceColumns.contains(feature.name) else {
        throw PreprocessError.invalid("features: '\(feature.name)' cannot name a column: use letters, digits and _, not open/high/low/close/volume")
      }
      guard !added.contains(feature.name) else { throw PreprocessError.invalid("features: '\(feature.name)' is given twice") }
      let expression: Expression
      do {
        expression = try RuleParser.parse(feature.expr, origin: "features.\(feature.name)", parameters: [:], allowModels: false)
      } catch var error as RuleError {
        error.category = .usage
        throw error
      }
      frame.setColumn(feature.name, evaluator.evaluate(expression))
      added.append(feature.name)
    }
    return "added \(added.joined(separator: ", "))"
  }
}
