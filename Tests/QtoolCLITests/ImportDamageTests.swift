import Foundation
import Testing

/// `data import` of files that are quoted, damaged, oversized or out of range: the right
/// bars, or exit 65 with where and why, and nothing stored.
@Suite struct ImportDamageTests {
  func write(_ text: String, _ name: String, in qtool: QtoolProcess) throws -> String {
    let path = qtool.home.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func shell(_ script: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(script)")
  }

  /// The store holds no dataset and no bar.
  func expectEmptyStore(_ qtool: QtoolProcess, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try qtool.run(["data", "list", "--json"]).stdout == "[\n\n]\n", sourceLocation: sourceLocation)
    #expect(try qtool.run(["db", "info", "--json"]).stdout.contains("\"bars\" : 0"), sourceLocation: sourceLocation)
  }

  @Test func quotedFieldsImportIntoTheRightColumns() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write(
      "\u{FEFF}\"Date\",\"Name\",\"Open\",\"High\",\"Low\",\"Close\",\"Volume\"\r\n"
        + "2024-01-02,\"Acme, Inc.\",\"1,234.50\",\"1,240\",\"1,230.25\",\"1,239\",\"12,000\"\r\n"
        + "2024-01-03,\"The \"\"Best\"\", Co.\",1239,1250,1238,1249.5,9000\r\n", "quoted.csv", in: qtool)
    let imported = try qtool.run(["data", "import", file, "-s", "ACME", "-t", "1d"])
    #expect(imported.status == 0, "\(imported.stderr)")
    let export = try qtool.run(["data", "export", "ACME-1d"])
    #expect(
      export.stdout
        == "timestamp,open,high,low,close,volume\n2024-01-02T00:00:00Z,1234.5,1240.0,1230.25,1239.0,12000.0\n2024-01-03T00:00:00Z,1239.0,1250.0,1238.0,1249.5,9000.0\n"
    )
  }

  @Test func unclosedQuoteIsRefusedWithLineAndColumn() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write("date,name,open,high,low,close\n2024-01-02,x,1,2,0.5,1.5\n2024-01-03,\"Acme, Inc.,1,2,0.5,1.5\n", "open.csv", in: qtool)
    let result = try qtool.run(["data", "import", file, "-s", "X", "-t", "1d"])
    #expect(result.status == 65)
    #expect(
      result.stderr == "qtool: error: \(file):3:12: the quoted field opened here is not closed on this line (a quoted field cannot span lines)\n")
    try expectEmptyStore(qtool)
  }

  @Test func timestampsOutsideTheRangeAreRefusedByLine() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n2250-01-01,1,2,0.5,1.5\n", "future.csv", in: qtool)
    let result = try qtool.run(["data", "import", file, "-s", "X", "-t", "1d"])
    #expect(result.status == 65)
    #expect(
      result.stderr
        == "qtool: error: \(file):3: timestamp '2250-01-01' is outside the range 1970-01-01 to 2200-01-01; check the timestamp column (--map timestamp=COLUMN) and its unit (--timestamp-unit)\n"
    )
    try expectEmptyStore(qtool)
  }

  @Test func overlongLineIsRefusedByLine() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let file = try write(
      "date,open,high,low,close,note\n2024-01-02,1,2,0.5,1.5,\(String(repeating: "x", count: 100_000))\n", "long.csv", in: qtool)
    let result = try qtool.run(["data", "import", file, "-s", "X", "-t", "1d"])
    #expect(result.status == 65)
    #expect(
      result.stderr
        == "qtool: error: \(file):2: the line is longer than 64 KiB; this does not look like a CSV file of bars (is it the right file, or damaged?)\n"
    )
    try expectEmptyStore(qtool)
  }

  /// A bad CRC, or a bit flipped mid-stream, used to store the bars read before the damage
  /// and exit 0. Nothing is stored, not even the good file imported with it.
  @Test func damagedGzipStoresNothing() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    var text = "time,open,high,low,close,volume\n"
    for i in 0..<100_000 { text += "\(1_600_000_000 + i * 60),\(100 + Double(i % 97) / 8),\(101 + Double(i % 97) / 8),99,100.25,\(i)\n" }
    let csv = try write(text, "bars.csv", in: qtool)
    try shell("gzip -n -k '\(csv)'")
    let gz = try Data(contentsOf: URL(fileURLWithPath: csv + ".gz"))
    let good = try write("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n", "good.csv", in: qtool)

    var badCRC = gz
    badCRC[gz.count - 8] ^= 0xFF
    let crcPath = qtool.home.appendingPathComponent("bad-crc.csv.gz").path
    try badCRC.write(to: URL(fileURLWithPath: crcPath))
    let crc = try qtool.run(["data", "import", good, crcPath, "-s", "X", "-t", "1m"])
    #expect(crc.status == 65)
    #expect(
      crc.stderr
        == "qtool: error: \(crcPath) is damaged or not a supported archive: the CRC-32 check failed: the unpacked data is not what was packed\n")
    try expectEmptyStore(qtool)

    var flipped = gz
    flipped[gz.count / 2] ^= 0x01
    let flippedPath = qtool.home.appendingPathComponent("flipped.csv.gz").path
    try flipped.write(to: URL(fileURLWithPath: flippedPath))
    let flip = try qtool.run(["data", "import", flippedPath, "-s", "X", "-t", "1m"])
    #expect(flip.status == 65)
    #expect(flip.stderr.hasPrefix("qtool: error: \(flippedPath) is damaged or not a supported archive: "))
    try expectEmptyStore(qtool)

    let truncatedPath = qtool.home.appendingPathComponent("cut.csv.gz").path
    try gz.prefix(gz.count - 3).write(to: URL(fileURLWithPath: truncatedPath))
    let truncated = try qtool.run(["data", "import", truncatedPath, "-s", "X", "-t", "1m"])
    #expect(truncated.status == 65)
    #expect(truncated.stderr.contains("the file ends in the middle of the compressed data"))
    try expectEmptyStore(qtool)

    #expect(try qtool.run(["data", "import", csv + ".gz", "-s", "X", "-t", "1m"]).status == 0, "the undamaged file imports")
  }

  /// Runs qtool and returns its result with its peak resident memory (VmHWM, read from /proc
  /// while it runs: a high-water mark, so the last reading is the peak).
  func runMeasured(_ qtool: QtoolProcess, _ arguments: [String]) throws -> (result: QtoolProcess.Result, peakMB: Int, seconds: Double) {
    let process = Process()
    process.executableURL = QtoolProcess.binary
    process.arguments = arguments
    process.environment = qtool.environment()
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let started = Date()
    try process.run()
    nonisolated(unsafe) var outData = Data()
    nonisolated(unsafe) var errData = Data()
    let group = DispatchGroup()
    DispatchQueue.global().async(group: group) { outData = out.fileHandleForReading.readDataToEndOfFile() }
    DispatchQueue.global().async(group: group) { errData = err.fileHandleForReading.readDataToEndOfFile() }
    var peakKB = 0
    while process.isRunning {
      if let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
        let kilobytes = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
      {
        peakKB = max(peakKB, kilobytes)
      }
      Thread.sleep(forTimeInterval: 0.005)
    }
    process.waitUntilExit()
    group.wait()
    let result = QtoolProcess.Result(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    return (result, peakKB >> 10, Date().timeIntervalSince(started))
  }

  /// A gigabyte packed into a few megabytes, built from one small gzip member repeated (gzip
  /// reads members one after another): a 2.6 MB archive of a gigabyte used to reach 4.7 GB
  /// of memory, and a 1 MB zip of zeros ran for 8 minutes.
  @Test(arguments: [
    ("lines.csv.gz", "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n"),
    ("zeros.csv.gz", "\0"),
    ("newlines.csv.gz", "\n"),
  ])
  func decompressionBombsStopWithinSecondsInLittleMemory(name: String, unit: String) throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let part = qtool.home.appendingPathComponent("part").path
    try String(repeating: unit, count: (1 << 20) / unit.utf8.count).write(toFile: part, atomically: true, encoding: .utf8)
    try shell("gzip -n -9 '\(part)'")
    let member = try Data(contentsOf: URL(fileURLWithPath: part + ".gz"))
    var bomb = Data()
    for _ in 0..<1024 { bomb.append(member) }
    let path = qtool.home.appendingPathComponent(name).path
    try bomb.write(to: URL(fileURLWithPath: path))

    let (result, peakMB, seconds) = try runMeasured(qtool, ["data", "import", path, "-s", "X", "-t", "1m"])
    #expect(result.status == 65, "\(result.stderr)")
    #expect(result.stderr.hasPrefix("qtool: error: \(path) unpacks to more than 100 times its compressed size ("), "\(result.stderr)")
    #expect(
      result.stderr.hasSuffix(
        "; refused as a likely decompression bomb (if the file is genuine, unpack it yourself and import the CSV)\n"))
    #expect(peakMB < 500, "peak memory \(peakMB) MB")
    #expect(seconds < 10, "took \(seconds) s")
    try expectEmptyStore(qtool)
  }
}
