import Foundation
import Testing

@testable import QtoolCore

/// The rules language's additions for models: strings, model("name"), and look-ahead legal
/// only in labels.
@Suite struct ModelRulesTests {
  @Test func lookAheadIsRefusedOutsideLabelsWithACaret() {
    for (text, column) in [("forward_return(close, 5) > 0", 1), ("close > future(close, 1)", 9)] {
      #expect {
        _ = try RuleParser.parse(text, origin: "rules.entry", parameters: [:])
      } throws: { error in
        guard let error = error as? RuleError else { return false }
        return error.column == column && error.message.contains("look-ahead") && error.description.contains("^")
      }
    }
  }

  @Test func labelsMayLookAheadAndSayHowFar() throws {
    let label = try RuleParser.parse("forward_return(close, h) > 0", origin: "label", parameters: ["h": 5], allowLookahead: true)
    #expect(label.lookahead == 5)
    #expect(try RuleParser.parse("future(close, 3)[1] > close", origin: "label", parameters: [:], allowLookahead: true).lookahead == 2)
    #expect(try RuleParser.parse("sma(close, 20)", origin: "f", parameters: [:]).lookahead == 0)
  }

  @Test func modelReadsAQuotedName() throws {
    let rule = try RuleParser.parse("model(\"goog-up\") > 0.6 and model('other') < 0.5", origin: "rules.entry", parameters: [:])
    #expect(rule.models == ["goog-up", "other"])
    #expect(rule.type == .boolean)
    #expect(throws: RuleError.self) { try RuleParser.parse("model(goog) > 0.5", origin: "e", parameters: [:]) }
    #expect(throws: RuleError.self) { try RuleParser.parse("model(\"goog) > 0.5", origin: "e", parameters: [:]) }
    #expect(throws: RuleError.self) { try RuleParser.parse("\"close\" > 1", origin: "e", parameters: [:]) }
    #expect(throws: RuleError.self) { try RuleParser.parse("model(\"a\") > 0", origin: "features.x", parameters: [:], allowModels: false) }
  }

  struct Constant: ModelSeries {
    func predictions(for bars: BarSeries) -> [Double] { bars.close.map { $0 / 100 } }
  }

  @Test func theEvaluatorAsksTheModelForTheBarsItRunsOn() throws {
    let bars = BarSeries(timestamps: [1, 2, 3], open: [1, 1, 1], high: [1, 1, 1], low: [1, 1, 1], close: [50, 70, 40], volume: [0, 0, 0])
    let evaluator = RuleEvaluator(bars: bars, models: ["m": Constant()])
    #expect(evaluator.condition(try RuleParser.parse("model(\"m\") > 0.6", origin: "e", parameters: [:])) == [false, true, false])
    // A model nobody supplied reads as missing: conditions on it are false.
    #expect(RuleEvaluator(bars: bars).condition(try RuleParser.parse("model(\"m\") > 0.1", origin: "e", parameters: [:])) == [false, false, false])
  }

  @Test func futureAndForwardReturnReadLaterBars() throws {
    let bars = BarSeries(
      timestamps: [1, 2, 3, 4], open: [1, 1, 1, 1], high: [1, 1, 1, 1], low: [1, 1, 1, 1], close: [10, 11, 12, 9], volume: [0, 0, 0, 0])
    let evaluator = RuleEvaluator(bars: bars)
    let forward = evaluator.evaluate(try RuleParser.parse("forward_return(close, 2)", origin: "l", parameters: [:], allowLookahead: true))
    #expect(forward[0] == 12.0 / 10 - 1 && forward[1] == 9.0 / 11 - 1 && forward[2].isNaN && forward[3].isNaN)
    #expect(
      evaluator.evaluate(try RuleParser.parse("future(close, 1)", origin: "l", parameters: [:], allowLookahead: true)).dropLast() == [11, 12, 9])
  }
}

@Suite struct ModelSpecTests {
  static func spec(label: String = "forward_return(close, 5) > 0", features: [ModelSpec.Feature]? = nil, kind: String? = nil) -> ModelSpec {
    ModelSpec(
      name: "m", dataset: "GOOG-1d", params: ["h": 5],
      features: features ?? [ModelSpec.Feature(name: "rsi14", expr: "rsi(close, 14)")], label: ModelSpec.Label(expr: label, kind: kind),
      model: ["family": "gbt", "rounds": 10], split: ModelSpec.Split(train: "..2009-12-31", valid: "2010-01-01..2011-06-30", test: "2011-07-01.."))
  }

  /// A spec error: invalid input (65), as a strategy spec's.
  func invalidSpec(_ body: () throws -> Void) -> Bool {
    do {
      try body()
      return false
    } catch let error as any QtoolError {
      return error.exitStatus == .dataError
    } catch { return false }
  }

  @Test func aLabelWithoutLookAheadIsASpecError() {
    #expect(invalidSpec { _ = try CompiledModel(Self.spec(label: "close > sma(close, 5)")) })
  }

  @Test func aFeatureWithLookAheadIsASpecErrorWithACaret() {
    #expect(invalidSpec { _ = try CompiledModel(Self.spec(features: [.init(name: "peek", expr: "future(close, 1)")])) })
    #expect(invalidSpec { _ = try CompiledModel(Self.spec(features: [.init(name: "bad", expr: "rsi(close, 14")])) })
  }

  @Test func purgeShorterThanTheHorizonIsRefused() {
    var spec = Self.spec()
    spec.split?.purge = .int(2)
    #expect(invalidSpec { _ = try CompiledModel(spec) })
    spec.split?.purge = .string("h")
    #expect(throws: Never.self) { _ = try CompiledModel(spec) }
  }

  @Test func splitRangesAreInclusiveDaysInOrder() throws {
    let model = try CompiledModel(Self.spec())
    guard case .split(let train, let valid, let test) = model.plan else { Issue.record("not a split"); return }
    #expect(train.to == UTCCalendar.timestamp(year: 2010, month: 1, day: 1))
    #expect(valid?.from == UTCCalendar.timestamp(year: 2010, month: 1, day: 1))
    #expect(test?.to == nil)
    var overlapping = Self.spec()
    overlapping.split?.valid = "2009-06-01..2010-06-30"
    #expect(invalidSpec { _ = try CompiledModel(overlapping) })
  }

  @Test func reservedAndUnknownSettingsAreNamed() {
    var spec = Self.spec()
    spec.model["objective"] = "reg:squarederror"
    #expect(invalidSpec { _ = try CompiledModel(spec) })
    var logistic = Self.spec()
    logistic.model = ["family": "logistic", "lamda": 2]
    #expect(invalidSpec { _ = try CompiledModel(logistic) })
  }

  @Test func monthsStepByTheCalendar() {
    let jan31 = UTCCalendar.timestamp(year: 2020, month: 1, day: 31)
    #expect(PeriodSpan("1m")!.after(jan31) == UTCCalendar.timestamp(year: 2020, month: 2, day: 29))
    #expect(PeriodSpan("2y")!.after(jan31) == UTCCalendar.timestamp(year: 2022, month: 1, day: 31))
    #expect(PeriodSpan("0m") == nil && PeriodSpan("3x") == nil)
  }
}
