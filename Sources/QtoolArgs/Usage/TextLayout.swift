/// Word-wrapping for help text at a fixed width, so output is the same on every terminal
/// and snapshot tests stay stable.
enum TextLayout {
  static let width = 80

  static func wrap(_ text: String, width: Int = TextLayout.width, indent: Int = 0) -> [String] {
    var lines: [String] = []
    let pad = String(repeating: " ", count: indent)
    for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
      if paragraph.isEmpty {
        lines.append("")
        continue
      }
      // Lines that start with spaces are pre-formatted (tables, code): keep them as they are.
      if paragraph.hasPrefix(" ") {
        lines.append(pad + paragraph)
        continue
      }
      var line = ""
      for word in paragraph.split(separator: " ") {
        if !line.isEmpty, indent + line.count + 1 + word.count > width {
          lines.append(pad + line)
          line = ""
        }
        line += line.isEmpty ? String(word) : " " + word
      }
      lines.append(pad + line)
    }
    return lines
  }

  /// Two columns: a left term padded to `column`, help wrapped beside it.
  static func row(_ term: String, _ help: String, column: Int = 28) -> [String] {
    let helpLines = wrap(help, width: width - column)
    var result: [String] = []
    if term.count + 2 > column - 1 {
      result.append(term)
      result += helpLines.map { String(repeating: " ", count: column) + $0 }
    } else {
      let first = term.padding(toLength: column, withPad: " ", startingAt: 0) + (helpLines.first ?? "")
      result.append(first)
      result += helpLines.dropFirst().map { String(repeating: " ", count: column) + $0 }
    }
    return result.map { $0.trailingSpacesRemoved }
  }
}

extension String {
  var trailingSpacesRemoved: String {
    var copy = self
    while copy.last == " " { copy.removeLast() }
    return copy
  }
}
