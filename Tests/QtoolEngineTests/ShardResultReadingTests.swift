import Foundation
import Testing

@testable import QtoolEngine

/// A merge reads each stored result's params and ranked metric without JSONDecoder; what it
/// reads must be what the JSON says, and anything else must not read at all (a refusal).
struct ShardResultReadingTests {
  @Test func paramsReadAsTheirNumbers() throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    for combination: [String: Double] in [["fast": 5, "slow": 20], ["a": 0.1, "b": -3.25e-7, "c": 1e21], [:]] {
      let text = try BacktestOperations.paramsText(combination, encoder: encoder)
      #expect(FlatJSON.numbers(text) == combination, "\(text)")
    }
    #expect(FlatJSON.numbers(#"{ "fast" : 5 , "slow":20 }"#) == ["fast": 5, "slow": 20])
    // The fast rendering is the encoder's in the usual cases (a merge then keeps the shard's text).
    for combination: [String: Double] in [["fast": 5, "slow": 20], ["a": 0.5, "b": -3], ["x": 12.25]] {
      #expect(FlatJSON.text(combination) == (try BacktestOperations.paramsText(combination, encoder: encoder)))
    }
    for refused in [
      #"{"fast":5"#, #"{"fast":5,}"#, #"{"fast":"5"}"#, #"{"fast":null}"#, #"{"fast":5,"fast":6}"#, #"{"fast":5} x"#, #"{"f\"ast":5}"#,
      #"{"fast":{"x":1}}"#, #"{"fast":inf}"#, #"{"fast":-inf}"#, #"{"fast":nan}"#, "", "[1]",
    ] {
      #expect(FlatJSON.numbers(refused) == nil, "\(refused)")
    }
  }

  @Test func aMetricReadsAsItsNumberNullOrAbsent() {
    let json = #"{"max_drawdown":-0.25,"profit_factor":null,"sharpe":1.0625,"trades":12}"#
    #expect(MetricsJSON.value(of: "sharpe", in: json) == .some(.some(1.0625)))
    #expect(MetricsJSON.value(of: "trades", in: json) == .some(.some(12)))
    #expect(MetricsJSON.value(of: "profit_factor", in: json) == .some(.none))
    #expect(MetricsJSON.value(of: "sortino", in: json) == nil)
    #expect(MetricsJSON.value(of: "drawdown", in: json) == nil, "a key is matched whole, with its quotes")
  }
}
