import Foundation
import QtoolCore
import Testing

@testable import QtoolData

func readCSV(_ text: String, _ options: CSVOptions = CSVOptions()) throws -> CSVBarReader.Result {
  let firstLine = String(text.prefix { $0 != "\n" })
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
