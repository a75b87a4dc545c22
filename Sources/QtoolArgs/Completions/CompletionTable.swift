/// What every shell's script needs, per command path: subcommands, options in scope, and
/// how to complete each option's value. The three generators render this one table.
struct CompletionTable {
  struct Entry {
    var path: [String]
    var subcommands: [CommandSpec]
    var options: [OptionSpec]
    var positionals: [PositionalSpec]
    var key: String { path.joined(separator: " ") }
  }

  let programName: String
  let entries: [Entry]

  init(root: CommandSpec) {
    programName = root.name
    let parser = Parser(root: root, environment: [:])
    var entries: [Entry] = []
    for (path, command) in [([String](), root)] + root.walk() {
      var options = parser.optionScope(for: path).filter { !$0.isHidden }
      var positionals = command.positionals
      // A group that runs its default command (`backtest grid SPEC …` is `backtest grid run`)
      // completes that command's options and arguments too.
      if let name = command.defaultSubcommand, let fallback = command.subcommand(named: name) {
        let known = Set(options.map(\.long))
        options += fallback.options.filter { !$0.isHidden && !known.contains($0.long) }
        positionals += fallback.positionals
      }
      entries.append(
        Entry(path: path, subcommands: command.subcommands.filter { !$0.isHidden }, options: options, positionals: positionals))
    }
    self.entries = entries
  }

  /// Every long option that takes a value, anywhere: scripts skip the word after one when
  /// they work out which command is being typed.
  var valueOptionWords: [String] {
    var words = Set<String>()
    for entry in entries {
      for option in entry.options where option.takesValue {
        words.insert("--" + option.long)
        if let short = option.short { words.insert("-\(short)") }
      }
    }
    return words.sorted()
  }

  static func singleQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
  }
}

extension String {
  func replacingOccurrences(of target: String, with replacement: String) -> String {
    guard !target.isEmpty else { return self }
    var result = ""
    var rest = self[...]
    while let range = rest.range(of: target) {
      result += rest[..<range.lowerBound]
      result += replacement
      rest = rest[range.upperBound...]
    }
    return result + rest
  }
}
