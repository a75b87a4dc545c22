import QtoolArgs
import QtoolCore

enum HelpCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "help", abstract: "Show help for a command or a topic",
    discussion: "Topics: \(HelpTopics.all.map(\.name).joined(separator: ", ")). With --json, the whole command tree as JSON.",
    options: [.flag("json", help: "Print the whole command tree as JSON.")],
    positionals: [
      PositionalSpec(
        "topic", arity: .variadicOptional, help: "A command path (e.g. db info) or a topic name.",
        completion: .choices(HelpTopics.all.map(\.name) + CommandTree.groups.map(\.name)))
    ],
    examples: [
      Example("qtool help db backup", "Help for one command"),
      Example("qtool help exit-codes", "The exit-code table"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let words = context.arguments.strings("topic")
    if context.json {
      try context.printJSON(CommandDump(CommandTree.root))
      return .success
    }
    if words.count == 1, let topic = HelpTopics.named(words[0]) {
      context.stdout.write(topic.text)
      return .success
    }
    var node = CommandTree.root
    var path: [String] = []
    for word in words {
      guard let next = node.subcommand(named: word), !next.isHidden else {
        var candidates = node.subcommands.filter { !$0.isHidden }.map(\.name)
        if path.isEmpty { candidates += HelpTopics.all.map(\.name) }
        throw UsageError(
          "no command or topic '\(words.joined(separator: " "))'" + Suggestion.didYouMean(word, among: candidates),
          commandPath: ["help"])
      }
      node = next
      path.append(next.name)
    }
    context.stdout.write(HelpRenderer(root: CommandTree.root).help(for: path))
    return .success
  }
}

/// The command tree as JSON, for tools that build on qtool.
struct CommandDump: Encodable {
  struct Option: Encodable {
    var long: String
    var short: String?
    var valueName: String?
    var help: String
    var defaultValue: String?
    var environment: String?
    var required: Bool
    enum CodingKeys: String, CodingKey {
      case long, short, help, environment, required
      case valueName = "value_name", defaultValue = "default"
    }
  }
  struct Argument: Encodable {
    var name: String
    var help: String
    var required: Bool
    var repeating: Bool
  }

  var name: String
  var abstract: String
  var options: [Option]
  var arguments: [Argument]
  var subcommands: [CommandDump]

  init(_ spec: CommandSpec) {
    name = spec.name
    abstract = spec.abstract
    options = spec.options.filter { !$0.isHidden }.map {
      Option(
        long: $0.long, short: $0.short.map(String.init), valueName: $0.valueName, help: $0.help,
        defaultValue: $0.defaultValue, environment: $0.environment, required: $0.isRequired)
    }
    arguments = spec.positionals.map {
      Argument(
        name: $0.name, help: $0.help, required: $0.arity == .required || $0.arity == .variadic,
        repeating: $0.arity == .variadic || $0.arity == .variadicOptional)
    }
    subcommands = spec.subcommands.filter { !$0.isHidden }.map(CommandDump.init)
  }
}
