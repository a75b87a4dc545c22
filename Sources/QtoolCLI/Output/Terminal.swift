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

  static func bold(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
  static func red(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[31m\(text)\u{1B}[0m" : text }
  static func green(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[32m\(text)\u{1B}[0m" : text }
  static func dim(_ text: String, _ enabled: Bool) -> String { enabled ? "\u{1B}[2m\(text)\u{1B}[0m" : text }
}
