import Foundation
import QtoolCore

/// The line of every row `CSVBarReader` keeps from a file, and the lines it leaves out for a
/// price (or a volume, in a file with a volume column) that is empty, `null` or `NaN`: so a bad row is named by its line, and a dropped row
/// is counted and reported rather than lost without a word.
///
/// It walks the lines the way `CSVBarReader.parse` does (BOM, header, blank lines, CR LF).
/// When its count disagrees with the reader's (a quoting rule it does not share), it gives
/// no lines, and rows are named by position instead.
enum CSVRowLines {
  struct Located {
    /// The line of each kept row, in order; nil when it could not be matched to the reader.
    var rows: [Int]?
    var dropped: [DroppedRow]
  }

  static func locate(_ data: Data, layout: CSVLayout, file: String, keptRows: Int) -> Located {
    var rows: [Int] = []
    var dropped: [DroppedRow] = []
    // The fields the reader requires: the prices, and the volume when the file has a column for it.
    let names = ["open", "high", "low", "close"] + (layout.volume == nil ? [] : ["volume"])
    let columns = [layout.open, layout.high, layout.low, layout.close] + (layout.volume.map { [$0] } ?? [])
    let maxColumn = max(layout.timestamp, layout.open, layout.high, layout.low, layout.close, layout.volume ?? 0)
    data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
      let bytes = raw.bindMemory(to: UInt8.self)
      var position = 0
      if bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { position = 3 }
      var line = 0
      while position < bytes.count {
        line += 1
        var end = position
        while end < bytes.count, bytes[end] != 10 { end += 1 }
        defer { position = end + 1 }
        if line == 1, layout.hasHeader { continue }
        var contentEnd = end
        if contentEnd > position, bytes[contentEnd - 1] == 13 { contentEnd -= 1 }
        if contentEnd == position { continue }
        var fields: [Range<Int>] = []
        var start = position
        for i in position...contentEnd where i == contentEnd || bytes[i] == layout.delimiter {
          fields.append(start..<i)
          start = i + 1
          if fields.count > maxColumn { break }
        }
        guard fields.count > maxColumn else { continue }
        func text(_ range: Range<Int>) -> String {
          String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \""))
        }
        var missing: String?
        for (name, column) in zip(names, columns) {
          let value = text(fields[column])
          let lower = value.lowercased()
          // The reader's test for a missing value: empty, `nu..` of 4 bytes, `na.` of 3.
          if value.isEmpty || (value.utf8.count == 4 && lower.hasPrefix("nu")) || (value.utf8.count == 3 && lower.hasPrefix("na")) {
            missing = "\(name) is \(value.isEmpty ? "empty" : "'\(value)'")"
            break
          }
        }
        if let missing {
          let timestamp = TimestampParser.parse(text(fields[layout.timestamp]), unit: layout.epochUnit)
          dropped.append(DroppedRow(timestamp: timestamp, location: "\(file):\(line)", reason: "\(missing); the row was left out"))
        } else {
          rows.append(line)
        }
      }
    }
    return Located(rows: rows.count == keptRows ? rows : nil, dropped: dropped)
  }
}

/// One CSV file of a download read into bars, with the lines of its rows and the rows left out.
struct CSVBody {
  var series: BarSeries
  var origin: BarOrigin
  var dropped: [DroppedRow]

  /// - Parameter mapApplies: whether `--map` can fix a header qtool does not recognise (the
  ///   csv source); other sources have a fixed format, and their messages do not suggest it.
  static func read(_ data: Data, options: CSVOptions, file: String, url: String, mapApplies: Bool) throws -> CSVBody {
    let firstLine = String(decoding: data.prefix { $0 != 10 }, as: UTF8.self)
    guard data.contains(where: { !BodyFraming.isSpace($0) }) else {
      throw FetchError.invalidResponse(url: url, reason: "\(file) is empty: no bars in it")
    }
    let layout: CSVLayout
    do {
      layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: file)
    } catch CSVError.layout(_, let reason) where !mapApplies {
      let plain = reason.components(separatedBy: "; name them with --map").first ?? reason
      throw FetchError.invalidResponse(url: url, reason: "\(file) is not CSV of bars: \(plain)")
    }
    let result = try CSVBarReader.read(data, layout: layout, file: file)
    let located = CSVRowLines.locate(data, layout: layout, file: file, keptRows: result.series.count)
    var dropped = located.dropped
    if dropped.count < result.skippedRows {
      // Rows the reader skipped that this walk did not see: still counted.
      for _ in dropped.count..<result.skippedRows {
        dropped.append(DroppedRow(timestamp: nil, location: file, reason: "a row with a missing price or volume was left out"))
      }
    }
    return CSVBody(series: result.series, origin: BarOrigin(file: file, lines: located.rows), dropped: dropped)
  }
}
