import Foundation
import QtoolCore
import Testing

@testable import QtoolData

func readCSV(_ text: String, _ options: CSVOptions = CSVOptions()) throws -> CSVBarReader.Result {
  // Bytes, not Characters: "\r\n" is one Character.
  let firstLine = String(decoding: text.utf8.prefix { $0 != 10 }, as: UTF8.self)
  let layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: "test.csv")
  return try CSVBarReader.read(Data(text.utf8), layout: layout, file: "test.csv")
}

@Suite struct CSVBarReaderTests {
  @Test func backtestingPyLayoutWithUnnamedDateColumn() throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: SharedData.path("backtesting_py/GOOG.csv")))
    let layout = try CSVBarReader.detect(firstLine: ",Open,High,Low,Close,Volume", options: CSVOptions(), file: "GOOG.csv")
    let result = try CSVBarReader.read(data, layout: layout, file: "GOOG.csv")
    #expect(result.series.count == 2148)
    #expect(result.series.timestamps[0] == UTCCalendar.timestamp(year: 2004, month: 8, day: 19))
    #expect(result.series.open[0] == 100)
    #expect(result.series.close[0] == 100.34)
    #expect(result.series.volume[0] == 22_351_900)
  }

  @Test func headerInAnyCaseAndOrder() throws {
    let result = try readCSV("Volume;CLOSE;low;High;open;Date\n5;2;1;3;1.5;2024-01-02\n")
    #expect(result.series.open == [1.5])
    #expect(result.series.high == [3])
    #expect(result.series.low == [1])
    #expect(result.series.close == [2])
    #expect(result.series.volume == [5])
  }

  @Test func polishStooqHeader() throws {
    let result = try readCSV("Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen\n2022-01-03,177.83,182.88,177.71,182.01,104487900\n")
    #expect(result.series.close == [182.01])
  }

  @Test func headerlessBinanceRowsWithMicroseconds() throws {
    let result = try readCSV(
      "1735689600000000,93576.00000000,95151.15000000,92888.00000000,94591.79000000,10373.32613000,1735775999999999,975444194.1,1516556,5347.7,502914035.6,0\n"
    )
    #expect(result.series.timestamps == [1_735_689_600_000])
    #expect(result.series.close == [94591.79])
  }

  @Test func columnMapping() throws {
    let text = "when,o,h,l,c,adj\n2024-01-02,1,2,0.5,1.5,1.4\n"
    var options = CSVOptions()
    options.columns = ["timestamp": "when", "close": "adj"]
    #expect(try readCSV(text, options).series.close == [1.4])
    options.columns = ["close": "6", "timestamp": "1"]
    #expect(try readCSV(text, options).series.close == [1.4])
  }

  @Test func rowsWithoutPricesAreSkippedAndCounted() throws {
    let result = try readCSV("date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,null,null,null,null,\n2024-01-04,1,2,0.5,,1\n")
    #expect(result.series.count == 1)
    #expect(result.skippedRows == 2)
  }

  /// A file with a volume column never gets a made-up volume: a row whose volume is empty,
  /// `null` or `NaN` is left out and counted, as one without a price is. A file without the
  /// column has volume 0, as documented.
  @Test func rowsWithoutVolumeAreLeftOutNotStoredAsZero() throws {
    let result = try readCSV(
      "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,1.5,\n2024-01-04,1,2,0.5,1.5,null\n2024-01-05,1,2,0.5,1.5,NaN\n2024-01-06,1,2,0.5,1.5,\"\"\n2024-01-07,1,2,0.5,1.5,0\n"
    )
    #expect(result.series.volume == [10, 0], "the stated 0 is kept; the missing ones are not made 0")
    #expect(result.series.timestamps == [UTCCalendar.timestamp(year: 2024, month: 1, day: 2), UTCCalendar.timestamp(year: 2024, month: 1, day: 7)])
    #expect(result.skippedRows == 4)
    let noVolume = try readCSV("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n")
    #expect(noVolume.series.volume == [0])
    #expect(noVolume.skippedRows == 0)
    // Headerless: the sixth column is the volume.
    let headerless = try readCSV("1704153600,1,2,0.5,1.5,7\n1704240000,1,2,0.5,1.5,\n")
    #expect(headerless.series.volume == [7])
    #expect(headerless.skippedRows == 1)
  }

  @Test func customTimestampFormat() throws {
    var options = CSVOptions()
    options.timestampFormat = "dd/MM/yyyy HH:mm"
    let result = try readCSV("date,open,high,low,close\n31/01/2024 09:30,1,2,0.5,1.5\n", options)
    #expect(result.series.timestamps == [UTCCalendar.timestamp(year: 2024, month: 1, day: 31) + 34_200_000])
    #expect(result.series.volume == [0])
  }

  /// A file over 4 MB is parsed in parts side by side: the bars must come out whole and in
  /// order, skipped rows counted once, and an error must name the line in the whole file.
  @Test func largeFilesParsedInPartsReadAsOne() throws {
    let rows = 120_000
    var lines = ["time,open,high,low,close,volume"]
    for i in 0..<rows {
      let price = 100 + Double(i % 977) / 8
      lines.append(
        i == 70_000 ? "\(1_600_000_000 + i * 60),,,,," : "\(1_600_000_000 + i * 60),\(price),\(price + 1),\(price - 1),\(price + 0.25),\(i)")
    }
    let text = lines.joined(separator: "\n") + "\n"
    #expect(text.utf8.count > 4 << 20)
    let result = try readCSV(text)
    #expect(result.skippedRows == 1)
    #expect(result.series.count == rows - 1)
    #expect(zip(result.series.timestamps, result.series.timestamps.dropFirst()).allSatisfy { $0 < $1 })
    #expect(result.series.timestamps.last == Int64(1_600_000_000 + (rows - 1) * 60) * 1000)
    #expect(result.series.volume[80_000] == 80_001)
    var broken = lines
    broken[100_001] = "\(1_600_000_000 + 100_000 * 60),1,2,x,1,1"
    #expect(throws: CSVError.row(file: "test.csv", line: 100_002, reason: "low: expected a number, got 'x'")) {
      try readCSV(broken.joined(separator: "\n"))
    }
  }

  @Test func errorsNameTheFileLineAndColumn() {
    #expect(throws: CSVError.row(file: "test.csv", line: 3, reason: "close: expected a number, got 'abc'")) {
      try readCSV("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,abc\n")
    }
    #expect(throws: CSVError.self) { try readCSV("date,open,high,low,close\nyesterday,1,2,0.5,1.5\n") }
    #expect(
      throws: CSVError.layout(
        file: "test.csv",
        reason: "no column for close in the header (date, open, high, low, shut); name them with --map close=COLUMN")
    ) { try readCSV("date,open,high,low,shut\n2024-01-02,1,2,0.5,1.5\n") }
  }
}

@Suite struct FastDoubleTests {
  func parse(_ text: String) -> Double? {
    var text = text
    return text.withUTF8 { CSVBarReader.fastDouble($0, 0, $0.count) }
  }

  /// Every value the fast path accepts must equal strtod's correctly rounded result.
  @Test func agreesWithStrtodBitForBit() {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<200_000 {
      let integer = UInt64.random(in: 0..<10_000_000, using: &generator)
      let fraction = UInt64.random(in: 0..<100_000_000, using: &generator)
      let places = Int.random(in: 0...8, using: &generator)
      var text = "\(integer)"
      if places > 0 { text += "." + String(String(fraction).prefix(places)) }
      if Bool.random(using: &generator) { text = "-" + text }
      let expected = strtod(text, nil)
      if let fast = parse(text) { #expect(fast.bitPattern == expected.bitPattern, "\(text)") }
    }
    for text in ["43519.34000000", "0.1", "0.0992653", "22351900", "1e5", "nan", "1.2.3", "", "-"] {
      if let fast = parse(text) { #expect(fast == strtod(text, nil), "\(text)") }
    }
    #expect(parse("1e5") == nil)
    #expect(parse("12345678901234567890123") == nil)
  }
}

/// RFC 4180: a quoted field may hold the delimiter and doubled quotes; lines end in LF or
/// CRLF; a BOM may lead. What cannot be read is refused with its line and column.
@Suite struct QuotedCSVTests {
  @Test func quotedFieldsHoldDelimitersQuotesAndGroupedThousands() throws {
    let text =
      "\u{FEFF}\"Date\",\"Name, full\",\"Open\",\"High\",\"Low\",\"Close\",\"Volume\"\r\n"
      + "2024-01-02,\"Acme, Inc.\",1,2,0.5,1.5,10\r\n"
      + "2024-01-03,\"He said \"\"hi, there\"\"\",\"1,234.50\",\"1,300\",\"1,200.25\",\"1,250\",\"12,345,678\"\r\n"
      + "2024-01-04, \"spaced\" ,1,2,0.5,1.5,\"7\"\r\n"
    let result = try readCSV(text)
    #expect(result.series.timestamps == [2, 3, 4].map { UTCCalendar.timestamp(year: 2024, month: 1, day: $0) })
    #expect(result.series.open == [1, 1234.5, 1])
    #expect(result.series.high == [2, 1300, 2])
    #expect(result.series.low == [0.5, 1200.25, 0.5])
    #expect(result.series.close == [1.5, 1250, 1.5])
    #expect(result.series.volume == [10, 12_345_678, 7])
  }

  @Test func quotedTimestampsMayHoldTheDelimiter() throws {
    var options = CSVOptions()
    options.timestampFormat = "MMM d, yyyy"
    let result = try readCSV("Date,Price,Open,High,Low\n\"Jan 2, 2024\",\"1,501.5\",\"1,490\",\"1,510\",\"1,480\"\n", options)
    #expect(result.series.timestamps == [UTCCalendar.timestamp(year: 2024, month: 1, day: 2)])
    #expect(result.series.close == [1501.5])
    #expect(result.series.open == [1490])
  }

  /// A quote in a column after the last one read never reaches the splitter.
  @Test func quotesInColumnsNotReadAreLeftAlone() throws {
    let result = try readCSV("date,open,high,low,close,volume,note\n2024-01-02,1,2,0.5,1.5,10,\"a, \"\"b\"\n")
    #expect(result.series.close == [1.5])
  }

  @Test func unreadableQuotesAreRefusedWithLineAndColumn() {
    let header = "date,name,open,high,low,close\n2024-01-01,x,1,2,0.5,1.5\n"
    #expect(
      throws: CSVError.cell(
        file: "test.csv", line: 3, column: 12, reason: "the quoted field opened here is not closed on this line (a quoted field cannot span lines)")
    ) { try readCSV(header + "2024-01-02,\"Acme, Inc.,1,2,0.5,1.5\n") }
    #expect(
      throws: CSVError.cell(
        file: "test.csv", line: 3, column: 20, reason: "unexpected 'x' after the closing quote; inside a quoted field, write a quote as two (\"\")")
    ) { try readCSV(header + "2024-01-02,\"Zürich\"x,1,2,0.5,1.5\n") }
    #expect("\(CSVError.cell(file: "a.csv", line: 3, column: 12, reason: "r"))" == "a.csv:3:12: r")
  }

  /// Where commas are not the delimiter they may be decimal commas: refused, never guessed.
  @Test func commasInNumbersOfOtherDelimitersAreRefused() {
    #expect(
      throws: CSVError.row(
        file: "test.csv", line: 2,
        reason: "open: expected a number, got '1,500' (write decimals with a point; thousands may be grouped only as in \"1,234.50\")")
    ) { try readCSV("date;open;high;low;close\n2024-01-02;\"1,500\";2;0.5;1.5\n") }
    #expect(throws: CSVError.self) { try readCSV("date,open,high,low,close\n2024-01-02,\"1,5\",2,0.5,1.5\n") }
    #expect(throws: CSVError.self) { try readCSV("date,open,high,low,close\n2024-01-02,\"12,34.5\",2,0.5,1.5\n") }
  }

  /// The quoted path gives what the plain path gives, across the pieces parsed side by side.
  @Test func quotedFileInPiecesReadsAsThePlainOne() throws {
    var plain = ["time,open,high,low,close,volume"]
    var quoted = ["\"time\",\"open\",\"high\",\"low\",\"close\",\"volume\""]
    for i in 0..<200_000 {
      let price = 1000 + Double(i % 977) / 8
      plain.append("\(1_600_000_000 + i * 60),\(price),\(price + 1),\(price - 1),\(price + 0.25),\(i)")
      quoted.append(
        i % 3 == 0
          ? "\"\(1_600_000_000 + i * 60)\",\"\(price)\",\(price + 1),\"\(price - 1)\",\(price + 0.25),\"\(i)\""
          : plain[plain.count - 1])
    }
    let quotedText = quoted.joined(separator: "\r\n")
    #expect(quotedText.utf8.count > 2 * (4 << 20), "three pieces")
    #expect(try readCSV(quotedText).series == (try readCSV(plain.joined(separator: "\n"))).series)
  }
}

@Suite struct CSVLimitTests {
  @Test func timestampsOutsideTheSaneRangeAreRefusedByLine() throws {
    let rows = "date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n"
    #expect(
      throws: CSVError.row(
        file: "test.csv", line: 3,
        reason:
          "timestamp '2250-01-01' is outside the range 1970-01-01 to 2200-01-01; check the timestamp column (--map timestamp=COLUMN) and its unit (--timestamp-unit)"
      )
    ) { try readCSV(rows + "2250-01-01,1,2,0.5,1.5\n") }
    #expect(throws: CSVError.self) { try readCSV(rows + "1969-12-31T23:59:59Z,1,2,0.5,1.5\n") }
    do {
      _ = try readCSV("time,open,high,low,close\n8000000000,1,2,0.5,1.5\n")
      Issue.record("a time in 2223 should be refused")
    } catch let CSVError.row(_, line, reason) {
      #expect(line == 2)
      #expect(reason.hasPrefix("timestamp '8000000000' (read as 2223-07-"))
    }
    var microseconds = CSVOptions()
    microseconds.epochUnit = .seconds
    #expect(throws: CSVError.self) { try readCSV("time,open,high,low,close\n1735689600000000,1,2,0.5,1.5\n", microseconds) }
    var anyTime = CSVOptions()
    anyTime.timestampRange = nil
    #expect(try readCSV(rows + "1960-01-04,1,2,0.5,1.5\n", anyTime).series.count == 2)
    #expect(try readCSV("date,open,high,low,close\n2199-12-31,1,2,0.5,1.5\n").series.count == 1)
  }

  @Test func aLineLongerThanTheLimitIsRefusedByLine() throws {
    let long = "2024-01-03,1,2,0.5,1.5," + String(repeating: "x", count: 70_000)
    let reason = "the line is longer than 64 KiB; this does not look like a CSV file of bars (is it the right file, or damaged?)"
    #expect(throws: CSVError.row(file: "test.csv", line: 3, reason: reason)) {
      try readCSV("date,open,high,low,close,note\n2024-01-02,1,2,0.5,1.5,a\n\(long)\n")
    }
    var options = CSVOptions()
    options.maxLineLength = 100_000
    #expect(try readCSV("date,open,high,low,close,note\n2024-01-02,1,2,0.5,1.5,a\n\(long)\n", options).series.count == 2)
  }

  /// A stream of bytes with no line end (a bomb of zeros) stops after one piece, not at the
  /// end of the stream, and names the line.
  @Test func endlessLineStopsTheStreamEarly() throws {
    let stream = CSVStream(options: CSVOptions(), file: "zeros")
    let head = Array("time,open,high,low,close\n1600000000,1,2,0.5,1.5\n".utf8)
    try head.withUnsafeBytes { try stream.append($0) }
    let zeros = [UInt8](repeating: 0, count: 1 << 20)
    var appended = 0
    do {
      for _ in 0..<1024 {
        try zeros.withUnsafeBytes { try stream.append($0) }
        appended += 1
      }
      Issue.record("a GiB without a line end was accepted")
    } catch {
      #expect(
        error as? CSVError
          == .row(
            file: "zeros", line: 3,
            reason: "the line is longer than 64 KiB; this does not look like a CSV file of bars (is it the right file, or damaged?)"))
      #expect(appended <= 4, "stopped after a piece")
    }
  }

  /// The first bad line stops appending: the rest of a large stream is not read.
  @Test func firstErrorStopsTheStream() throws {
    let stream = CSVStream(options: CSVOptions(), file: "bad")
    let head = Array("time,open,high,low,close\n1600000000,1,2,x,1.5\n".utf8)
    try head.withUnsafeBytes { try stream.append($0) }
    let block = Array(String(repeating: "1600000000,1,2,0.5,1.5\n", count: 1 << 16).utf8)  // 1.5 MB
    var appended = 0
    do {
      for _ in 0..<700 {
        try block.withUnsafeBytes { try stream.append($0) }
        appended += 1
      }
      Issue.record("a GiB after a bad line was read on")
    } catch {
      #expect(error as? CSVError == .row(file: "bad", line: 2, reason: "low: expected a number, got 'x'"))
      #expect(appended < 100, "stopped within a few pieces, not after \(appended)")
    }
  }
}
