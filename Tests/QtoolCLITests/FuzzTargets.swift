import Foundation
import QtoolArgs
import QtoolCore
import QtoolData
import QtoolEngine

/// The fuzz targets' entry points. `make fuzz` links each `Tests/Fuzz/<target>/` harness with
/// this file and the libraries built for coverage; `FuzzRegressionTests` replays every input
/// saved under `Tests/Fuzz/Regressions/<target>/` through the same functions. Bad input may
/// be refused with any error; a trap, a hang or a broken invariant (`precondition`) is a find.
public enum FuzzTargets {
  public static let names = ["csv", "rules", "spec", "dates", "archive"]

  public static func run(_ target: String, _ data: Data) {
    switch target {
    case "csv": csv(data)
    case "rules": rules(data)
    case "spec": spec(data)
    case "dates": dates(data)
    case "archive": archive(data)
    default: preconditionFailure("no fuzz target \(target)")
    }
  }

  /// Forty bars with a gap, a flat stretch and a zero, for rules to run on.
  static let bars: BarSeries = {
    var bars = BarSeries()
    for i in 0..<40 {
      let price = i < 10 ? 100 : i < 20 ? 100 + Double(i) : i == 25 ? 0 : 120 - Double(i % 7)
      bars.append(
        timestamp: 1_600_000_000_000 + Int64(i + (i > 30 ? 5 : 0)) * 86_400_000, open: price, high: price * 1.01, low: price * 0.99,
        close: price, volume: Double(i))
    }
    return bars
  }()

  /// The CSV splitter and bar reader, as import streams it: options from the first byte, the
  /// text appended in two blocks split where the second byte says.
  public static func csv(_ data: Data) {
    guard let first = data.first else { return }
    var options = CSVOptions()
    if first & 1 != 0 { options.hasHeader = false }
    if first & 2 != 0 { options.delimiter = [44, 59, 9, 124][Int(first >> 2) & 3] }
    if first & 16 != 0 { options.maxLineLength = 100 }
    if first & 32 != 0 { options.epochUnit = TimestampParser.EpochUnit.allCases[Int(first >> 6) & 3] }
    if first & 0xC0 == 0xC0 { options.timestampRange = nil }
    let body = Data(data.dropFirst())
    let split = body.isEmpty ? 0 : Int(body[0]) * body.count / 256
    func read(_ text: Data) throws -> CSVBarReader.Result {
      let stream = CSVStream(options: options, file: "fuzz.csv")
      try Data(text.prefix(split)).withUnsafeBytes { try stream.append($0) }
      try Data(text.dropFirst(split)).withUnsafeBytes { try stream.append($0) }
      return try stream.finish()
    }
    guard let result = try? read(body) else { return }
    if let range = options.timestampRange {
      precondition(result.series.timestamps.allSatisfy(range.contains), "a bar outside the timestamp range")
    }
    // The RFC 4180 path against the plain one: the same text with every field quoted reads
    // the same. (Known delimiter, no quotes or BOM to begin with, lines well under the limit.)
    guard let delimiter = options.delimiter, options.maxLineLength == CSVOptions.defaultMaxLineLength, !body.contains(34),
      !body.starts(with: [0xEF, 0xBB, 0xBF]), !body.contains(0)
    else { return }
    var quoted = Data()
    for line in body.split(separator: 10, omittingEmptySubsequences: false) {
      let crlf = line.last == 13
      let content = crlf ? line.dropLast() : line[...]
      if !content.isEmpty {
        let fields = content.split(separator: delimiter, omittingEmptySubsequences: false)
        quoted.append(contentsOf: fields.map { [34] + $0 + [34] }.joined(separator: [delimiter]))
      }
      if crlf { quoted.append(13) }
      quoted.append(10)
    }
    quoted.removeLast()
    guard let again = try? read(quoted) else { preconditionFailure("quoted, the text no longer reads") }
    precondition(again.series == result.series && again.skippedRows == result.skippedRows, "quoted, the text reads differently")
  }

  /// The rules parser (as rules with params and columns, or as `--assert` on metrics), the
  /// printer against the parser, and the evaluator on a few bars.
  public static func rules(_ data: Data) {
    guard let first = data.first else { return }
    let text = String(decoding: data.dropFirst(), as: UTF8.self)
    if first & 1 != 0 {
      let metrics = ["sharpe": 1.25, "trades": 40, "max_drawdown": -0.2, "total_return": .nan]
      if let condition = try? NamedCondition(text, origin: "assert", names: Array(metrics.keys)) {
        _ = condition.holds(for: metrics)
      }
      return
    }
    let parameters = ["fast": 10.0, "slow": 30, "k": 2.5, "huge": 1e20, "tiny": 1e-300, "negative": -3, "endless": .infinity]
    guard let expression = try? RuleParser.parse(text, origin: "fuzz", parameters: parameters) else { return }
    let printed = expression.source
    guard let reparsed = try? RuleParser.parse(printed, origin: "fuzz", parameters: parameters) else {
      preconditionFailure("\(text) printed as \(printed), which does not parse")
    }
    // Compared as text: NaN (0 / 0) is not equal to itself.
    precondition(reparsed.source == printed, "\(text) printed as \(printed), read back as \(reparsed.source)")
    _ = expression.description
    _ = expression.lookback
    let evaluator = RuleEvaluator(bars: bars)
    if expression.type == .boolean { _ = evaluator.condition(expression) } else { _ = evaluator.evaluate(expression) }
  }

  /// The spec loader: YAML or JSON through Yams, the keys check, the Codable decoding and the
  /// rules compile step, then the warm-up a run would start from.
  public static func spec(_ data: Data) {
    let text = String(decoding: data, as: UTF8.self)
    guard let loaded = try? StrategyLoader.parse(text, origin: "fuzz.yaml") else { return }
    if let strategy = try? CompiledStrategy(loaded.spec, origin: "fuzz.yaml") { _ = strategy.firstDecisionBar }
  }

  /// Timestamps in CSV fields, timeframes, and the command line's dates and durations.
  public static func dates(_ data: Data) {
    guard let first = data.first else { return }
    let body = Data(data.dropFirst())
    let unit: TimestampParser.EpochUnit? = first & 4 == 0 ? nil : TimestampParser.EpochUnit.allCases[Int(first) & 3]
    let milliseconds = body.withUnsafeBytes { TimestampParser.parse($0.bindMemory(to: UInt8.self), unit: unit) }
    let text = String(decoding: body, as: UTF8.self)
    if let milliseconds { _ = UTCCalendar.format(milliseconds, alwaysTime: true) }
    if let timeframe = Timeframe(text) {
      precondition(ValueParsing.isTimeframe(text), "Timeframe reads '\(text)', the command line does not")
      let at = milliseconds ?? 1_700_000_000_000
      _ = timeframe.milliseconds
      _ = timeframe.isAligned(at)
      _ = timeframe.barsPerYear(tradingDays: 252)
      if (0..<7_258_118_400_000).contains(at) { _ = timeframe.next(after: at) }
    } else if ValueParsing.isTimeframe(text) {
      preconditionFailure("the command line takes timeframe '\(text)', Timeframe does not")
    }
    _ = ValueParsing.date(text)
    _ = ValueParsing.durationSeconds(text)
  }

  /// The archive reader on bytes in memory (zip, gzip, tar, bzip2, xz or plain), with small
  /// limits so a bomb is refused quickly.
  public static func archive(_ data: Data) {
    let limits = ArchiveReader.Limits(maxBytes: 64 << 20, maxRatio: 100, ratioAfter: 1 << 20)
    guard let entries = try? ArchiveReader.entries(data: data, label: "fuzz.gz", limits: limits) else { return }
    let total = entries.reduce(0) { $0 + $1.data.count }
    precondition(total <= (64 << 20) + (1 << 20), "unpacked \(total) bytes past the limit")
  }
}
