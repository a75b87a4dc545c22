import Foundation
import Testing
import Yams

@testable import QtoolCore
@testable import QtoolEngine

/// SplitMix64: seeded, so a failing spec can be made again from its seed.
struct SpecRandom: RandomNumberGenerator {
  var state: UInt64
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// Random valid specs, with the strings YAML is most likely to get wrong. A class: the
/// builders below nest closures that draw from the same generator.
final class SpecGenerator {
  var random: SpecRandom
  init(seed: UInt64) { random = SpecRandom(state: seed) }

  static let awkward = [
    "sma-cross", "yes", "no", "on", "null", "~", "true", "1e3", "0x1F", "012", "a: b", "# not a comment", " leading space",
    "trailing space ", "ünïcödé ✓", "two\nlines", "tab\there", "'single'", "\"double\"", "-", "? key", "[list]", "{map}", "&anchor",
    "*alias", "!tag", "%percent", "@at", "`tick`", "|", ">", "",
  ]
  /// Valid names (a strategy's, a dataset's) that YAML would still read as something else.
  static let names = ["sma-cross", "yes", "no", "on", "null", "true", "1e3", "0x1F", "012", "-", "a.b", "x=y", "^GSPC", "_u"]
  static let rules = [
    "cross_above(sma(close, fast), sma(close, slow))", "cross_below(ema(close, fast), ema(close, slow))", "rsi(close, 14) < 30",
    "close > bb_upper(close, 20, 2)", "not (close < lowest(low, slow)[1])", "macd_hist(close) > 0 and volume > sma(volume, fast) * 1.5",
    "roc(close, fast) >= -0.5 || zscore(close, slow) <= 2",
  ]

  func pick<T>(_ items: [T]) -> T { items[Int.random(in: 0..<items.count, using: &random)] }
  func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &random) ? make() : nil }
  /// Short decimals and nine-digit ones. (Yams' encoder writes about 15 significant digits,
  /// its own rounding: full precision is held to through JSON below.)
  func fraction(_ range: ClosedRange<Double>) -> Double {
    let value = Double.random(in: range, using: &random)
    return Double(String(format: Bool.random(using: &random) ? "%.3g" : "%.9g", value))!
  }

  func rule() -> String {
    let count = Int.random(in: 1...3, using: &random)
    return (0..<count).map { _ in "(\(pick(Self.rules)))" }.joined(separator: pick([" and ", " or "]))
  }

  func spec() -> StrategySpec {
    var params: [String: Double] = ["fast": Double(Int.random(in: 1...50, using: &random)), "slow": Double(Int.random(in: 51...400, using: &random))]
    for index in 0..<Int.random(in: 0...3, using: &random) {
      // Finite only: a spec refuses an infinite param.
      params["extra_\(index)"] = pick([0.1, -0.0, 1e300, 5e-324, -123.456, -1e300, 1e20, 3])
    }
    let portfolio = Int.random(in: 0..<4, using: &random) == 0
    return StrategySpec(
      name: pick(Self.names), description: maybe { pick(Self.awkward) },
      universe: .init(
        symbols: (0..<Int.random(in: 1...3, using: &random)).map { _ in pick(["GOOG", "BTCUSDT", "yes", "null", "1e3", "BRK.B", "^GSPC"]) },
        timeframe: pick(["1d", "1h", "15m", "1M"]), source: maybe { pick(["binance", "csv", "yahoo"]) }, dataset: maybe { pick(Self.names) }),
      params: params,
      rules: .init(entry: rule(), exit: maybe { rule() }, shortEntry: maybe { rule() }, shortExit: maybe { rule() }),
      sizing: maybe {
        .init(fraction: maybe { fraction(0.001...1) }, units: nil, notional: nil, maxUnits: maybe { fraction(1...1e6) }, maxNotional: nil)
      },
      costs: maybe {
        .init(commission: maybe { fraction(0...0.0999) }, commissionFixed: maybe { fraction(0...10) }, slippageBps: maybe { fraction(0...50) })
      },
      risk: maybe {
        .init(
          stopLoss: maybe { fraction(0.001...0.9) }, takeProfit: maybe { fraction(0.001...5) }, trailingStop: nil,
          maxDrawdownHalt: maybe { fraction(0.01...0.99) })
      },
      execution: maybe {
        .init(
          fill: maybe { pick(["next_open", "close"]) }, units: maybe { pick(["fractional", "whole"]) },
          closeAtEnd: maybe { Bool.random(using: &random) },
          capital: maybe { fraction(1...1e9) })
      },
      signals: maybe { .init(strong: maybe { fraction(60...100) }, medium: nil, weak: maybe { fraction(0...40) }) },  // strong > medium (50) > weak
      benchmark: maybe { pick(Self.names) },
      portfolio: portfolio
        ? .init(rank: "roc(close, fast)", top: Int.random(in: 1...5, using: &random), rebalance: maybe { pick(["daily", "weekly", "monthly"]) }) : nil
    )
  }
}

@Suite struct StrategyLoaderTests {
  /// A spec written out as YAML or as JSON loads back as the same spec, rules compiled.
  @Test(arguments: [11, 12, 13] as [UInt64]) func specsRoundTripThroughYAMLAndJSON(seed: UInt64) throws {
    let generator = SpecGenerator(seed: seed)
    let json = JSONEncoder()
    json.outputFormatting = [.sortedKeys]
    for index in 0..<150 {
      let spec = generator.spec()
      let yaml = try YAMLEncoder().encode(spec)
      do {
        #expect(try StrategyLoader.parse(yaml, origin: "generated.yaml").spec == spec, "seed \(seed) #\(index):\n\(yaml)")
      } catch {
        Issue.record("seed \(seed) #\(index): \(error)\n\(yaml)")
      }
      // JSON has no infinity: those specs are YAML only. A param of full precision keeps its
      // every digit.
      guard spec.params!.values.allSatisfy(\.isFinite) else { continue }
      var precise = spec
      precise.params!["precise"] = Double.random(in: -1e6...1e6, using: &generator.random)
      let text = String(decoding: try json.encode(precise), as: UTF8.self)
      do {
        #expect(try StrategyLoader.parse(text, origin: "generated.json").spec == precise, "seed \(seed) #\(index):\n\(text)")
      } catch {
        Issue.record("seed \(seed) #\(index): \(error)\n\(text)")
      }
    }
  }
}
