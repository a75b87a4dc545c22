/// Renders `--help` text and usage lines from the command tree.
public struct HelpRenderer: Sendable {
  public let root: CommandSpec

  public init(root: CommandSpec) { self.root = root }

  /// `Usage: qtool data import <file>... --symbol <symbol> [options]`
  public func usageLine(for path: [String]) -> String {
    guard let command = root.descendant(at: path) else { return "Usage: \(root.name)" }
    var parts = ["Usage:", ([root.name] + path).joined(separator: " ")]
    if command.isGroup {
      parts.append("<command>")
    } else {
      parts += command.positionals.map(\.usage)
      let scope = Parser(root: root, environment: [:]).optionScope(for: path)
      for option in scope where option.isRequired {
        parts.append("--\(option.long) <\(option.valueName ?? "value")>")
      }
    }
    parts.append("[options]")
    return parts.joined(separator: " ")
  }

  /// The whole help page for the command at `path`.
  public func help(for path: [String]) -> String {
    guard let command = root.descendant(at: path) else { return help(for: []) }
    var lines: [String] = []
    let fullName = ([root.name] + path).joined(separator: " ")
    lines.append("\(fullName) — \(command.abstract)")
    lines.append("")
    lines.append(usageLine(for: path))
    if !command.discussion.isEmpty {
      lines.append("")
      lines += TextLayout.wrap(command.discussion)
    }
    let visibleSubcommands = command.subcommands.filter { !$0.isHidden }
    if !visibleSubcommands.isEmpty {
      lines.append("")
      lines.append("Commands:")
      for sub in visibleSubcommands {
        let aliases = sub.aliases.isEmpty ? "" : " (alias: \(sub.aliases.joined(separator: ", ")))"
        lines += TextLayout.row("  " + sub.name, sub.abstract + aliases, column: 16)
      }
    }
    if !command.positionals.isEmpty {
      lines.append("")
      lines.append("Arguments:")
      for positional in command.positionals {
        lines += TextLayout.row("  " + positional.usage, positional.help + Self.choicesNote(positional.type))
      }
    }
    // Options of this command and of the groups above it; the root's are the global ones.
    var own: [OptionSpec] = []
    var node = root
    for word in path {
      guard let next = node.subcommand(named: word) else { break }
      node = next
      own += node.options
    }
    let visibleOwn = own.filter { !$0.isHidden }
    if !visibleOwn.isEmpty {
      lines.append("")
      lines.append("Options:")
      for option in visibleOwn { lines += Self.optionRows(option) }
    }
    let globals = root.options.filter { !$0.isHidden }
    if !globals.isEmpty {
      lines.append("")
      lines.append(path.isEmpty ? "Options:" : "Global options:")
      for option in globals { lines += Self.optionRows(option) }
    }
    if !command.examples.isEmpty {
      lines.append("")
      lines.append("Examples:")
      for example in command.examples {
        lines.append("  $ " + example.command)
        lines += TextLayout.wrap(example.explanation, indent: 4)
      }
    }
    lines.append("")
    if command.isGroup {
      lines.append("Run '\(fullName) <command> --help' for a command's options.")
    }
    return lines.joined(separator: "\n").trailingNewlinesTrimmed + "\n"
  }

  /// `-s, --symbol <symbol>` and its help with default, choices, environment and required notes.
  static func optionRows(_ option: OptionSpec) -> [String] {
    TextLayout.row("  " + optionTerm(option), optionHelp(option))
  }

  static func optionTerm(_ option: OptionSpec) -> String {
    var term = option.short.map { "-\($0), " } ?? "    "
    term += option.isNegatable ? "--[no-]\(option.long)" : "--\(option.long)"
    if option.takesValue { term += " <\(option.valueName ?? "value")>" }
    return term
  }

  static func optionHelp(_ option: OptionSpec) -> String {
    var help = option.help
    if let type = option.valueType { help += choicesNote(type) }
    if option.splitsOnCommas { help += " Repeat or separate with commas." } else if option.isList { help += " Repeatable." }
    var notes: [String] = []
    if option.isRequired { notes.append("required") }
    if let value = option.defaultValue { notes.append("default: \(value)") }
    if let variable = option.environment { notes.append("env: \(variable)") }
    if !notes.isEmpty { help += " [" + notes.joined(separator: "; ") + "]" }
    return help
  }

  static func choicesNote(_ type: ValueType) -> String {
    if case .choice(let values) = type { return " (one of: \(values.joined(separator: ", ")))" }
    return ""
  }
}

extension String {
  var trailingNewlinesTrimmed: String {
    var copy = self
    while copy.last == "\n" { copy.removeLast() }
    return copy
  }
}
