import Foundation
import QtoolCore

/// What one request of a download came to.
public struct TaskOutcome: Sendable {
  public enum Result: Sendable {
    case stored(bars: Int)
    /// A whole answer without bars in the window: `[]`, `No data`, `result: null`, or bars
    /// from elsewhere (`receivedRange`).
    case empty(reason: String?, receivedRange: ClosedRange<Int64>?)
    /// A file of a listing the source has not published (HTTP 404).
    case notPublished
    case failed
  }

  public var window: Range<Int64>
  /// The file or URL asked for.
  public var file: String
  public var result: Result

  public init(window: Range<Int64>, file: String, result: Result) {
    self.window = window
    self.file = file
    self.result = result
  }
}

/// How one symbol's download ended, judged the same way on every run: a hole in the middle
/// of the requested range fails the run (75) until the source fills it or the user accepts
/// it; no bars at all where bars were expected fails it (69); nothing before the first bar
/// the source has is where its history starts, and nothing after the last is "not yet".
public struct SymbolConclusion: Sendable {
  /// `downloaded`, `up_to_date`, `incomplete` (holes) or `failed`.
  public var status: String
  /// Missing ranges not accepted, each with its reason.
  public var holes: [DownloadLedger.Hole]
  /// Missing ranges the ledger accepts.
  public var acceptedHoles: [DownloadLedger.Hole]
  /// For people: where the history starts, what is not published yet.
  public var notes: [String]
  /// One line each, for stderr: errors, then holes.
  public var failures: [String]
  public var exitStatus: ExitStatus
  /// Where the source's history starts, when this run learned it.
  public var starts: Int64?
}

public enum DownloadAudit {
  /// - Parameters:
  ///   - range: the open times asked for (`--from` or the first stored bar, to `--to` or now).
  ///   - stored: every open time stored for the dataset after the run.
  ///   - errors: failures of this run's requests, with their exit statuses.
  ///   - changed: whether this run added, replaced or removed bars.
  public static func conclude(
    source: String, symbol: String, dataset: String, timeframe: Timeframe, calendar: TradingCalendar, range: Range<Int64>,
    stored: [Int64], outcomes: [TaskOutcome], dropped: [DroppedRow], ledger: DownloadLedger,
    errors: [(message: String, status: ExitStatus)], changed: Bool
  ) -> SymbolConclusion {
    var notes: [String] = []
    var failures = errors.map { "\(dataset): \($0.message)" }
    var statuses = errors.map(\.status)
    let inRange = stored.filter { range.contains($0) }
    let failedWindows = outcomes.filter { if case .failed = $0.result { return true } else { return false } }.map(\.window)
    let fromText = UTCCalendar.format(range.lowerBound)
    let toText = UTCCalendar.format(range.upperBound)

    guard let first = inRange.first, let last = inRange.last else {
      if errors.isEmpty && !outcomes.isEmpty {
        failures.append("\(dataset): " + noBars(source: source, symbol: symbol, timeframe: timeframe, from: fromText, to: toText, outcomes: outcomes))
        statuses.append(.unavailable)
      } else if outcomes.isEmpty {
        notes.append("\(dataset): no \(timeframe) bar is due between \(fromText) and \(toText)")
      }
      return SymbolConclusion(
        status: failures.isEmpty ? "up_to_date" : "failed", holes: [], acceptedHoles: [], notes: notes, failures: failures,
        exitStatus: combine(statuses), starts: nil)
    }

    var candidates: [Range<Int64>] = []
    var starts: Int64?
    let plan = MissingRanges.plan(existing: inRange, from: range.lowerBound, to: range.upperBound, timeframe: timeframe, calendar: calendar)
    for window in plan.windows {
      let asked = outcomes.filter { $0.window.overlaps(window) }
      let failed = failedWindows.contains { $0.overlaps(window) }
      if window.upperBound <= first {
        if !failed && !asked.isEmpty {
          starts = first
          notes.append("\(dataset): \(source) has no \(symbol) \(timeframe) bars before \(UTCCalendar.format(first)); later runs start there")
        }
      } else if window.lowerBound > last {
        if !failed && !asked.isEmpty {
          let unpublished = asked.filter { if case .notPublished = $0.result { return true } else { return false } }.map(\.file).sorted()
          notes.append(
            "\(dataset): nothing after \(UTCCalendar.format(last)) yet"
              + (unpublished.isEmpty ? "" : " (\(list(unpublished)) not published yet)"))
        }
      } else {
        candidates.append(window)
      }
    }
    let storedSet = Set(inRange)
    for row in dropped {
      guard let ts = row.timestamp, range.contains(ts), !storedSet.contains(ts) else { continue }
      candidates.append(ts..<timeframe.next(after: ts))
    }
    for hole in ledger.holes {
      guard let hole = hole.range?.clamped(to: range), !hole.isEmpty else { continue }
      if !inRange.contains(where: { hole.contains($0) }) { candidates.append(hole) }
    }
    let missing = RangeSet64.subtract(RangeSet64.union(candidates), failedWindows)
    let accepted = ledger.acceptedRanges
    var holes: [DownloadLedger.Hole] = []
    var acceptedHoles: [DownloadLedger.Hole] = []
    for window in missing {
      for piece in RangeSet64.subtract([window], accepted) {
        let hole = DownloadLedger.Hole(
          piece, missing: count(piece, timeframe: timeframe, calendar: calendar),
          reason: reason(for: piece, outcomes: outcomes, dropped: dropped, ledger: ledger))
        holes.append(hole)
        let unit = calendar == .weekdays && timeframe.unit != .week && timeframe.unit != .month ? "weekday" : "bar"
        failures.append(
          "\(dataset): \(DisplayFormat.plural(hole.missing, unit)) missing from \(hole.from) to \(hole.to) (\(hole.reason)); the source may still publish "
            + "them: run again later, or accept the hole with --accept-missing \(suggestion(piece))")
        statuses.append(.temporaryFailure)
      }
      for piece in RangeSet64.subtract([window], RangeSet64.subtract([window], accepted)) {
        acceptedHoles.append(DownloadLedger.Hole(piece, missing: count(piece, timeframe: timeframe, calendar: calendar), reason: "accepted"))
        notes.append("\(dataset): \(UTCCalendar.format(piece.lowerBound)) to \(UTCCalendar.format(piece.upperBound)) is missing, as accepted")
      }
    }
    let status = !errors.isEmpty ? "failed" : !holes.isEmpty ? "incomplete" : changed ? "downloaded" : "up_to_date"
    return SymbolConclusion(
      status: status, holes: holes, acceptedHoles: acceptedHoles, notes: notes, failures: failures, exitStatus: combine(statuses),
      starts: starts)
  }

  /// One exit status for several failures: a permanent one (69, then 65) needs a person and
  /// wins over a temporary one (75); none is success.
  public static func combine(_ statuses: [ExitStatus]) -> ExitStatus {
    let order: [ExitStatus] = [.unavailable, .dataError, .usage, .noInput, .cannotCreate, .software, .failure, .temporaryFailure]
    return order.first { statuses.contains($0) } ?? statuses.first { $0 != .success } ?? .success
  }

  /// "binance sent no bars for …": the error for a download that found nothing at all.
  static func noBars(source: String, symbol: String, timeframe: Timeframe, from: String, to: String, outcomes: [TaskOutcome]) -> String {
    var details: [String] = []
    if outcomes.allSatisfy({ if case .notPublished = $0.result { return true } else { return false } }) {
      details.append("no file of it is published in that range (HTTP 404)")
    }
    for outcome in outcomes {
      if case .empty(let reason, let received) = outcome.result {
        if let received {
          details.append(
            "its answer held bars from \(UTCCalendar.format(received.lowerBound)) to \(UTCCalendar.format(received.upperBound)), outside the requested window")
        } else if let reason {
          details.append(reason)
        } else {
          details.append("its answer held no bars")
        }
      }
    }
    let unique = details.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    return "\(source) sent no \(symbol) \(timeframe) bars from \(from) to \(to)"
      + (unique.isEmpty ? "" : " (\(unique.prefix(2).joined(separator: "; ")))") + "; check the symbol and the dates; nothing was stored"
  }

  static func reason(for hole: Range<Int64>, outcomes: [TaskOutcome], dropped: [DroppedRow], ledger: DownloadLedger) -> String {
    let rows = dropped.filter { row in row.timestamp.map { hole.contains($0) } ?? false }
    if let row = rows.first {
      return rows.count == 1 ? "the source sent the row without values: \(row.description)" : "the source sent \(rows.count) rows without values, first \(row.description)"
    }
    let asked = outcomes.filter { $0.window.overlaps(hole) }
    let unpublished = asked.filter { if case .notPublished = $0.result { return true } else { return false } }.map(\.file).sorted()
    if !unpublished.isEmpty { return "\(list(unpublished)) not published (HTTP 404) while later files are" }
    for outcome in asked {
      if case .empty(let reason, _) = outcome.result { return (reason ?? "the source's answer held no bars") + " for that range" }
    }
    if !asked.isEmpty { return "the source's answer has no bars there" }
    return ledger.holes.first { $0.range?.overlaps(hole) ?? false }?.reason ?? "no bars there"
  }

  /// Bars (24x7, weeks, months) or weekdays (weekdays calendar) in `range`.
  static func count(_ range: Range<Int64>, timeframe: Timeframe, calendar: TradingCalendar) -> Int {
    if calendar == .weekdays, timeframe.unit != .week, timeframe.unit != .month {
      var days = 0
      var day = range.lowerBound / UTCCalendar.dayMilliseconds
      while day * UTCCalendar.dayMilliseconds < range.upperBound {
        if UTCCalendar.weekday(day * UTCCalendar.dayMilliseconds) < 5 { days += 1 }
        day += 1
      }
      return max(1, days)
    }
    var bars = 0
    var t = range.lowerBound
    while t < range.upperBound && bars < 10_000_000 {
      bars += 1
      t = timeframe.next(after: t)
    }
    return bars
  }

  /// What to pass to `--accept-missing` for `range`: a month, a day, or `FROM..TO`.
  static func suggestion(_ range: Range<Int64>) -> String {
    let (year, month, day, rest) = UTCCalendar.components(range.lowerBound)
    if day == 1, rest == 0, Timeframe(count: 1, unit: .month).next(after: range.lowerBound) == range.upperBound {
      return "\(year)-\(month < 10 ? "0" : "")\(month)"
    }
    if rest == 0, range.upperBound - range.lowerBound == UTCCalendar.dayMilliseconds { return UTCCalendar.format(range.lowerBound) }
    return "\(UTCCalendar.format(range.lowerBound))..\(UTCCalendar.format(range.upperBound))"
  }

  static func list(_ files: [String]) -> String {
    files.count <= 3 ? files.joined(separator: ", ") : "\(files.prefix(2).joined(separator: ", ")) and \(files.count - 2) more"
  }
}
