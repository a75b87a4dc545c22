import Foundation
import Testing

/// Every input saved under Tests/Fuzz/Regressions/<target>/ — what `make fuzz` found, and the
/// inputs of the issues it was written for — goes through the fuzz target's entry point
/// again: refused or read, but no trap, no hang, no broken invariant.
@Suite struct FuzzRegressionTests {
  static let root = QtoolProcess.packageRoot.appendingPathComponent("Tests/Fuzz/Regressions")

  @Test(arguments: FuzzTargets.names) func replay(target: String) throws {
    let directory = Self.root.appendingPathComponent(target)
    let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { !$0.hasPrefix(".") }.sorted()
    #expect(!files.isEmpty, "no regression inputs for \(target)")
    for file in files {
      let started = Date()
      FuzzTargets.run(target, try Data(contentsOf: directory.appendingPathComponent(file)))
      #expect(Date().timeIntervalSince(started) < 10, "\(target)/\(file) took \(Date().timeIntervalSince(started)) s")
    }
  }
}
