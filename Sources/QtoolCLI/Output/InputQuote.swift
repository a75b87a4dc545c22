import Foundation
import QtoolCore

/// Error messages quote input (a spec line, a CSV row, a JSON value) so the user sees what was
/// wrong, but never more than a line of it: a 1 MB JSON line or a pasted file must not flood the
/// terminal. Each line of a message is cut to `lineLimit` characters (saying how many were left
/// out) — around the caret when a caret line points into it — and a message keeps at most
/// `maxLines` lines.
enum InputQuote {
  static let lineLimit = 500
  static let maxLines = 20

  static func shorten(_ message: String) -> String {
    var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    guard lines.count > 1 || message.count > lineLimit else { return message }
    var dropped = 0
    if lines.count > maxLines {
      dropped = lines.count - maxLines
      lines = Array(lines.prefix(maxLines))
    }
    var result: [String] = []
    var index = 0
    while index < lines.count {
      let line = lines[index]
      if index + 1 < lines.count, line.count > lineLimit, let caret = caretColumn(lines[index + 1]) {
        // Show the part of the line the caret points at, and keep the caret under it.
        let start = max(0, min(caret - lineLimit / 2, line.count - lineLimit))
        let characters = Array(line)
        let end = min(characters.count, start + lineLimit)
        let lead = start > 0 ? "…" : ""
        result.append(lead + String(characters[start..<end]) + (end < characters.count ? "…" : ""))
        result.append(String(repeating: " ", count: caret - start + lead.count) + "^")
        index += 2
        continue
      }
      result.append(shortenLine(line))
      index += 1
    }
    if dropped > 0 { result.append("… (\(dropped) more line\(dropped == 1 ? "" : "s"))") }
    return result.joined(separator: "\n")
  }

  /// The column of a line that is only a caret under another (`    ^`).
  static func caretColumn(_ line: String) -> Int? {
    guard line.hasSuffix("^"), line.dropLast().allSatisfy({ $0 == " " }) else { return nil }
    return line.count - 1
  }

  static func shortenLine(_ line: String) -> String {
    guard line.count > lineLimit else { return line }
    if caretColumn(line) != nil { return "^ (at column \(line.count))" }
    return line.prefix(lineLimit) + "… (\(line.count - lineLimit) more characters)"
  }

  /// The same for a structured report: its message and its string details.
  static func shorten(_ report: ErrorReport) -> ErrorReport {
    var report = report
    report.message = shorten(report.message)
    for (key, value) in report.details {
      if case .string(let text) = value { report.details[key] = .string(shorten(text)) }
    }
    return report
  }
}
