import Foundation
import QtoolCore
import QtoolData

/// Daily (and longer) bars written with a UTC offset: a bar's date is the date it is written
/// with, in its own offset. `2020-01-02T00:00:00+01:00` is the bar of 2020-01-02, not of
/// 2020-01-01 (the instant 23:00Z it names). Intraday bars keep their instant.
///
/// The CSV reader turns every timestamp into an instant, which is what the hot path needs and
/// right for intraday bars. For daily bars this step runs after reading, and only when some bar
/// is off the UTC day grid (no offset, or a whole-day one, costs a scan of the timestamps): it
/// reads the files' timestamp column again and moves each such bar to its written date.
enum LocalDates {
  static let day: Int64 = 86_400_000

  /// True when `timeframe` bars are dated (a day or longer) and some timestamp is not a UTC midnight.
  static func needed(_ series: BarSeries, timeframe: Timeframe, options: CSVOptions) -> Bool {
    guard [.day, .week, .month].contains(timeframe.unit), options.timestampFormat == nil else { return false }
    return series.timestamps.contains { (($0 % day) + day) % day != 0 }
  }

  /// `series` with each bar off the day grid moved to the date its row was written with.
  static func apply(_ series: BarSeries, files: [String], options: CSVOptions) throws -> BarSeries {
    let dates = try writtenDates(files: files, options: options)
    guard !dates.isEmpty else { return series }
    var moved = series
    for i in moved.timestamps.indices {
      let t = moved.timestamps[i]
      if ((t % day) + day) % day != 0, let date = dates[t] { moved.timestamps[i] = date }
    }
    return moved
  }

  /// The instant each text timestamp of `files` names → the date it is written with.
  static func writtenDates(files: [String], options: CSVOptions) throws -> [Int64: Int64] {
    var dates: [Int64: Int64] = [:]
    for path in files {
      var text: [UInt8] = []
      var name = path
      try ArchiveReader.stream(
        path: path,
        entry: { entry in
          text = []
          name = entry
        }, chunk: { text.append(contentsOf: $0) },
        end: { try collect(text, file: name, options: options, into: &dates) })
    }
    return dates
  }

  private static func collect(_ text: [UInt8], file: String, options: CSVOptions, into dates: inout [Int64: Int64]) throws {
    guard let firstLineEnd = text.firstIndex(of: 10) ?? (text.isEmpty ? nil : text.count) else { return }
    let firstLine = String(decoding: text[..<firstLineEnd], as: UTF8.self)
    guard !firstLine.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return }
    let layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: file)
    text.withUnsafeBufferPointer { buffer in
      var position = 0
      var line = 0
      while position < buffer.count {
        let lineEnd = buffer[position...].firstIndex(of: 10) ?? buffer.count
        defer { position = lineEnd + 1 }
        line += 1
        if line == 1, layout.hasHeader { continue }
        // The timestamp field: between the delimiters around column `layout.timestamp`.
        var column = 0
        var fieldStart = position
        var i = position
        while i < lineEnd, column < layout.timestamp {
          if buffer[i] == layout.delimiter {
            column += 1
            fieldStart = i + 1
          }
          i += 1
        }
        guard column == layout.timestamp else { continue }
        var fieldEnd = fieldStart
        while fieldEnd < lineEnd, buffer[fieldEnd] != layout.delimiter { fieldEnd += 1 }
        let field = UnsafeBufferPointer(rebasing: buffer[fieldStart..<fieldEnd])
        if let date = TimestampParser.localDate(field), let instant = TimestampParser.parse(field, unit: layout.epochUnit) {
          dates[instant] = date
        }
      }
    }
  }
}
