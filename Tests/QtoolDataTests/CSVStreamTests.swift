import Foundation
import QtoolCore
import Testing

@testable import QtoolData

/// An archive's text arrives in blocks and is parsed 4 MB at a time while it unpacks: the
/// result must be what parsing the whole text at once gives.
@Suite struct CSVStreamTests {
  static func text(rows: Int, broken: Int? = nil) -> String {
    var lines = ["time,open,high,low,close,volume"]
    for i in 0..<rows {
      let price = 100 + Double(i % 977) / 8
      lines.append(
        i == broken ? "\(1_600_000_000 + i * 60),1,2,x,1,1" : "\(1_600_000_000 + i * 60),\(price),\(price + 1),\(price - 1),\(price + 0.25),\(i)")
    }
    return lines.joined(separator: "\n")
  }

  func streamed(_ text: String, block: Int) throws -> CSVBarReader.Result {
    let stream = CSVStream(options: CSVOptions(), file: "test.csv")
    let bytes = Array(text.utf8)
    for start in stride(from: 0, to: bytes.count, by: block) {
      try bytes[start..<min(start + block, bytes.count)].withUnsafeBytes { try stream.append($0) }
    }
    return try stream.finish()
  }

  @Test func blocksOfAnySizeGiveTheWholeTextsBars() throws {
    let text = Self.text(rows: 250_000)
    #expect(text.utf8.count > 2 * (4 << 20), "three pieces")
    let whole = try readCSV(text)
    for block in [65_536, 1_000_003] {
      let result = try streamed(text, block: block)
      #expect(result.series == whole.series, "blocks of \(block)")
    }
  }

  @Test func anErrorNamesTheLineInTheWholeText() {
    #expect(throws: CSVError.row(file: "test.csv", line: 200_002, reason: "low: expected a number, got 'x'")) {
      try streamed(Self.text(rows: 250_000, broken: 200_000), block: 65_536)
    }
  }

  @Test func nothingAtAllIsAnEmptyFile() {
    #expect(throws: CSVError.empty(file: "test.csv")) { try CSVStream(options: CSVOptions(), file: "test.csv").finish() }
  }
}
