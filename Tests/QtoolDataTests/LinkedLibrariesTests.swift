import Testing

@testable import QtoolData

@Suite struct LinkedLibrariesTests {
  @Test func versionsAreDottedNumbers() {
    for version in [LinkedLibraries.curlVersion, LinkedLibraries.archiveVersion] {
      let parts = version.split(separator: ".")
      #expect(parts.count == 3, "\(version)")
      #expect(parts.allSatisfy { Int($0) != nil }, "\(version)")
    }
  }
}
