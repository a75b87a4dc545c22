import Foundation
import QtoolCore
import Testing

@testable import QtoolData

@Suite struct ContentHashTests {
  @Test func sha256MatchesTheRecordedChecksumFile() throws {
    let zip = SharedData.monthlyKlines("2025-01")
    let recorded = try String(contentsOfFile: zip + ".CHECKSUM", encoding: .utf8).split(separator: " ").first.map(String.init)
    #expect(ContentHash.sha256Hex(try Data(contentsOf: URL(fileURLWithPath: zip))) == recorded)
  }

  @Test func barHashChangesWithAnyValue() {
    let a = BarSeries(timestamps: [1, 2], open: [1, 2], high: [1, 2], low: [1, 2], close: [1, 2], volume: [1, 2])
    var b = a
    #expect(ContentHash.of(a) == ContentHash.of(b))
    b.volume[1] = 2.0000001
    #expect(ContentHash.of(a) != ContentHash.of(b))
  }
}
