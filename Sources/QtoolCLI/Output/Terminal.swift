/// Decides colour and animation: none when NO_COLOR is set, `--color never`, the stream is not
/// a terminal, or `--quiet`.
struct Terminal: Sendable {
  var colorOnStdout: Bool
  var colorOnStderr: Bool
  var animateStderr: Bool

  init(color: String, quiet: Bool, environment: [String: String]) {
    let noColor = environment["NO_COLOR"].map { !$0.isEmpty } ?? false
    let dumb = environment["TERM"] == "dumb"
    switch color {
    case "always":
      colorOnStdout = true
      colorOnStderr = true
    case "never":
      colorOnStdout = false
      colorOnStderr = false
    default:
      colorOnStdout = !noColor && !dumb && OutputStream.standardOutput.isTerminal
      colorOnStderr = !noColor && !dumb && OutputStream.standardError.isTerminal
    }
    animateStderr = !quiet && !dumb && OutputStream.standardError.isTerminal
  }

  /// `text` with the characters a terminal would act on shown instead as escapes (`\x1b`,
  /// `\u{202e}`): control characters other than newline and tab, DEL, C1 controls and the
  /// bidirectional overrides. Messages and tables echo names and lines from files and requests;
  /// an escape sequence in them must not recolour, retitle or rewrite the user's terminal.
  static func printable(_ text: String) -> String {
    func isActive(_ scalar: Unicode.Scalar) -> Bool {
      switch scalar.value {
      case 0x0A, 0x09: return false
      case 0x00...0x1F, 0x7F...0x9F, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true
      default: return false
      }
    }
    guard text.unicodeScalars.contains(where: isActive) else { return text }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      if isActive(scalar) {
        let escaped = scalar.value < 0x100 ? "\\x" + (scalar.value < 0x10 ? "0" : "") + String(scalar.value, radix: 16) : "\\u{" + String(scalar.value, radix: 16) + "}"
        out.append(contentsOf: escaped.unicodeScalars)
      } else {
        out.append(scalar)
      }
    }
    return String(out)
  }

  static func bold(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
  static func red(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
  static func green(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
  static func dim(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
}
