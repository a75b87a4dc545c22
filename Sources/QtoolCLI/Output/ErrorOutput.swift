import Foundation
import QtoolArgs
import QtoolCore

/// How the CLI shows an error: `qtool: error: <message>; <hint>` on stderr with the hint's
/// options named as flags (`{allow_gaps}` → `--allow-gaps`), and with `--json` also the
/// structured form `{"error": {"code", "category", "message", "details", "hint"}}` on stderr,
/// so scripts need not parse prose.
enum ErrorOutput {
  /// Request fields whose flag has another name.
  static let flagNames: [String: String] = [
    "where": "where", "assertions": "assert", "params": "param", "axes": "grid", "source_name": "source-name", "late_after_bars": "late-after",
    "types": "type", "levels": "level",
  ]

  static func flag(_ option: String) -> String {
    "--" + (flagNames[option] ?? option.replacingOccurrences(of: "_", with: "-"))
  }

  static func hintText(_ error: any QtoolError) -> String? { error.hint?.rendered(option: flag) }

  /// The text after `qtool: error: `.
  static func text(_ error: any QtoolError) -> String {
    let body = InputQuote.shorten((error as? RuleError)?.description ?? error.message)
    guard let hint = hintText(error) else { return body }
    return body + (body.contains("\n") ? "\n" : "; ") + hint
  }

  static func report(_ error: any QtoolError) -> ErrorReport {
    var report = error.report
    report.hint = hintText(error)
    return InputQuote.shorten(report)
  }

  static func usageReport(_ error: UsageError) -> ErrorReport {
    ErrorReport(
      code: "usage", category: .usage, message: InputQuote.shorten(error.message),
      details: ["command": .string((["qtool"] + error.commandPath).joined(separator: " "))],
      hint: "run '\((["qtool"] + error.commandPath).joined(separator: " ")) --help' for more")
  }

  /// One line, so a script can pick it out of stderr.
  static func json(_ report: ErrorReport) -> String {
    struct Wrapper: Encodable { var error: ErrorReport }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(Wrapper(error: report))).map { String(decoding: $0, as: UTF8.self) }
      ?? #"{"error":{"code":"internal","category":"internal"}}"#
  }
}
