import Foundation
import QtoolCore

/// How to read bars out of a CSV file. `detect` fills it in from the first lines; options override.
public struct CSVLayout: Sendable, Equatable {
  public var delimiter: UInt8 = UInt8(ascii: ",")
  public var hasHeader: Bool
  public var timestamp: Int
  public var open: Int
  public var high: Int
  public var low: Int
  public var close: Int
  /// nil: the file has no volume; bars get 0.
  public var volume: Int?
  public var epochUnit: TimestampParser.EpochUnit?
  /// A date pattern (Unicode/ICU style, e.g. `dd/MM/yyyy HH:mm`) for timestamps that ISO-8601
  /// and epoch numbers do not cover; read as UTC.
  public var timestampFormat: String?
}

/// Options a user gives when the guess is not enough (`--map`, `--no-header`, …).
public struct CSVOptions: Sendable, Equatable {
  /// Field name → column header (or 1-based column number), e.g. `close` → `Adj Close`.
  public var columns: [String: String] = [:]
  public var hasHeader: Bool?
  public var delimiter: UInt8?
  public var epochUnit: TimestampParser.EpochUnit?
  public var timestampFormat: String?
  public init() {}
}

public enum CSVError: QtoolError, Equatable {
  case layout(file: String, reason: String)
  case row(file: String, line: Int, reason: String)
  case empty(file: String)

  public var category: ErrorCategory { .invalidInput }

  public var code: String {
    switch self {
    case .layout: return "csv_layout"
    case .row: return "csv_row"
    case .empty: return "csv_empty"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .layout(let file, _), .empty(let file): return ["file": .string(file)]
    case .row(let file, let line, _): return ["file": .string(file), "line": JSONValue(line)]
    }
  }

  public var message: String {
    switch self {
    case .layout(let file, let reason): return "\(file): \(reason)"
    case .row(let file, let line, let reason): return "\(file):\(line): \(reason)"
    case .empty(let file): return "\(file): no bars found (the file is empty or has only a header)"
    }
  }
}

/// Reads OHLCV bars from CSV bytes in one pass, without building strings per field.
public enum CSVBarReader {
  static let names: [String: [String]] = [
    "timestamp": ["timestamp", "date", "time", "datetime", "open_time", "opentime", "open time", "data", "ts", "gmt time", "local time", ""],
    "open": ["open", "o", "otwarcie"],
    "high": ["high", "h", "najwyzszy"],
    "low": ["low", "l", "najnizszy"],
    "close": ["close", "c", "zamkniecie", "last", "price"],
    "volume": ["volume", "vol", "v", "wolumen", "volume_btc", "base_volume"],
  ]

  /// Works out the layout from the first line, then applies `options`.
  public static func detect(firstLine: String, options: CSVOptions, file: String) throws -> CSVLayout {
    let delimiter = options.delimiter ?? guessDelimiter(firstLine)
    let fields = firstLine.split(separator: Character(UnicodeScalar(delimiter)), omittingEmptySubsequences: false).map {
      $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"\r\u{FEFF}")).lowercased()
    }
    let looksNumeric = fields.filter { !$0.isEmpty && (Double($0) != nil || TimestampParser.parse($0) != nil) }.count
    let hasHeader = options.hasHeader ?? (looksNumeric < max(1, fields.count - 1))
    var layout = CSVLayout(hasHeader: hasHeader, timestamp: 0, open: 1, high: 2, low: 3, close: 4, volume: fields.count > 5 ? 5 : nil)
    layout.delimiter = delimiter
    layout.epochUnit = options.epochUnit
    layout.timestampFormat = options.timestampFormat

    func column(for field: String) throws -> Int? {
      if let given = options.columns[field] {
        if let number = Int(given), number >= 1, number <= fields.count { return number - 1 }
        if let index = fields.firstIndex(of: given.lowercased()) { return index }
        throw CSVError.layout(file: file, reason: "--map \(field)=\(given): no such column; the header has \(fields.joined(separator: ", "))")
      }
      guard hasHeader else { return nil }
      let candidates = names[field]!
      if let index = fields.firstIndex(where: { candidates.contains($0) }) { return index }
      return nil
    }
    for key in options.columns.keys where names[key] == nil {
      throw CSVError.layout(file: file, reason: "--map \(key)=…: unknown field; use timestamp, open, high, low, close or volume")
    }
    if hasHeader || !options.columns.isEmpty {
      var found: [String: Int] = [:]
      for field in ["timestamp", "open", "high", "low", "close", "volume"] {
        if let index = try column(for: field) { found[field] = index }
      }
      if hasHeader {
        let missing = ["timestamp", "open", "high", "low", "close"].filter { found[$0] == nil }
        if !missing.isEmpty {
          throw CSVError.layout(
            file: file,
            reason:
              "no column for \(missing.joined(separator: ", ")) in the header (\(fields.joined(separator: ", "))); name them with --map \(missing[0])=COLUMN"
          )
        }
      }
      layout.timestamp = found["timestamp"] ?? layout.timestamp
      layout.open = found["open"] ?? layout.open
      layout.high = found["high"] ?? layout.high
      layout.low = found["low"] ?? layout.low
      layout.close = found["close"] ?? layout.close
      layout.volume = hasHeader ? found["volume"] : (found["volume"] ?? layout.volume)
    } else if fields.count < 5 {
      throw CSVError.layout(file: file, reason: "expected at least 5 columns (timestamp, open, high, low, close), found \(fields.count)")
    }
    return layout
  }

  static func guessDelimiter(_ line: String) -> UInt8 {
    let counts: [(UInt8, Int)] = [UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "\t"), UInt8(ascii: "|")].map { candidate in
      (candidate, line.utf8.filter { $0 == candidate }.count)
    }
    return counts.max { $0.1 < $1.1 }.flatMap { $0.1 > 0 ? $0.0 : nil } ?? UInt8(ascii: ",")
  }

  /// The result of reading one file.
  public struct Result: Sendable {
    public var series: BarSeries
    /// Rows left out because a price was empty, `null` or `NaN`.
    public var skippedRows: Int
  }

  /// Parses `data` (the whole text of one CSV file) with `layout`; a large file in pieces
  /// side by side (`CSVStream`), as parsing is most of an import.
  public static func read(_ data: Data, layout: CSVLayout, file: String) throws -> Result {
    let stream = CSVStream(layout: layout, file: file)
    try data.withUnsafeBytes { try stream.append($0) }
    return try stream.finish()
  }

  /// Parses the lines in `range`; `startsFile` when it begins the file (a BOM, the header).
  /// Also returns how many lines the range held.
  static func parse(
    _ buffer: UnsafeBufferPointer<UInt8>, range: Range<Int>, startsFile: Bool, layout: CSVLayout, file: String
  ) throws -> (result: Result, lines: Int) {
    let count = range.upperBound
    var series = BarSeries(reservingCapacity: max(16, range.count / 60))
    var skipped = 0
    var position = range.lowerBound
    let formatter = layout.timestampFormat.map { format -> DateFormatter in
      let formatter = DateFormatter()
      formatter.locale = Locale(identifier: "en_US_POSIX")
      formatter.timeZone = TimeZone(identifier: "UTC")
      formatter.dateFormat = format
      return formatter
    }
    var lineNumber = 0
    let delimiter = layout.delimiter
    let maxColumn = max(layout.timestamp, layout.open, layout.high, layout.low, layout.close, layout.volume ?? 0)
    // Pointers, not arrays: captured by `field` below, arrays would be boxed and every access
    // checked for exclusivity at run time.
    let starts = UnsafeMutableBufferPointer<Int>.allocate(capacity: maxColumn + 2)
    let ends = UnsafeMutableBufferPointer<Int>.allocate(capacity: maxColumn + 2)
    starts.initialize(repeating: 0)
    ends.initialize(repeating: 0)
    defer {
      starts.deallocate()
      ends.deallocate()
    }
    if startsFile, count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { position = 3 }

    while position < count {
      lineNumber += 1
      // memchr scans many bytes per step; a byte loop was a fifth of parsing.
      let lineEnd =
        memchr(buffer.baseAddress! + position, 10, count - position).map {
          UnsafePointer<UInt8>($0.assumingMemoryBound(to: UInt8.self)) - buffer.baseAddress!
        } ?? count
      defer { position = lineEnd + 1 }
      if lineNumber == 1, startsFile, layout.hasHeader { continue }
      var contentEnd = lineEnd
      if contentEnd > position, buffer[contentEnd - 1] == 13 { contentEnd -= 1 }
      if contentEnd == position { continue }

      // Split the fields we need.
      var column = 0
      var fieldStart = position
      var i = position
      while i <= contentEnd, column <= maxColumn {
        if i == contentEnd || buffer[i] == delimiter {
          starts[column] = fieldStart
          ends[column] = i
          column += 1
          fieldStart = i + 1
        }
        i += 1
      }
      guard column > maxColumn else {
        throw CSVError.row(file: file, line: lineNumber, reason: "expected at least \(maxColumn + 1) columns, found \(column)")
      }

      let tsField = UnsafeBufferPointer(rebasing: buffer[starts[layout.timestamp]..<ends[layout.timestamp]])
      let timestamp: Int64?
      if let formatter {
        let text = String(decoding: tsField, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \"\r"))
        timestamp = formatter.date(from: text).map { Int64(($0.timeIntervalSince1970 * 1000).rounded()) }
      } else {
        timestamp = TimestampParser.parse(tsField, unit: layout.epochUnit)
      }
      guard let timestamp else {
        let text = String(decoding: tsField, as: UTF8.self)
        throw CSVError.row(
          file: file, line: lineNumber,
          reason: "timestamp: cannot read '\(text)'; expected ISO-8601 or epoch seconds/ms/µs, or pass --timestamp-format")
      }
      func field(_ index: Int, _ name: String) throws -> Double? {
        try number(buffer, starts[index], ends[index], name: name, file: file, line: lineNumber)
      }
      guard let open = try field(layout.open, "open"), let high = try field(layout.high, "high"),
        let low = try field(layout.low, "low"), let close = try field(layout.close, "close")
      else {
        skipped += 1
        continue
      }
      let volume = try layout.volume.flatMap { try field($0, "volume") } ?? 0
      series.append(timestamp: timestamp, open: open, high: high, low: low, close: close, volume: volume)
    }
    return (Result(series: series, skippedRows: skipped), lineNumber)
  }

  /// A number field; nil when empty, `null` or `NaN` (the row is then skipped).
  @inline(__always)
  static func number(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, name: String, file: String, line: Int) throws -> Double? {
    var s = start
    var e = end
    while s < e, buffer[s] == 32 || buffer[s] == 34 { s += 1 }
    while e > s, buffer[e - 1] == 32 || buffer[e - 1] == 34 { e -= 1 }
    if s == e { return nil }
    if let fast = fastDouble(buffer, s, e) { return fast }
    if e - s == 4, buffer[s] | 0x20 == 110, buffer[s + 1] | 0x20 == 117 { return nil }  // null
    if e - s == 3, buffer[s] | 0x20 == 110, buffer[s + 1] | 0x20 == 97 { return nil }  // nan
    let base = buffer.baseAddress!
    var endPointer: UnsafeMutablePointer<CChar>?
    let value = strtod(UnsafeMutableRawPointer(mutating: base + s).assumingMemoryBound(to: CChar.self), &endPointer)
    guard let endPointer, UnsafeRawPointer(endPointer) - UnsafeRawPointer(base) == e else {
      let text = String(decoding: UnsafeBufferPointer(rebasing: buffer[s..<e]), as: UTF8.self)
      throw CSVError.row(file: file, line: line, reason: "\(name): expected a number, got '\(text)'")
    }
    return value
  }

  static let powersOfTen: [Double] = (0...22).map { exponent in (0..<exponent).reduce(1.0) { value, _ in value * 10 } }

  /// Clinger's fast path: a decimal whose digits fit in 2^53 and whose power of ten is at most
  /// 22 converts exactly with one IEEE multiply or divide. Returns nil for anything else
  /// (strtod then decides), so results are always correctly rounded.
  @inline(__always)
  static func fastDouble(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Double? {
    guard start < end else { return nil }
    var i = start
    var negative = false
    if buffer[i] == 45 {
      negative = true
      i += 1
    } else if buffer[i] == 43 {
      i += 1
    }
    var mantissa: UInt64 = 0
    var digits = 0
    var fractionDigits = 0
    var seenDot = false
    var any = false
    while i < end {
      let b = buffer[i]
      if b >= 48 && b <= 57 {
        any = true
        if mantissa == 0 && b == 48 {
          if seenDot { fractionDigits += 1 }
        } else {
          digits += 1
          if digits > 19 { return nil }
          mantissa = mantissa &* 10 &+ UInt64(b - 48)
          if seenDot { fractionDigits += 1 }
        }
      } else if b == 46 && !seenDot {
        seenDot = true
      } else {
        return nil  // exponent, inf, nan, junk: leave to strtod
      }
      i += 1
    }
    guard any, mantissa <= 1 << 53 else { return nil }
    guard fractionDigits <= 22 else { return nil }
    let value = fractionDigits == 0 ? Double(mantissa) : Double(mantissa) / powersOfTen[fractionDigits]
    return negative ? -value : value
  }
}
