import QtoolCore

/// A plain-text table: columns separated by two spaces, numbers right-aligned.
struct Table {
  enum Alignment { case left, right }
  struct Column {
    var title: String
    var alignment: Alignment
    init(_ title: String, _ alignment: Alignment = .left) {
      self.title = title
      self.alignment = alignment
    }
  }

  var columns: [Column]
  var rows: [[String]]

  func render(bold: Bool = false) -> String {
    let rows = rows.map { $0.map(Terminal.printable) }
    var widths = columns.map(\.title.count)
    for row in rows {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], cell.count)
      }
    }
    func format(_ cells: [String]) -> String {
      var parts: [String] = []
      for (index, cell) in cells.enumerated() {
        let pad = String(repeating: " ", count: max(0, widths[index] - cell.count))
        let isLast = index == cells.count - 1
        switch columns[index].alignment {
        case .left: parts.append(isLast ? cell : cell + pad)
        case .right: parts.append(pad + cell)
        }
      }
      return parts.joined(separator: "  ")
    }
    var lines = [Terminal.bold(format(columns.map(\.title)), bold)]
    lines += rows.map(format)
    return lines.joined(separator: "\n") + "\n"
  }
}

/// Two columns of key and value, for `info`-style output.
struct KeyValueList {
  var pairs: [(String, String)]
  func render() -> String {
    let width = pairs.map(\.0.count).max() ?? 0
    return pairs.map { key, value in
      key + ":" + String(repeating: " ", count: width - key.count + 1) + Terminal.printable(value)
    }.joined(separator: "\n") + "\n"
  }
}

enum Format {
  /// 1536 → "1.5 KiB"
  static func bytes(_ count: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(count)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    return unit == 0 ? "\(count) B" : decimal(value, places: 1) + " " + units[unit]
  }

  /// 1234567 → "1.2M"
  static func compact(_ value: Double) -> String {
    switch abs(value) {
    case 1e9...: return decimal(value / 1e9, places: 1) + "G"
    case 1e6...: return decimal(value / 1e6, places: 1) + "M"
    case 1e3...: return decimal(value / 1e3, places: 1) + "k"
    default: return decimal(value, places: value == value.rounded() ? 0 : 1)
    }
  }

  /// Fixed decimals, never scientific notation (`DisplayFormat.fixed`); nan and inf spelt out.
  static func decimal(_ value: Double, places: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
    return DisplayFormat.fixed(value, places: places)
  }

  /// 75.2 → "1m15s"
  static func duration(_ seconds: Double) -> String {
    if seconds < 1 { return decimal(seconds * 1000, places: 0) + "ms" }
    if seconds < 60 { return decimal(seconds, places: 1) + "s" }
    let total = Int(seconds.rounded())
    if total < 3600 { return "\(total / 60)m\(String(format2(total % 60)))s" }
    return "\(total / 3600)h\(format2(total / 60 % 60))m"
  }

  private static func format2(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }

  /// An ISO-8601 time from a report, for people: `2024-01-31` at midnight, the full time otherwise.
  static func when(_ iso: String?) -> String {
    guard let iso else { return "-" }
    return iso.hasSuffix("T00:00:00Z") ? String(iso.dropLast(10)) : iso
  }
}
