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
  /// Longer lines are refused (a file that is not CSV, or a decompression bomb).
  public var maxLineLength = CSVOptions.defaultMaxLineLength
  /// Timestamps outside are refused: they are a wrong column or a wrong unit, not history.
  public var timestampRange: Range<Int64>? = CSVOptions.defaultTimestampRange
}

/// Options a user gives when the guess is not enough (`--map`, `--no-header`, …).
public struct CSVOptions: Sendable, Equatable {
  /// Field name → column header (or 1-based column number), e.g. `close` → `Adj Close`.
  public var columns: [String: String] = [:]
  public var hasHeader: Bool?
  public var delimiter: UInt8?
  public var epochUnit: TimestampParser.EpochUnit?
  public var timestampFormat: String?
  /// The longest line read, in bytes (at most 4 MiB); a longer one is an error naming its line.
  public var maxLineLength = CSVOptions.defaultMaxLineLength
  /// Timestamps a bar may have (epoch ms); nil for any.
  public var timestampRange: Range<Int64>? = CSVOptions.defaultTimestampRange
  public init() {}

  public static let defaultMaxLineLength = 64 << 10
  /// 1970-01-01 ..< 2200-01-01.
  public static let defaultTimestampRange: Range<Int64> = 0..<UTCCalendar.timestamp(year: 2200, month: 1, day: 1)
}

public enum CSVError: QtoolError, Equatable {
  case layout(file: String, reason: String)
  case row(file: String, line: Int, reason: String)
  /// A spot within a line, e.g. an unclosed quote; `column` counts characters from 1.
  case cell(file: String, line: Int, column: Int, reason: String)
  case empty(file: String)

  public var category: ErrorCategory { .invalidInput }

  public var code: String {
    switch self {
    case .layout: return "csv_layout"
    case .row: return "csv_row"
    case .cell: return "csv_cell"
    case .empty: return "csv_empty"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .layout(let file, _), .empty(let file): return ["file": .string(file)]
    case .row(let file, let line, _): return ["file": .string(file), "line": JSONValue(line)]
    case .cell(let file, let line, let column, _): return ["file": .string(file), "line": JSONValue(line), "column": JSONValue(column)]
    }
  }

  public var message: String {
    switch self {
    case .layout(let file, let reason): return "\(file): \(reason)"
    case .row(let file, let line, let reason): return "\(file):\(line): \(reason)"
    case .cell(let file, let line, let column, let reason): return "\(file):\(line):\(column): \(reason)"
    case .empty(let file) where file == "standard input": return "standard input was empty or had only a header: no bars to import"
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
    let firstLine = firstLine.hasPrefix("\u{FEFF}") ? String(firstLine.dropFirst()) : firstLine
    let delimiter = options.delimiter ?? guessDelimiter(firstLine)
    let fields = splitLine(firstLine, delimiter: delimiter).map {
      $0.trimmingCharacters(in: CharacterSet(charactersIn: " \"\r\u{FEFF}")).lowercased()
    }
    let looksNumeric = fields.filter { !$0.isEmpty && (Double($0) != nil || TimestampParser.parse($0) != nil) }.count
    let hasHeader = options.hasHeader ?? (looksNumeric < max(1, fields.count - 1))
    var layout = CSVLayout(hasHeader: hasHeader, timestamp: 0, open: 1, high: 2, low: 3, close: 4, volume: fields.count > 5 ? 5 : nil)
    layout.delimiter = delimiter
    layout.epochUnit = options.epochUnit
    layout.timestampFormat = options.timestampFormat
    layout.maxLineLength = min(max(options.maxLineLength, 64), CSVStream.pieceSize)
    layout.timestampRange = options.timestampRange

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

  /// The most frequent of , ; tab | outside quotes.
  static func guessDelimiter(_ line: String) -> UInt8 {
    var inQuotes = false
    var outside: [UInt8] = []
    for byte in line.utf8 {
      if byte == 34 { inQuotes.toggle() } else if !inQuotes { outside.append(byte) }
    }
    let counts: [(UInt8, Int)] = [UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "\t"), UInt8(ascii: "|")].map { candidate in
      (candidate, outside.filter { $0 == candidate }.count)
    }
    return counts.max { $0.1 < $1.1 }.flatMap { $0.1 > 0 ? $0.0 : nil } ?? UInt8(ascii: ",")
  }

  /// The fields of one line as RFC 4180 reads them: a field in double quotes may hold the
  /// delimiter, and `""` inside it is one quote. Lenient, for a header: an unclosed quote runs
  /// to the end of the line.
  static func splitLine(_ line: String, delimiter: UInt8) -> [String] {
    var fields: [String] = []
    var field: [UInt8] = []
    var inQuotes = false
    let bytes = Array(line.utf8)
    var i = 0
    while i < bytes.count {
      let byte = bytes[i]
      if inQuotes {
        if byte == 34 {
          if i + 1 < bytes.count, bytes[i + 1] == 34 {
            field.append(34)
            i += 1
          } else {
            inQuotes = false
          }
        } else {
          field.append(byte)
        }
      } else if byte == 34, field.allSatisfy({ $0 == 32 }) {
        field = []
        inQuotes = true
      } else if byte == delimiter {
        fields.append(String(decoding: field, as: UTF8.self))
        field = []
      } else {
        field.append(byte)
      }
      i += 1
    }
    fields.append(String(decoding: field, as: UTF8.self))
    return fields
  }

  /// The result of reading one file.
  public struct Result: Sendable {
    public var series: BarSeries
    /// Rows left out because a price, or the volume of a file with a volume column, was
    /// empty, `null` or `NaN`.
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
  ///
  /// A line is split at the delimiter in one scan; only a line where a field read starts with a
  /// double quote takes the RFC 4180 path (`splitQuoted`), so plain files cost one more look
  /// per field.
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
    let maxLineLength = layout.maxLineLength
    let (earliest, latest) = layout.timestampRange.map { ($0.lowerBound, $0.upperBound) } ?? (Int64.min, Int64.max)
    let maxColumn = max(layout.timestamp, layout.open, layout.high, layout.low, layout.close, layout.volume ?? 0)
    // Pointers, not arrays: captured by `field` below, arrays would be boxed and every access
    // checked for exclusivity at run time.
    let starts = UnsafeMutableBufferPointer<Int>.allocate(capacity: maxColumn + 2)
    let ends = UnsafeMutableBufferPointer<Int>.allocate(capacity: maxColumn + 2)
    starts.initialize(repeating: 0)
    ends.initialize(repeating: 0)
    // The unquoted fields of a line with quotes, each followed by a NUL for strtod.
    var unquoted = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 0)
    defer {
      starts.deallocate()
      ends.deallocate()
      unquoted.deallocate()
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
      guard lineEnd - position <= maxLineLength else {
        throw CSVError.row(file: file, line: lineNumber, reason: lineTooLong(maxLineLength))
      }
      if lineNumber == 1, startsFile, layout.hasHeader { continue }
      var contentEnd = lineEnd
      if contentEnd > position, buffer[contentEnd - 1] == 13 { contentEnd -= 1 }
      if contentEnd == position { continue }

      // Split the fields we need.
      var column = 0
      var fieldStart = position
      var i = position
      // Quotes matter only at the start of a field (after spaces): one look per field, not per byte.
      var quoted = opensQuote(buffer, position, contentEnd)
      while !quoted, i <= contentEnd, column <= maxColumn {
        if i == contentEnd || buffer[i] == delimiter {
          starts[column] = fieldStart
          ends[column] = i
          column += 1
          fieldStart = i + 1
          if column <= maxColumn, i < contentEnd, opensQuote(buffer, fieldStart, contentEnd) { quoted = true }
        }
        i += 1
      }
      if quoted {
        let needed = contentEnd - position + maxColumn + 2
        if unquoted.count < needed {
          unquoted.deallocate()
          unquoted = .allocate(capacity: max(needed, 256))
        }
        column = try splitQuoted(
          buffer, position..<contentEnd, delimiter: delimiter, columns: maxColumn + 1, into: unquoted, starts: starts, ends: ends, file: file,
          line: lineNumber)
      }
      let fields = quoted ? UnsafeBufferPointer(unquoted) : buffer
      guard column > maxColumn else {
        throw CSVError.row(file: file, line: lineNumber, reason: "expected at least \(maxColumn + 1) columns, found \(column)")
      }

      let tsField = UnsafeBufferPointer(rebasing: fields[starts[layout.timestamp]..<ends[layout.timestamp]])
      let timestamp: Int64?
      if let formatter {
        let text = String(decoding: tsField, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \"\r"))
        timestamp = formatter.date(from: text).flatMap { date in
          let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
          return abs(milliseconds) < 9e18 ? Int64(milliseconds) : nil
        }
      } else {
        timestamp = TimestampParser.parse(tsField, unit: layout.epochUnit)
      }
      guard let timestamp else {
        let text = String(decoding: tsField, as: UTF8.self)
        throw CSVError.row(
          file: file, line: lineNumber,
          reason: "timestamp: cannot read '\(text)'; expected ISO-8601 or epoch seconds/ms/µs, or pass --timestamp-format")
      }
      guard timestamp >= earliest, timestamp < latest else {
        throw CSVError.row(file: file, line: lineNumber, reason: outOfRange(tsField, timestamp, layout.timestampRange!))
      }
      // Called directly, not through a local closure: the closure was not inlined, and a var
      // it captured was boxed and checked for exclusivity on every access.
      let grouped = quoted && delimiter == 44
      guard
        let open = try number(fields, starts[layout.open], ends[layout.open], name: "open", file: file, line: lineNumber, grouped: grouped),
        let high = try number(fields, starts[layout.high], ends[layout.high], name: "high", file: file, line: lineNumber, grouped: grouped),
        let low = try number(fields, starts[layout.low], ends[layout.low], name: "low", file: file, line: lineNumber, grouped: grouped),
        let close = try number(fields, starts[layout.close], ends[layout.close], name: "close", file: file, line: lineNumber, grouped: grouped)
      else {
        skipped += 1
        continue
      }
      // A file without a volume column has none (0); one with it never gets a made-up 0: a
      // row whose volume is missing is left out and counted, as one without a price is.
      var volume = 0.0
      if let column = layout.volume {
        guard let read = try number(fields, starts[column], ends[column], name: "volume", file: file, line: lineNumber, grouped: grouped) else {
          skipped += 1
          continue
        }
        volume = read
      }
      series.append(timestamp: timestamp, open: open, high: high, low: low, close: close, volume: volume)
    }
    return (Result(series: series, skippedRows: skipped), lineNumber)
  }

  /// Whether the field starting at `start` is quoted: a double quote, after spaces if any.
  @inline(__always)
  static func opensQuote(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
    guard start < end else { return false }
    let first = buffer[start]
    if first == 34 { return true }
    return first == 32 && quoteAfterSpaces(buffer, start, end)
  }

  @inline(never)
  static func quoteAfterSpaces(_ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
    var i = start
    while i < end, buffer[i] == 32 { i += 1 }
    return i < end && buffer[i] == 34
  }

  static func lineTooLong(_ limit: Int) -> String {
    "the line is longer than \(limit >> 10) KiB; this does not look like a CSV file of bars (is it the right file, or damaged?)"
  }

  static func outOfRange(_ field: UnsafeBufferPointer<UInt8>, _ timestamp: Int64, _ range: Range<Int64>) -> String {
    let text = String(decoding: field, as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \"\r"))
    let bounds = "\(UTCCalendar.format(range.lowerBound)) to \(UTCCalendar.format(range.upperBound))"
    // Years 0 to 9999 can be shown as dates.
    let date = (-62_167_219_200_000..<253_402_300_800_000).contains(timestamp) ? UTCCalendar.format(timestamp) : nil
    let shown = date.map { $0 == text ? "" : " (read as \($0))" } ?? ""
    return
      "timestamp '\(text)'\(shown) is outside the range \(bounds); check the timestamp column (--map timestamp=COLUMN) and its unit (--timestamp-unit)"
  }

  /// Splits the line in `line` as RFC 4180 reads it, writing each of the first `columns`
  /// fields unquoted into `output` (then a NUL), its bounds into `starts`/`ends`. Returns how
  /// many fields were found (at most `columns`). A quote opens a quoted field only at its start
  /// (after spaces); elsewhere it is an ordinary character. Quoted fields may not span lines.
  static func splitQuoted(
    _ buffer: UnsafeBufferPointer<UInt8>, _ line: Range<Int>, delimiter: UInt8, columns: Int, into output: UnsafeMutableBufferPointer<UInt8>,
    starts: UnsafeMutableBufferPointer<Int>, ends: UnsafeMutableBufferPointer<Int>, file: String, line number: Int
  ) throws -> Int {
    func column(_ offset: Int) -> Int {
      // Characters, not bytes: UTF-8 continuation bytes do not start one.
      var characters = 1
      for i in line.lowerBound..<offset where buffer[i] & 0xC0 != 0x80 { characters += 1 }
      return characters
    }
    let end = line.upperBound
    var found = 0
    var out = 0
    var i = line.lowerBound
    while found < columns {
      starts[found] = out
      var j = i
      while j < end, buffer[j] == 32 { j += 1 }
      if j < end, buffer[j] == 34 {
        let opening = j
        j += 1
        var closed = false
        while j < end {
          if buffer[j] == 34 {
            if j + 1 < end, buffer[j + 1] == 34 {
              output[out] = 34
              out += 1
              j += 2
              continue
            }
            closed = true
            j += 1
            break
          }
          output[out] = buffer[j]
          out += 1
          j += 1
        }
        guard closed else {
          throw CSVError.cell(
            file: file, line: number, column: column(opening),
            reason: "the quoted field opened here is not closed on this line (a quoted field cannot span lines)")
        }
        while j < end, buffer[j] == 32 { j += 1 }
        if j < end, buffer[j] != delimiter {
          let character = String(decoding: UnsafeBufferPointer(rebasing: buffer[j..<min(j + 1, end)]), as: UTF8.self)
          throw CSVError.cell(
            file: file, line: number, column: column(j),
            reason: "unexpected '\(character)' after the closing quote; inside a quoted field, write a quote as two (\"\")")
        }
      } else {
        j = i
        while j < end, buffer[j] != delimiter {
          output[out] = buffer[j]
          out += 1
          j += 1
        }
      }
      ends[found] = out
      output[out] = 0
      out += 1
      found += 1
      guard j < end else { break }
      i = j + 1
    }
    return found
  }

  /// A number field; nil when empty, `null` or `NaN` (the row is then left out and counted).
  /// `grouped`: the field may group thousands with commas (`1,234.50`), as it can only be
  /// when quoted in a comma-separated file.
  @inline(__always)
  static func number(
    _ buffer: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, name: String, file: String, line: Int, grouped: Bool = false
  ) throws -> Double? {
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
      return try notPlainNumber(UnsafeBufferPointer(rebasing: buffer[s..<e]), name: name, file: file, line: line, grouped: grouped)
    }
    return value
  }

  /// A field strtod did not read whole: grouped thousands where allowed, else the error. Out of
  /// line, so `number` stays small enough to inline into the parse loop.
  @inline(never)
  static func notPlainNumber(_ field: UnsafeBufferPointer<UInt8>, name: String, file: String, line: Int, grouped: Bool) throws -> Double {
    if grouped, let value = groupedDouble(field) { return value }
    let text = String(decoding: field, as: UTF8.self)
    let hint = text.contains(",") ? " (write decimals with a point; thousands may be grouped only as in \"1,234.50\")" : ""
    throw CSVError.row(file: file, line: line, reason: "\(name): expected a number, got '\(text)'\(hint)")
  }

  /// `1,234,567.89`: digits grouped by three with commas, then an optional fraction. Nil for
  /// anything else (`1,5` could be a decimal comma).
  static func groupedDouble(_ field: UnsafeBufferPointer<UInt8>) -> Double? {
    var digits: [UInt8] = []
    var i = 0
    if i < field.count, field[i] == 45 || field[i] == 43 {
      digits.append(field[i])
      i += 1
    }
    var group = 0
    var groups = 0
    while i < field.count, field[i] != 46 {
      let b = field[i]
      if b == 44 {
        // The first group has 1 to 3 digits, every later one 3.
        guard groups == 0 ? (1...3).contains(group) : group == 3 else { return nil }
        groups += 1
        group = 0
      } else if b >= 48, b <= 57 {
        digits.append(b)
        group += 1
        guard groups == 0 || group <= 3 else { return nil }
      } else {
        return nil
      }
      i += 1
    }
    guard groups > 0, group == 3 else { return nil }
    if i < field.count {
      digits.append(46)
      i += 1
      guard i < field.count else { return nil }
      while i < field.count {
        guard field[i] >= 48, field[i] <= 57 else { return nil }
        digits.append(field[i])
        i += 1
      }
    }
    digits.append(0)
    return digits.withUnsafeBufferPointer { strtod(UnsafeRawPointer($0.baseAddress!).assumingMemoryBound(to: CChar.self), nil) }
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
