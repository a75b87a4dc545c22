import Foundation
import Testing

/// Every write to stdout and to files is checked: a full disk is an error with its own exit
/// code, never a success with nothing written; files are replaced only when asked.
@Suite struct OutputWriteTests {
  static let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path

  @Test func aFullDiskOnStdoutIsAnError() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let full = try qtool.shell("\"$QTOOL\" data export GOOG-1d > /dev/full")
    #expect(full.status == 74)
    #expect(full.stderr == "qtool: error: cannot write to standard output: No space left on device\n")
    let list = try qtool.shell("\"$QTOOL\" data list > /dev/full")
    #expect(list.status == 74)
    // A reader that stops early is not an error.
    let head = try qtool.shell("set -o pipefail; \"$QTOOL\" data export GOOG-1d | head -n 3")
    #expect(head.status == 0)
    #expect(head.stdout.split(separator: "\n").count == 3)
    #expect(head.stderr.isEmpty)
  }

  @Test func unwritableFilesAreAPlainSentence() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let missing = qtool.home.appendingPathComponent("no/such/dir/out.csv").path
    let result = try qtool.run(["data", "export", "GOOG-1d", "-o", missing])
    #expect(result.status == 73)
    #expect(result.stderr.hasPrefix("qtool: error: cannot write \(missing): No such file or directory\n"), "\(result.stderr)")
    #expect(!result.stderr.contains("NSCocoaErrorDomain"))

  }

  @Test func reportsAndExportsAreReplacedOnlyWhenAsked() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try qtool.run(["data", "import", Self.goog, "-s", "GOOG", "-t", "1d"]).status == 0)
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    #expect(try qtool.run(["strategy", "new", "s", "--symbol", "GOOG", "-o", spec]).status == 0)
    let report = qtool.home.appendingPathComponent("r.html").path
    try "keep me".write(toFile: report, atomically: true, encoding: .utf8)
    let refused = try qtool.run(["backtest", "run", spec, "--report", report])
    #expect(refused.status == 73)
    #expect(refused.stderr.contains("\(report) exists; replace it with --force"))
    #expect(try String(contentsOfFile: report, encoding: .utf8) == "keep me")
    #expect(try qtool.run(["backtest", "run", spec, "--report", report, "--force"]).status == 0)
    #expect(try String(contentsOfFile: report, encoding: .utf8).contains("<html"))

    let directory = qtool.home.appendingPathComponent("bundle").path
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory]).status == 0)
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory]).status == 73, "the bundle is there")
    #expect(try qtool.run(["backtest", "run", spec, "--export", directory, "-f"]).status == 0)
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: qtool.home.path).filter { $0.contains("partial") }
    #expect(leftovers.isEmpty)
  }
}
