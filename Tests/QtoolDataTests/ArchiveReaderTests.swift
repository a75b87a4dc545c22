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

  func run(_ tool: String, _ arguments: [String]) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0)
  }
}
