import Foundation
import Testing

@testable import QtoolCore

/// Our indicators against TA-Lib's on the same GOOG series (Fixtures/reference/talib-goog.json,
/// written by Tests/Reference/make_talib_reference.py).
@Suite struct IndicatorsTests {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

  static func goog() throws -> (high: [Double], low: [Double], close: [Double]) {
    let text = try String(contentsOf: root.deletingLastPathComponent().appendingPathComponent("shared/data/backtesting_py/GOOG.csv"), encoding: .utf8)
    let rows = text.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
    return (rows.map { Double($0[2])! }, rows.map { Double($0[3])! }, rows.map { Double($0[4])! })
  }

  static func reference() throws -> [String: [Double?]] {
    let data = try Data(contentsOf: root.appendingPathComponent("Fixtures/reference/talib-goog.json"))
    let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
    var result: [String: [Double?]] = [:]
    for (key, value) in object {
      guard let array = value as? [Any] else { continue }
      result[key] = array.map { ($0 as? NSNumber)?.doubleValue }
    }
    return result
  }

  func agree(_ ours: [Double], _ theirs: [Double?], _ name: String) {
    #expect(ours.count == theirs.count, "\(name): length")
    var worst = 0.0
    for (i, expected) in theirs.enumerated() {
      guard let expected else {
        #expect(ours[i].isNaN, "\(name)[\(i)]: TA-Lib has no value yet, we have \(ours[i])")
        continue
      }
      let error = abs(ours[i] - expected) / max(abs(expected), 1e-12)
      worst = max(worst, expected == 0 ? abs(ours[i]) : error)
    }
    #expect(worst <= 1e-9, "\(name): worst relative error \(worst)")
  }

  @Test func matchTALib() throws {
    let (high, low, close) = try Self.goog()
    let reference = try Self.reference()
    agree(Indicators.sma(close, 20), reference["sma_20"]!, "sma")
    agree(Indicators.ema(close, 20), reference["ema_20"]!, "ema")
    agree(Indicators.wma(close, 10), reference["wma_10"]!, "wma")
    agree(Indicators.rsi(close, 14), reference["rsi_14"]!, "rsi")
    let macd = Indicators.macd(close)
    agree(macd.macd, reference["macd"]!, "macd")
    agree(macd.signal, reference["macd_signal"]!, "macd_signal")
    agree(macd.histogram, reference["macd_hist"]!, "macd_hist")
    let bands = Indicators.bollinger(close, 20, 2)
    agree(bands.upper, reference["bb_upper_20"]!, "bb_upper")
    agree(bands.middle, reference["bb_mid_20"]!, "bb_mid")
    agree(bands.lower, reference["bb_lower_20"]!, "bb_lower")
    agree(Indicators.atr(high: high, low: low, close: close, 14), reference["atr_14"]!, "atr")
    agree(Indicators.stddev(close, 20), reference["stddev_20"]!, "stddev")
    agree(Indicators.roc(close, 10), reference["roc_10"]!, "roc")
    agree(Indicators.highest(close, 20), reference["max_20"]!, "highest")
    agree(Indicators.lowest(close, 20), reference["min_20"]!, "lowest")
  }

  /// sma, rsi, zscore and Bollinger bands of a series that starts undefined (close[1],
  /// returns(close), another indicator) were NaN on every bar: a rule on them never fired.
  @Test func anInputThatStartsUndefinedGivesTheSameValuesLater() throws {
    let close = try Self.goog().close
    let lagged = [Double.nan, .nan, .nan] + close.dropLast(3)
    func shifted(_ values: [Double]) -> [Double] { [Double.nan, .nan, .nan] + values.dropLast(3) }
    func same(_ a: [Double], _ b: [Double], _ name: String) {
      #expect(a.count == b.count && zip(a, b).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }, "\(name)")
      #expect(a.contains { !$0.isNaN }, "\(name) has values")
    }
    same(Indicators.sma(lagged, 10), shifted(Indicators.sma(close, 10)), "sma")
    same(Indicators.rsi(lagged, 14), shifted(Indicators.rsi(close, 14)), "rsi")
    same(Indicators.zscore(lagged, 20), shifted(Indicators.zscore(close, 20)), "zscore")
    same(Indicators.bollinger(lagged, 20).upper, shifted(Indicators.bollinger(close, 20).upper), "bb_upper")
    // A value that is not finite spoils only the windows holding it.
    var spoiled = close
    spoiled[100] = Double.nan
    spoiled[200] = Double.infinity
    let mean = Indicators.sma(spoiled, 5)
    let clean = Indicators.sma(close, 5)
    #expect((100..<105).allSatisfy { mean[$0].isNaN } && (200..<205).allSatisfy { mean[$0] == Double.infinity })
    #expect(abs(mean[300] - clean[300]) <= 1e-9 * clean[300] && abs(mean[150] - clean[150]) <= 1e-9 * clean[150])
  }

  @Test func shortInputsAreAllWarmUp() {
    #expect(Indicators.sma([1, 2], 3).allSatisfy { $0.isNaN })
    #expect(Indicators.rsi([1, 2, 3], 3).allSatisfy { $0.isNaN })
    #expect(Indicators.macd([1, 2, 3]).macd.allSatisfy { $0.isNaN })
  }
}
