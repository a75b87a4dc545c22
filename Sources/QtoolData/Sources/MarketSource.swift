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

  public init(request: HTTPRequest, window: Range<Int64>, checksumURL: String? = nil, localPath: String? = nil) {
    self.request = request
    self.window = window
    self.checksumURL = checksumURL
    self.localPath = localPath
  }
}

/// Bars from one response, plus facts worth keeping (splits, dividends).
public struct SourceBatch: Sendable {
  public var series: BarSeries
  public var events: [MarketEvent]
  public init(series: BarSeries, events: [MarketEvent] = []) {
    self.series = series
    self.events = events
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
}

extension MarketSource {
  public func pacing(_ response: HTTPResponse) -> Double? { nil }
  public func calendar(for symbol: String) -> TradingCalendar { TradingCalendar.guess(source: name, symbol: symbol) }
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

extension BarSeries {
  /// The bars with open time in `window` whose close time (open + timeframe) has passed.
  func finalBars(in window: Range<Int64>, timeframe: Timeframe, now: Int64) -> BarSeries {
    var result = BarSeries(reservingCapacity: count)
    for i in 0..<count where window.contains(timestamps[i]) && timeframe.next(after: timestamps[i]) <= now {
      result.append(timestamp: timestamps[i], open: open[i], high: high[i], low: low[i], close: close[i], volume: volume[i])
    }
    return result
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
