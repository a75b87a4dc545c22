import Foundation
import Testing

/// Compares text with a committed snapshot under Tests/QtoolCLITests/Snapshots. With
/// RECORD_SNAPSHOTS=1 the snapshot is rewritten instead (then review the diff and commit it).
func assertSnapshot(_ text: String, named name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
  let url = QtoolProcess.packageRoot.appendingPathComponent("Tests/QtoolCLITests/Snapshots/\(name)")
  if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1" {
    try text.write(to: url, atomically: true, encoding: .utf8)
    return
  }
  guard let expected = try? String(contentsOf: url, encoding: .utf8) else {
    Issue.record("snapshot \(name) is missing; run with RECORD_SNAPSHOTS=1 to record it", sourceLocation: sourceLocation)
    return
  }
  #expect(
    text == expected, "\(name) differs from its snapshot; if the change is intended, re-record with RECORD_SNAPSHOTS=1",
    sourceLocation: sourceLocation)
}
