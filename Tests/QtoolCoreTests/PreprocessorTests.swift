import Testing

@testable import QtoolCore

@Suite struct PreprocessorTests {
  let hour: Int64 = 3_600_000

  func frame(_ timestamps: [Int64], close: [Double], timeframe: String = "1h") -> Frame {
    Frame(
      bars: BarSeries(
        timestamps: timestamps, open: close, high: close.map { $0 + 1 }, low: close.map { $0 - 1 }, close: close, volume: close.map { _ in 10 }),
      timeframe: Timeframe(timeframe)!, calendar: .allDays)
  }

  func run(_ text: String, on input: Frame) throws -> Frame {
    try Preprocessor.apply([try PreprocessOperation.parse(text)], to: input).0
  }

  @Test func forwardFillInsertsMissingBars() throws {
    let out = try run("fill_missing method=forward_fill", on: frame([0, hour, 4 * hour], close: [1, 2, 5]))
    #expect(out.bars.timestamps == [0, hour, 2 * hour, 3 * hour, 4 * hour])
    #expect(out.bars.close == [1, 2, 2, 2, 5])
    #expect(out.bars.volume == [10, 10, 0, 0, 10])
  }

  @Test func interpolateAndBackwardFill() throws {
    #expect(try run("fill_missing method=interpolate", on: frame([0, hour, 4 * hour], close: [1, 2, 5])).bars.close == [1, 2, 3, 4, 5])
    #expect(try run("fill_missing method=backward_fill", on: frame([0, 3 * hour], close: [1, 4])).bars.close == [1, 4, 4, 4])
  }

  @Test func zeroVolumeCandleAndDrop() throws {
    let candle = try run("fill_missing method=zero_volume_candle", on: frame([0, 2 * hour], close: [3, 7]))
    #expect(candle.bars.high[1] == 3 && candle.bars.low[1] == 3 && candle.bars.volume[1] == 0)
    let dropped = try run("fill_missing method=drop columns=close", on: frame([0, hour, 2 * hour], close: [1, .nan, 3]))
    #expect(dropped.bars.timestamps == [0, 2 * hour])
  }

  @Test func resampleToFourHours() throws {
    let input = frame((0..<8).map { Int64($0) * hour }, close: [1, 2, 3, 4, 5, 6, 7, 8])
    let out = try run("resample timeframe=4h", on: input)
    #expect(out.bars.timestamps == [0, 4 * hour])
    #expect(out.bars.open == [1, 5])
    #expect(out.bars.high == [5, 9])
    #expect(out.bars.low == [0, 4])
    #expect(out.bars.close == [4, 8])
    #expect(out.bars.volume == [40, 40])
    #expect(out.timeframe == Timeframe("4h")!)
    #expect(throws: PreprocessError.self) { try run("resample timeframe=1m", on: input) }
  }

  @Test func resampleDailyToMonthsIsCalendarAligned() throws {
    let days = (0..<60).map { UTCCalendar.timestamp(year: 2024, month: 1, day: 1) + Int64($0) * 86_400_000 }
    let out = try run("resample timeframe=1M", on: frame(days, close: days.map { _ in 1 }, timeframe: "1d"))
    #expect(out.bars.timestamps == [UTCCalendar.timestamp(year: 2024, month: 1, day: 1), UTCCalendar.timestamp(year: 2024, month: 2, day: 1)])
    #expect(out.bars.volume == [310, 290])
  }

  @Test func normalizeStoresItsParameters() throws {
    let (out, applied, _) = try Preprocessor.apply(
      [try PreprocessOperation.parse("normalize method=min_max columns=close")], to: frame([0, hour, 2 * hour], close: [10, 15, 20]))
    #expect(out.bars.close == [0, 0.5, 1])
    #expect(applied[0].parameters == ["close": [10, 20]])
    // Re-applying the stored pipeline to new data uses the stored scale, not a new fit.
    let again = try Preprocessor.apply(applied, to: frame([0], close: [30])).0
    #expect(again.bars.close == [2])
  }

  @Test func clipOutliers() throws {
    let values = (0..<100).map { Double($0 % 10) } + [1000]
    let out = try run(
      "clip_outliers method=percentile lower=0 upper=0.99 columns=close", on: frame((0...100).map { Int64($0) * hour }, close: values))
    #expect(out.bars.close.max()! < 1000)
    let z = try run("clip_outliers method=zscore threshold=3", on: frame((0...100).map { Int64($0) * hour }, close: values))
    #expect(z.bars.close.last! < 1000)
  }

  @Test func featuresAddNamedColumns() throws {
    let input = frame((0..<60).map { Int64($0) * hour }, close: (0..<60).map { 100 + Double($0 % 7) })
    let out = try run(
      "features sma_5=sma(close, 5); rsi_14=rsi(close, 14); macd=macd(close); trend=close / sma(close, 20) - 1; up=close > open", on: input)
    #expect(out.extraNames == ["sma_5", "rsi_14", "macd", "trend", "up"])
    #expect(zip(out.extra["sma_5"]!, Indicators.sma(input.bars.close, 5)).allSatisfy { ($0.isNaN && $1.isNaN) || $0 == $1 })
    let sma20 = Indicators.sma(input.bars.close, 20)
    #expect(zip(out.extra["trend"]!, zip(input.bars.close, sma20).map { $0 / $1 - 1 }).allSatisfy { ($0.isNaN && $1.isNaN) || $0 == $1 })
  }

  @Test func parseErrors() {
    #expect(
      throws: PreprocessError.invalid(
        "unknown operation 'resampel' — did you mean 'resample'?; operations: fill_missing, resample, normalize, dedupe, clip_outliers, features")
    ) {
      try PreprocessOperation.parse("resampel timeframe=4h")
    }
    #expect(throws: PreprocessError.self) { try PreprocessOperation.parse("clip_outliers threshold=high") }
    #expect(throws: RuleError.self) {
      try Preprocessor.apply(
        [PreprocessOperation(type: "features", features: [.init(name: "s", expr: "smaa(close, 5)")])], to: frame([0], close: [1]))
    }
    // Look-ahead is for a model's label only.
    #expect(throws: RuleError.self) {
      try Preprocessor.apply(
        [PreprocessOperation(type: "features", features: [.init(name: "f", expr: "future(close, 1)")])], to: frame([0], close: [1]))
    }
    #expect(throws: PreprocessError.self) { try PreprocessOperation.parse("features indicators=sma:20") }
  }
  /// On weekdays, fill_missing fills what `data verify` calls a gap — never a weekend, and a run
  /// of 1 or 2 weekdays without bars is a market holiday unless holidays=true.
  @Test func fillMissingFollowsTheWeekdaysCalendar() throws {
    func day(_ d: Int) -> Int64 { UTCCalendar.timestamp(year: 2020, month: 1, day: d) }
    // Mon 6, Wed 8 (Tue 7: a holiday), Thu 9, then Wed 15 (Fri 10, Mon 13, Tue 14: a gap).
    let days = [6, 8, 9, 15]
    var input = frame(days.map(day), close: [1, 2, 3, 4], timeframe: "1d")
    input.calendar = .weekdays
    let (out, _, steps) = try Preprocessor.apply([try PreprocessOperation.parse("fill_missing")], to: input)
    #expect(out.bars.timestamps == [6, 8, 9, 10, 13, 14, 15].map(day), "the gap filled, the holiday and the weekend not")
    #expect(out.bars.close == [1, 2, 3, 3, 3, 3, 4])
    #expect(steps[0].summary.hasSuffix("1 weekday without bars left alone as market holidays (holidays=true fills them)"))
    let all = try run("fill_missing holidays=true", on: input)
    #expect(all.bars.timestamps == [6, 7, 8, 9, 10, 13, 14, 15].map(day))
    #expect(DatasetVerifier.verify(out.bars, timeframe: Timeframe("1d")!, calendar: .weekdays).gapCount == 0, "verify finds no gap left")
    #expect(throws: PreprocessError.self) { try PreprocessOperation.parse("fill_missing holidays=maybe") }
  }

  /// Intraday bars on weekdays: filled inside a session, and a missing weekday at the times of
  /// the day before; never overnight.
  @Test func fillMissingIntradayOnWeekdaysStaysInsideSessions() throws {
    func at(_ d: Int, _ h: Int64) -> Int64 { UTCCalendar.timestamp(year: 2020, month: 1, day: d) + h * hour }
    // Thu 9: 14, 15, 17 (16 missing); then Wed 15 (Fri 10, Mon 13, Tue 14 missing): 14, 15.
    let stamps = [at(9, 14), at(9, 15), at(9, 17), at(15, 14), at(15, 15)]
    var input = frame(stamps, close: [1, 2, 3, 4, 5])
    input.calendar = .weekdays
    let out = try run("fill_missing", on: input)
    let expected =
      [at(9, 14), at(9, 15), at(9, 16), at(9, 17)] + [10, 13, 14].flatMap { [at($0, 14), at($0, 15), at($0, 17)] } + [at(15, 14), at(15, 15)]
    #expect(out.bars.timestamps == expected)
  }
}
