/// One node of the command tree: a group (it has subcommands) or a leaf (it runs).
///
/// The tree is the single source of truth: parsing, `--help`, the man page and the shell
/// completions are all rendered from it.
///
/// ```swift
/// let list = CommandSpec(name: "list", abstract: "List stored datasets",
///                        options: [.flag("json", help: "Print JSON")])
/// let root = CommandSpec(name: "qtool", abstract: "…", subcommands: [
///   CommandSpec(name: "data", abstract: "Market data", subcommands: [list])])
/// ```
public struct CommandSpec: Sendable {
  public var name: String
  public var abstract: String
  public var discussion: String
  public var aliases: [String]
  public var options: [OptionSpec]
  public var positionals: [PositionalSpec]
  public var subcommands: [CommandSpec]
  public var examples: [Example]
  public var isHidden: Bool
  /// For a group: the subcommand a command line means when its next word names none
  /// (`qtool backtest grid SPEC …` is `qtool backtest grid run SPEC …`).
  public var defaultSubcommand: String?

  public init(
    name: String, abstract: String, discussion: String = "", aliases: [String] = [],
    options: [OptionSpec] = [], positionals: [PositionalSpec] = [],
    subcommands: [CommandSpec] = [], examples: [Example] = [], isHidden: Bool = false, defaultSubcommand: String? = nil
  ) {
    self.defaultSubcommand = defaultSubcommand
    self.name = name
    self.abstract = abstract
    self.discussion = discussion
    self.aliases = aliases
    self.options = options
    self.positionals = positionals
    self.subcommands = subcommands
    self.examples = examples
    self.isHidden = isHidden
  }

  public var isGroup: Bool { !subcommands.isEmpty }

  /// The subcommand called `word`, by name or alias.
  public func subcommand(named word: String) -> CommandSpec? {
    subcommands.first { $0.name == word || $0.aliases.contains(word) }
  }

  /// The command reached by following `path` (names, not aliases) from this one.
  public func descendant(at path: [String]) -> CommandSpec? {
    var node = self
    for word in path {
      guard let next = node.subcommand(named: word) else { return nil }
      node = next
    }
    return node
  }

  /// Every command below this one, depth first, each with its path of names.
  public func walk(includeHidden: Bool = false) -> [(path: [String], command: CommandSpec)] {
    var result: [(path: [String], command: CommandSpec)] = []
    func visit(_ node: CommandSpec, _ path: [String]) {
      for sub in node.subcommands where includeHidden || !sub.isHidden {
        result.append((path + [sub.name], sub))
        visit(sub, path + [sub.name])
      }
    }
    visit(self, [])
    return result
  }
}

/// A worked example shown in help and in the man page.
public struct Example: Sendable {
  public var command: String
  public var explanation: String
  public init(_ command: String, _ explanation: String) {
    self.command = command
    self.explanation = explanation
  }
}
