import Foundation
import QtoolCore
import Testing

@testable import QtoolData

@Suite struct ArchiveReaderTests {
  @Test func binanceZipAcrossTheMicrosecondSwitch() throws {
    var combined = BarSeries()
    for month in ["2024-12", "2025-01"] {
      let entries = try ArchiveReader.entries(path: SharedData.monthlyKlines(month))
      #expect(entries.count == 1)
      #expect(entries[0].name == "BTCUSDT-1d-\(month).csv")
      let firstLine = String(decoding: entries[0].data.prefix { $0 != 10 }, as: UTF8.self)
      let layout = try CSVBarReader.detect(firstLine: firstLine, options: CSVOptions(), file: month)
      combined.append(contentsOf: try CSVBarReader.read(entries[0].data, layout: layout, file: month).series)
    }
    #expect(combined.count == 62)
    #expect(zip(combined.timestamps, combined.timestamps.dropFirst()).allSatisfy { $1 - $0 == 86_400_000 })
    #expect(combined.timestamps[31] == UTCCalendar.timestamp(year: 2025, month: 1, day: 1))
    let report = DatasetVerifier.verify(combined, timeframe: Timeframe("1d")!, calendar: .allDays)
    #expect(report.ok)
  }

  @Test func gzipAndTarGzipMadeWithSystemTools() throws {
    let directory = try SharedData.scratchDirectory()
    let csv = directory.appendingPathComponent("bars.csv")
    try "date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n".write(to: csv, atomically: true, encoding: .utf8)
    try run("/bin/sh", ["-c", "cd '\(directory.path)' && tar czf bars.tar.gz bars.csv && gzip -k bars.csv"])
    let gz = try ArchiveReader.entries(path: directory.appendingPathComponent("bars.csv.gz").path)
    #expect(gz.map(\.name) == ["bars.csv"])
    #expect(String(decoding: gz[0].data, as: UTF8.self).hasPrefix("date,open"))
    let tar = try ArchiveReader.entries(path: directory.appendingPathComponent("bars.tar.gz").path)
    #expect(tar.map(\.name) == ["bars.csv"])
    let plain = try ArchiveReader.entries(path: csv.path)
    #expect(plain[0].data == gz[0].data)
  }

  @Test func truncatedZipIsAnError() throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: SharedData.monthlyKlines("2024-06")))
    let truncated = data.prefix(data.count / 2)
    #expect(throws: ArchiveError.self) { try ArchiveReader.entries(data: truncated, label: "cut.zip") }
  }

  @Test func missingFile() {
    #expect(throws: ArchiveError.cannotOpen(path: "/nonexistent.csv", reason: "no such file")) {
      try ArchiveReader.entries(path: "/nonexistent.csv")
    }
  }

  // MARK: Damage

  /// A CSV of `rows` bars and its gzip (`gzip -n`: no name or time, so the bytes are stable).
  static func gzipped(rows: Int, in directory: URL) throws -> (csv: Data, gz: Data) {
    var text = "time,open,high,low,close,volume\n"
    for i in 0..<rows { text += "\(1_600_000_000 + i * 60),\(100 + Double(i % 97) / 8),\(101 + Double(i % 97) / 8),99,100.25,\(i)\n" }
    let csv = directory.appendingPathComponent("bars.csv")
    try text.write(to: csv, atomically: true, encoding: .utf8)
    try shell("gzip -n -k '\(csv.path)'")
    return (Data(text.utf8), try Data(contentsOf: directory.appendingPathComponent("bars.csv.gz")))
  }

  func corruption(_ data: Data, label: String = "bars.csv.gz") -> ArchiveError? {
    do {
      _ = try ArchiveReader.entries(data: data, label: label)
      return nil
    } catch let error as ArchiveError {
      return error
    } catch {
      Issue.record("not an ArchiveError: \(error)")
      return nil
    }
  }

  /// libarchive's gzip filter checks neither CRC nor length: a bad CRC read as good data, and a
  /// flipped bit could end the stream early, read as a shorter file.
  @Test func damagedGzipIsAnErrorNeverAShortRead() throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let (csv, gz) = try Self.gzipped(rows: 50_000, in: directory)
    #expect(try ArchiveReader.entries(data: gz, label: "bars.csv.gz").map(\.data) == [csv])

    var badCRC = gz
    badCRC[badCRC.count - 8] ^= 0xFF
    #expect(
      corruption(badCRC) == .corrupt(path: "bars.csv.gz", reason: "the CRC-32 check failed: the unpacked data is not what was packed"))
    var badLength = gz
    badLength[badLength.count - 2] ^= 0x01
    #expect(corruption(badLength)?.description.contains("the length check failed") == true)
    for fraction in [0.1, 0.25, 0.5, 0.75, 0.9] {
      var flipped = gz
      flipped[Int(Double(gz.count) * fraction)] ^= 0x01
      if case .corrupt = corruption(flipped) {} else { Issue.record("a bit flipped at \(fraction) of the file was not noticed") }
    }
    #expect(corruption(gz.prefix(gz.count / 2))?.description.contains("the file ends in the middle of the compressed data") == true)
    #expect(corruption(gz.prefix(gz.count - 4))?.description.contains("truncated") == true, "the trailer cut short")
    #expect(corruption(gz + Data("junk".utf8))?.description.contains("unexpected bytes after the end of the gzip data") == true)
    // What gzip -d accepts is read: members one after another, and zero padding.
    #expect(try ArchiveReader.entries(data: gz + gz, label: "bars.csv.gz").map(\.data) == [csv + csv])
    #expect(try ArchiveReader.entries(data: gz + Data(count: 512), label: "bars.csv.gz").map(\.data) == [csv])
  }

  /// The same through a file, as import streams it, and inside a tar: the CRC is checked even
  /// when the tar's end comes before the gzip trailer is read.
  @Test func damagedFilesAndTarsAreErrors() throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let (_, gz) = try Self.gzipped(rows: 80_000, in: directory)
    var badCRC = gz
    badCRC[badCRC.count - 6] ^= 0x10
    let path = directory.appendingPathComponent("bad.csv.gz").path
    try badCRC.write(to: URL(fileURLWithPath: path))
    var streamed = 0
    #expect(throws: ArchiveError.corrupt(path: path, reason: "the CRC-32 check failed: the unpacked data is not what was packed")) {
      try ArchiveReader.stream(path: path, entry: { _ in }, chunk: { streamed += $0.count }, end: {})
    }
    #expect(streamed > 0, "the data came before the check")

    try Self.shell("cd '\(directory.path)' && tar cf - bars.csv | gzip -n > bars.tar.gz")
    var tar = try Data(contentsOf: directory.appendingPathComponent("bars.tar.gz"))
    #expect(try ArchiveReader.entries(data: tar, label: "bars.tar.gz").map(\.name) == ["bars.csv"])
    tar[tar.count - 7] ^= 0x01
    #expect(corruption(tar, label: "bars.tar.gz")?.description.contains("the CRC-32 check failed") == true)
  }

  /// bzip2, xz and zip check their own CRCs through libarchive: a flipped bit or a cut file
  /// is an error, whichever the format.
  @Test(arguments: ["bzip2 -k", "xz -k", "zip -q bars.zip"]) func damagedBzip2XzAndZipAreErrors(command: String) throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let (csv, _) = try Self.gzipped(rows: 50_000, in: directory)
    try Self.shell("cd '\(directory.path)' && \(command) bars.csv")
    let name = command.hasPrefix("zip") ? "bars.zip" : command.hasPrefix("xz") ? "bars.csv.xz" : "bars.csv.bz2"
    let packed = try Data(contentsOf: directory.appendingPathComponent(name))
    #expect(try ArchiveReader.entries(data: packed, label: name).map(\.data) == [csv])
    var flipped = packed
    flipped[packed.count / 2] ^= 0x01
    #expect(corruption(flipped, label: name) != nil, "a flipped bit in \(name)")
    #expect(corruption(packed.prefix(packed.count * 3 / 4), label: name) != nil, "\(name) cut short")
  }

  /// A CSV error caused by damage is reported as the damage.
  @Test func damageOutranksTheCSVErrorItCaused() throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let (_, gz) = try Self.gzipped(rows: 200_000, in: directory)
    var flipped = gz
    flipped[gz.count / 2] ^= 0x55
    let path = directory.appendingPathComponent("flipped.csv.gz").path
    try flipped.write(to: URL(fileURLWithPath: path))
    var stream: CSVStream?
    do {
      try ArchiveReader.stream(
        path: path, entry: { stream = CSVStream(options: CSVOptions(), file: $0) }, chunk: { try stream!.append($0) },
        end: { _ = try stream!.finish() })
      Issue.record("damage was read as data")
    } catch {
      #expect(error is ArchiveError, "\(error)")
    }
  }

  // MARK: Bombs

  /// A gigabyte in a few megabytes: one small member repeated (gzip reads members one after
  /// another), so the test builds it in milliseconds.
  static func bomb(of unit: String, megabytes: Int, in directory: URL) throws -> URL {
    let part = directory.appendingPathComponent("part")
    try String(repeating: unit, count: (1 << 20) / unit.utf8.count).write(to: part, atomically: true, encoding: .utf8)
    try shell("gzip -n -9 '\(part.path)'")
    let member = try Data(contentsOf: directory.appendingPathComponent("part.gz"))
    let bomb = directory.appendingPathComponent("bomb-\(megabytes).csv.gz")
    var data = Data()
    for _ in 0..<megabytes { data.append(member) }
    try data.write(to: bomb)
    return bomb
  }

  @Test func expansionPastTheLimitsStopsEarly() throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let lines = try Self.bomb(of: "2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n", megabytes: 1024, in: directory)
    var unpacked = 0
    do {
      try ArchiveReader.stream(path: lines.path, entry: { _ in }, chunk: { unpacked += $0.count }, end: {})
      Issue.record("a gigabyte from \(try Data(contentsOf: lines).count) bytes was unpacked")
    } catch let ArchiveError.tooLarge(path, reason) {
      #expect(path == lines.path)
      #expect(reason.hasPrefix("unpacks to more than 100 times its compressed size ("))
      #expect(unpacked < 32 << 20, "stopped at \(unpacked >> 20) MiB")
    }
    // The limits are the caller's: a total size, and a ratio.
    let small = ArchiveReader.Limits(maxBytes: 8 << 20, maxRatio: 1e9)
    #expect(throws: ArchiveError.tooLarge(path: lines.path, reason: "unpacks to more than 8 MiB")) {
      try ArchiveReader.stream(path: lines.path, limits: small, entry: { _ in }, chunk: { _ in }, end: {})
    }
    #expect(throws: ArchiveError.self) { try ArchiveReader.entries(data: try Data(contentsOf: lines), label: "bomb.csv.gz") }
  }

  @Test func zipOfZerosStopsEarly() throws {
    let directory = try SharedData.scratchDirectory()
    defer { try? FileManager.default.removeItem(at: directory) }
    let zip = directory.appendingPathComponent("zeros.zip")
    try Self.shell("head -c 256M /dev/zero | zip -q -9 '\(zip.path)' -")
    #expect(throws: ArchiveError.self) { try ArchiveReader.stream(path: zip.path, entry: { _ in }, chunk: { _ in }, end: {}) }
    #expect(throws: ArchiveError.self) { try ArchiveReader.entries(data: try Data(contentsOf: zip), label: "zeros.zip") }
  }

  static func shell(_ script: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/sh")
    process.arguments = ["-c", script]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "\(script)")
  }

  func run(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
  }
}
