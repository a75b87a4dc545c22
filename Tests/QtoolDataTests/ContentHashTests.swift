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

  /// A shard's results fingerprint: the same for the same records, different for any one
  /// character changed anywhere, and for text moved across a field or record boundary.
  @Test func fingerprintChangesWithAnyCharacterAndBoundary() {
    let metrics = #"{"sharpe":1.2345678901234567,"total_return":0.5,"trades":33}"#
    let records = [["0", #"{"fast":5}"#, metrics, "4607182418800017408"], ["1", #"{"fast":10}"#, metrics, "-"]]
    let original = ContentHash.fingerprint(records: records)
    #expect(ContentHash.fingerprint(records: records) == original)
    #expect(original.hasPrefix("fp64:") && original.count == 21)
    var seen: Set<String> = [original]
    for (r, record) in records.enumerated() {
      for (f, field) in record.enumerated() {
        for (c, character) in field.enumerated() {
          var edited = records
          var chars = Array(field)
          chars[c] = character == "9" ? "8" : "9"
          edited[r][f] = String(chars)
          seen.insert(ContentHash.fingerprint(records: edited))
        }
      }
    }
    let edits = records.flatMap { $0.map(\.count) }.reduce(0, +)
    #expect(seen.count == edits + 1, "every one-character edit gives its own fingerprint")
    #expect(ContentHash.fingerprint(records: [["ab", "c"]]) != ContentHash.fingerprint(records: [["a", "bc"]]))
    #expect(ContentHash.fingerprint(records: [["a"], ["b"]]) != ContentHash.fingerprint(records: [["a", "b"]]))
    #expect(ContentHash.fingerprint(records: [["a"]]) != ContentHash.fingerprint(records: [["a"], []]))
  }
}
