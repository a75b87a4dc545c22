import Foundation
import QtoolCore
import Testing

@testable import QtoolData

@Suite struct DownloadAuditTests {
  let day: Int64 = 86_400_000
  let daily = Timeframe("1d")!
  func date(_ y: Int, _ m: Int, _ d: Int) -> Int64 { UTCCalendar.timestamp(year: y, month: m, day: d) }
  func days(_ range: Range<Int64>) -> [Int64] { Array(stride(from: range.lowerBound, to: range.upperBound, by: Int(day))) }

  func conclude(
    stored: [Int64], range: Range<Int64>, outcomes: [TaskOutcome], dropped: [DroppedRow] = [], ledger: DownloadLedger = DownloadLedger(),
    errors: [(message: String, status: QtoolCore.ExitStatus)] = [], calendar: TradingCalendar = .allDays
  ) -> SymbolConclusion {
    DownloadAudit.conclude(
      source: "binance-bulk", symbol: "BTCUSDT", dataset: "BTCUSDT-1d", timeframe: daily, calendar: calendar, range: range, stored: stored,
      outcomes: outcomes, dropped: dropped, ledger: ledger, errors: errors, changed: true)
  }

  @Test func aMonthMissingInTheMiddleIsAHoleEveryTime() {
    let range = date(2024, 2, 1)..<date(2024, 5, 1)
    let stored = days(date(2024, 2, 1)..<date(2024, 3, 1)) + days(date(2024, 4, 1)..<date(2024, 5, 1))
    let march = TaskOutcome(window: date(2024, 3, 1)..<date(2024, 4, 1), file: "BTCUSDT-1d-2024-03.zip", result: .notPublished)
    let result = conclude(stored: stored, range: range, outcomes: [march])
    #expect(result.status == "incomplete")
    #expect(result.exitStatus == .temporaryFailure)
    #expect(result.holes == [DownloadLedger.Hole(date(2024, 3, 1)..<date(2024, 4, 1), missing: 31, reason: "BTCUSDT-1d-2024-03.zip not published (HTTP 404) while later files are")])
    #expect(
      result.failures == [
        "BTCUSDT-1d: 31 bars missing from 2024-03-01 to 2024-04-01 (BTCUSDT-1d-2024-03.zip not published (HTTP 404) while later files are); the source may still publish them: run again later, or accept the hole with --accept-missing 2024-03"
      ])
    var ledger = DownloadLedger()
    ledger.accept([AcceptedPeriod.parse("2024-03")!])
    let accepted = conclude(stored: stored, range: range, outcomes: [march], ledger: ledger)
    #expect(accepted.exitStatus == .success)
    #expect(accepted.holes.isEmpty)
    #expect(accepted.acceptedHoles.count == 1)
  }

  @Test func beforeTheFirstAndAfterTheLastAreNotHoles() {
    let range = date(2021, 1, 1)..<date(2021, 4, 1)
    let stored = days(date(2021, 2, 1)..<date(2021, 3, 1))
    let outcomes = [
      TaskOutcome(window: date(2021, 1, 1)..<date(2021, 2, 1), file: "BTCUSDT-1d-2021-01.zip", result: .notPublished),
      TaskOutcome(window: date(2021, 2, 1)..<date(2021, 3, 1), file: "BTCUSDT-1d-2021-02.zip", result: .stored(bars: 28)),
      TaskOutcome(window: date(2021, 3, 1)..<date(2021, 4, 1), file: "BTCUSDT-1d-2021-03.zip", result: .notPublished),
    ]
    let result = conclude(stored: stored, range: range, outcomes: outcomes)
    #expect(result.exitStatus == .success)
    #expect(result.starts == date(2021, 2, 1))
    #expect(result.notes.contains("BTCUSDT-1d: nothing after 2021-02-28 yet (BTCUSDT-1d-2021-03.zip not published yet)"))
  }

  @Test func nothingAtAllIsAnErrorNamingWhatCame() {
    let range = date(2024, 1, 1)..<date(2024, 1, 5)
    let elsewhere = TaskOutcome(window: range, file: "klines", result: .empty(reason: nil, receivedRange: date(2022, 1, 8)...date(2022, 1, 9)))
    let result = conclude(stored: [], range: range, outcomes: [elsewhere])
    #expect(result.exitStatus == .unavailable)
    #expect(
      result.failures == [
        "BTCUSDT-1d: binance-bulk sent no BTCUSDT 1d bars from 2024-01-01 to 2024-01-05 (its answer held bars from 2022-01-08 to 2022-01-09, outside the requested window); check the symbol and the dates; nothing was stored"
      ])
    let empty = conclude(stored: [], range: range, outcomes: [TaskOutcome(window: range, file: "x", result: .empty(reason: "Yahoo answered result: null", receivedRange: nil))])
    #expect(empty.failures[0].contains("(Yahoo answered result: null)"))
  }

  @Test func aDroppedRowIsAHoleEvenOnAWeekdayCalendar() {
    let range = date(2024, 1, 1)..<date(2024, 1, 6)
    let stored = [date(2024, 1, 1), date(2024, 1, 2), date(2024, 1, 4), date(2024, 1, 5)]
    let dropped = [DroppedRow(timestamp: date(2024, 1, 3), location: "u, row 3 (2024-01-03)", reason: "volume is null; the bar was left out")]
    let result = conclude(stored: stored, range: range, outcomes: [TaskOutcome(window: range, file: "u", result: .stored(bars: 4))], dropped: dropped, calendar: .weekdays)
    #expect(result.exitStatus == .temporaryFailure)
    #expect(result.holes.map(\.reason) == ["the source sent the row without values: u, row 3 (2024-01-03): volume is null; the bar was left out"])
    #expect(result.failures[0].contains("--accept-missing 2024-01-03"))
    // The next run: the source now omits the day; the ledger still names it.
    var ledger = DownloadLedger()
    ledger.holes = result.holes
    let next = conclude(stored: stored, range: range, outcomes: [TaskOutcome(window: range, file: "u", result: .empty(reason: nil, receivedRange: nil))], ledger: ledger, calendar: .weekdays)
    #expect(next.exitStatus == .temporaryFailure, "both runs say the same")
  }

  @Test func permanentFailuresWinOverTemporaryOnes() {
    #expect(DownloadAudit.combine([.temporaryFailure, .unavailable]) == .unavailable)
    #expect(DownloadAudit.combine([.temporaryFailure, .dataError]) == .dataError)
    #expect(DownloadAudit.combine([.temporaryFailure]) == .temporaryFailure)
    #expect(DownloadAudit.combine([]) == .success)
  }

  @Test func acceptedPeriodsAndTheLedgerRoundTrip() {
    #expect(AcceptedPeriod.parse("2024-03") == date(2024, 3, 1)..<date(2024, 4, 1))
    #expect(AcceptedPeriod.parse("2024-12") == date(2024, 12, 1)..<date(2025, 1, 1))
    #expect(AcceptedPeriod.parse("2024-03-05") == date(2024, 3, 5)..<date(2024, 3, 6))
    #expect(AcceptedPeriod.parse("2024-03-05..2024-03-08") == date(2024, 3, 5)..<date(2024, 3, 8))
    #expect(AcceptedPeriod.parse("2024-13") == nil)
    #expect(AcceptedPeriod.parse("2024-03-08..2024-03-05") == nil)
    var ledger = DownloadLedger(starts: "2021-02-01")
    ledger.accept([date(2024, 3, 1)..<date(2024, 3, 10), date(2024, 3, 5)..<date(2024, 4, 1)])
    #expect(ledger.accepted == [DownloadLedger.Period(from: "2024-03-01", to: "2024-04-01")])
    let metadata = #"{"events":[],"download":"# + String(decoding: ledger.json(), as: UTF8.self) + "}"
    #expect(DownloadLedger.read(metadata: metadata) == ledger)
    #expect(DownloadLedger.read(metadata: #"{"events":[]}"#) == DownloadLedger())
    #expect(RangeSet64.subtract([0..<10], [2..<4, 6..<7]) == [0..<2, 4..<6, 7..<10])
  }
}
