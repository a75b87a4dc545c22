import Testing

@testable import QtoolCore

@Suite struct NamedConditionTests {
  /// A grid shard judges every combination of the whole grid: one parse for all of them must
  /// give what judging each alone gives, undefined and infinite values included.
  @Test func manyRowsAtOnceAgreeWithEachAlone() throws {
    let condition = try NamedCondition("fast < slow and abs(fast - slow) > 5 or sharpe >= 2", origin: "where", names: ["fast", "slow", "sharpe"])
    let rows: [[String: Double]] = [
      ["fast": 10, "slow": 30, "sharpe": 0], ["fast": 28, "slow": 30, "sharpe": 0], ["fast": 28, "slow": 30, "sharpe": 2],
      ["fast": .nan, "slow": 30, "sharpe": .nan], ["fast": 10, "slow": .infinity, "sharpe": 0], ["fast": 50, "slow": 30, "sharpe": -.infinity],
      ["fast": 10, "slow": 30],
    ]
    let together = condition.holds(for: rows) { row, name in row[name] }
    #expect(together == [true, false, true, false, true, false, true])
    #expect(together == rows.map { condition.holds(for: $0) })
  }

  /// A param may share a name with a bar column; in a condition on numbers it is the number.
  @Test func aNameLikeAColumnIsItsValue() throws {
    let condition = try NamedCondition("close > 2 * open", origin: "where", names: ["open", "close"], kind: "param")
    #expect(condition.holds(for: ["open": 1, "close": 3]))
    #expect(!condition.holds(for: ["open": 2, "close": 3]))
  }

  /// Errors name the names, not the values the first row happened to have, and a lag (which
  /// had no bars to read and so was always false) is refused.
  @Test func errorsNameTheNamesAndLagsAreRefused() {
    for (text, message) in [
      ("fast and slow > 1", "'and' needs conditions on both sides; fast is a number"),
      ("fast[1] < slow", "a condition on params has no bars to look back over; drop the [n]"),
      ("abs(fast - slow)[2] > 1", "a condition on params has no bars to look back over; drop the [n]"),
    ] {
      do {
        _ = try NamedCondition(text, origin: "where", names: ["fast", "slow"], kind: "param")
        Issue.record("\(text) was accepted")
      } catch let error as RuleError {
        #expect(error.message == message, "\(text)")
        #expect(error.category == .usage)
      } catch { Issue.record("\(error)") }
    }
  }
}
