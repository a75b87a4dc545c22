import Foundation
import QtoolCore

/// Error messages quote input (a spec line, a CSV row, a JSON value) so the user sees what was
/// wrong, but never more than a line of it: a 1 MB JSON line or a pasted file must not flood the
/// terminal. Each line of a message is cut to `lineLimit` characters (saying how many were left
/// out), and a message keeps at most `maxLines` lines.
enum InputQuote {
  static let lineLimit = 240
  static let maxLines = 12

  static func shorten(_ message: String) -> String {
    var lines = message.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var dropped = 0
    if lines.count > maxLines {
      dropped = lines.count - maxLines
      lines = Array(lines.prefix(maxLines))
    }
    lines = lines.map(shortenLine)
    if dropped > 0 { lines.append("… (\(dropped) more line\(dropped == 1 ? "" : "s"))") }
    return lines.joined(separator: "\n")
  }

  static func shortenLine(_ line: String) -> String {
    guard line.count > lineLimit else { return line }
    // A caret under a column past the cut: say where it points instead.
    if line.trimmingCharacters(in: .whitespaces) == "^" { return "^ (at column \(line.count))" }
    let kept = line.prefix(lineLimit)
    return kept + "… (\(line.count - lineLimit) more characters)"
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
