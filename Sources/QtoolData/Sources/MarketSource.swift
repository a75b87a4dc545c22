import Foundation
import QtoolCore

/// One request of a download and the bars it is meant to cover.
public struct SourceTask: Sendable {
  public var request: HTTPRequest
  /// Bars with open time in `[lower, upper)` are taken from the response.
  public var window: Range<Int64>
  /// A file whose first word is the SHA-256 the body must have (Binance's `.CHECKSUM`).
  public var checksumURL: String?
  /// A local file instead of a URL (the csv source).
  public var localPath: String?
  public var symbol: String
  /// The dataset's calendar, for the grid rule of `BarValidation`.
  public var calendar: TradingCalendar

  public init(
    request: HTTPRequest, window: Range<Int64>, checksumURL: String? = nil, localPath: String? = nil, symbol: String = "",
    calendar: TradingCalendar = .allDays
  ) {
    self.request = request
    self.window = window
    self.checksumURL = checksumURL
    self.localPath = localPath
    self.symbol = symbol
    self.calendar = calendar
  }

  /// The file's name, for messages (`BTCUSDT-1d-2024-03.zip`).
  public var fileName: String {
    if let localPath { return localPath }
    let path = request.url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.url
    return URL(string: path)?.lastPathComponent ?? path
  }
}

/// A row the source sent without usable values: left out, counted and reported, never
/// filled in with a number.
public struct DroppedRow: Sendable, Equatable, Codable {
  /// The row's open time, when it could be read.
  public var timestamp: Int64?
  /// `file:line` or `file, row N`.
  public var location: String
  public var reason: String

  public init(timestamp: Int64?, location: String, reason: String) {
    self.timestamp = timestamp
    self.location = location
    self.reason = reason
  }

  public var description: String { "\(location): \(reason)" }
}

/// Bars from one response, plus facts worth keeping (splits, dividends).
public struct SourceBatch: Sendable {
  public var series: BarSeries
  public var events: [MarketEvent]
  /// Rows left out for missing or unreadable values (within the task's window).
  public var dropped: [DroppedRow]
  /// Rows repeated with identical values, dropped.
  public var duplicates: Int
  /// Bars the response held, wherever they were, before keeping the window's final ones.
  public var received: Int
  public var receivedRange: ClosedRange<Int64>?
  /// Why a response without bars had none, in the source's words ("Stooq answered 'No data'").
  public var emptyReason: String?

  public init(
    series: BarSeries, events: [MarketEvent] = [], dropped: [DroppedRow] = [], duplicates: Int = 0, received: Int? = nil,
    receivedRange: ClosedRange<Int64>? = nil, emptyReason: String? = nil
  ) {
    self.series = series
    self.events = events
    self.dropped = dropped
    self.duplicates = duplicates
    self.received = received ?? series.count
    self.receivedRange = receivedRange ?? series.timestamps.first.map { $0...series.timestamps.last! }
    self.emptyReason = emptyReason
  }

  /// The one way a source turns what it parsed into a batch: every row checked by
  /// `BarValidation` (a bad one refuses the whole response, named by file and line), rows
  /// still open left out, identical repeats dropped and counted (different ones refused),
  /// then the final bars of the task's window kept.
  public static func checked(
    _ series: BarSeries, origin: BarOrigin, task: SourceTask, timeframe: Timeframe, now: Int64, dropped: [DroppedRow] = [],
    events: [MarketEvent] = []
  ) throws -> SourceBatch {
    if let problem = BarValidation.check(series, timeframe: timeframe, calendar: task.calendar, origin: origin) {
      throw IngestError.refused(problem)
    }
    var final = BarSeries(reservingCapacity: series.count)
    var lines: [Int]? = origin.lines == nil ? nil : []
    for i in 0..<series.count where timeframe.next(after: series.timestamps[i]) <= now {
      final.append(
        timestamp: series.timestamps[i], open: series.open[i], high: series.high[i], low: series.low[i], close: series.close[i],
        volume: series.volume[i])
      if let line = origin.line(of: i) { lines?.append(line) }
    }
    let unique: (series: BarSeries, identical: Int)
    switch BarValidation.deduplicate(final, origin: BarOrigin(file: origin.file, lines: lines, textLines: origin.textLines)) {
    case .success(let result): unique = result
    case .failure(let problem): throw IngestError.refused(problem)
    }
    let kept = unique.series.between(from: task.window.lowerBound, to: task.window.upperBound)
    // A row still open may lack values (Yahoo's live row): only final rows count as dropped.
    let droppedInWindow = dropped.filter { row in
      row.timestamp.map { task.window.contains($0) && timeframe.next(after: $0) <= now } ?? true
    }
    return SourceBatch(
      series: kept, events: events, dropped: droppedInWindow, duplicates: unique.identical, received: unique.series.count,
      receivedRange: unique.series.timestamps.first.map { $0...unique.series.timestamps.last! })
  }
}

/// Incoming bars refused by `BarValidation`: nothing of that response is stored.
public enum IngestError: QtoolError, Equatable {
  case refused(BarProblem)

  public var category: ErrorCategory { .invalidInput }
  public var code: String { "bad_bars" }

  public var message: String {
    switch self {
    case .refused(let problem): return "\(problem); nothing from that file was stored"
    }
  }
}

/// A place bars come from. Adapters only build requests and parse responses; the download
/// operation schedules, retries and stores.
public protocol MarketSource: Sendable {
  var name: String { get }
  /// Requests covering `windows` (open times, `[lower, upper)`) of `symbol`.
  func tasks(symbol: String, timeframe: Timeframe, windows: [Range<Int64>], now: Int64) throws -> [SourceTask]
  /// The final bars in a response body, within the task's window.
  func batch(from body: Data, task: SourceTask, timeframe: Timeframe, now: Int64) throws -> SourceBatch
  /// Seconds to pause every request after this response (rate-limit pacing), if any.
  func pacing(_ response: HTTPResponse) -> Double?
  func calendar(for symbol: String) -> TradingCalendar
  /// Why a 2xx body is cut short (it does not end where its format ends), or nil. Such a
  /// body is fetched again, never parsed.
  func incompleteness(of response: HTTPResponse, task: SourceTask) -> String?
  /// The request for the rest of the task's window when the response stopped short of it
  /// (a server that caps its pages), or nil.
  func nextPage(after response: HTTPResponse, task: SourceTask, timeframe: Timeframe, now: Int64) -> SourceTask?
}

extension MarketSource {
  public func pacing(_ response: HTTPResponse) -> Double? { nil }
  public func calendar(for symbol: String) -> TradingCalendar { TradingCalendar.guess(source: name, symbol: symbol) }
  public func incompleteness(of response: HTTPResponse, task: SourceTask) -> String? { nil }
  public func nextPage(after response: HTTPResponse, task: SourceTask, timeframe: Timeframe, now: Int64) -> SourceTask? { nil }
}

/// How bodies of each format end when they arrived whole, and what a body that is not the
/// expected format looks like.
public enum BodyFraming {
  /// JSON must close what it opened: `[…]` or `{…}`.
  static func json(_ body: Data) -> String? {
    guard let first = body.first(where: { !isSpace($0) }), first == UInt8(ascii: "[") || first == UInt8(ascii: "{") else { return nil }
    let last = body.last(where: { !isSpace($0) })
    let closing = first == UInt8(ascii: "[") ? UInt8(ascii: "]") : UInt8(ascii: "}")
    guard last != closing else { return nil }
    return "the JSON does not end with its closing '\(Character(UnicodeScalar(closing)))' (\(body.count) bytes arrived, ending '\(tail(body))')"
  }

  /// Text lines must end with a line break.
  static func lines(_ body: Data) -> String? {
    guard let last = body.last, last != 10 else { return nil }
    return "its last line has no line break (\(body.count) bytes arrived, the last line reads '\(tail(body))')"
  }

  /// A zip ends with its end-of-central-directory record.
  static func zip(_ body: Data) -> String? {
    guard body.count >= 2, body[body.startIndex] == 0x50, body[body.startIndex + 1] == 0x4B else { return nil }
    let signature: [UInt8] = [0x50, 0x4B, 0x05, 0x06]
    let searched = body.suffix(65_557)
    if searched.count >= 22, searched.firstRange(of: signature) != nil { return nil }
    return "the zip archive has no end record (\(body.count) bytes arrived)"
  }

  static func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }

  /// The body's last line (its last 60 characters at most).
  static func tail(_ body: Data) -> String {
    let text = String(decoding: body.suffix(400), as: UTF8.self)
    let line = text.split(separator: "\n", omittingEmptySubsequences: false).last.map(String.init) ?? text
    return String(line.trimmingCharacters(in: .whitespacesAndNewlines).suffix(60))
  }

  /// What a body that is not the expected format looks like, for messages.
  public static func describe(_ body: Data) -> String {
    let text = Fetcher.text(body)
    let lower = text.lowercased()
    if body.isEmpty { return "an empty body" }
    if lower.hasPrefix("<!doctype html") || lower.hasPrefix("<html") || lower.contains("<html") {
      return "an HTML page (\(body.count) bytes)"
    }
    if lower.hasPrefix("<?xml") || lower.hasPrefix("<") { return "an XML document (\(body.count) bytes: \(text.prefix(80)))" }
    let printable = body.prefix(200).allSatisfy { $0 >= 32 || $0 == 9 || $0 == 10 || $0 == 13 }
    return printable ? "'\(text.prefix(80))' (\(body.count) bytes)" : "\(body.count) bytes of binary data"
  }
}

public enum SourceError: QtoolError, Equatable {
  case unsupportedTimeframe(source: String, timeframe: String, supported: [String])
  case unknownSource(String, known: [String])
  case invalidSymbol(source: String, symbol: String, reason: String)

  public var category: ErrorCategory {
    switch self {
    case .unsupportedTimeframe, .unknownSource: return .usage
    case .invalidSymbol: return .unavailable
    }
  }

  public var code: String {
    switch self {
    case .unsupportedTimeframe: return "unsupported_timeframe"
    case .unknownSource: return "unknown_source"
    case .invalidSymbol: return "unknown_symbol"
    }
  }

  public var message: String {
    switch self {
    case .unsupportedTimeframe(let source, let timeframe, let supported):
      return "\(source) has no \(timeframe) bars; it offers \(supported.joined(separator: ", "))"
    case .unknownSource(let name, let known):
      return "unknown source '\(name)'; choose one of \(known.joined(separator: ", "))"
    case .invalidSymbol(let source, let symbol, let reason):
      return "\(source) does not know \(symbol): \(reason)"
    }
  }
}

/// Splits `[lower, upper)` into windows of at most `bars` bars of `timeframe`.
func pages(_ window: Range<Int64>, timeframe: Timeframe, bars: Int) -> [Range<Int64>] {
  var result: [Range<Int64>] = []
  var start = window.lowerBound
  while start < window.upperBound {
    var end = start
    for _ in 0..<bars where end < window.upperBound { end = timeframe.next(after: end) }
    end = min(end, window.upperBound)
    result.append(start..<end)
    start = end
  }
  return result
}
