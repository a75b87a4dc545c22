/// Checks the command tree itself: a tree that fails these checks would parse ambiguously or
/// document itself badly. Tests run it over qtool's tree.
public enum TreeValidator {
  public static func problems(in root: CommandSpec) -> [String] {
    var problems: [String] = []
    func visit(_ command: CommandSpec, path: [String], inherited: [OptionSpec]) {
      let name = ([root.name] + path).joined(separator: " ")
      if command.abstract.isEmpty { problems.append("\(name): no abstract") }
      var subNames = Set<String>()
      for sub in command.subcommands {
        for word in [sub.name] + sub.aliases where !subNames.insert(word).inserted {
          problems.append("\(name): subcommand name '\(word)' is used twice")
        }
      }
      let scope = inherited + command.options
      var longs = Set<String>()
      var shorts = Set<Character>()
      for option in scope {
        for word in [option.long] + option.aliases where !longs.insert(word).inserted {
          problems.append("\(name): option --\(word) is declared twice (a group's options clash with a command's)")
        }
        if let short = option.short, !shorts.insert(short).inserted {
          problems.append("\(name): short option -\(short) is declared twice")
        }
      }
      for option in command.options {
        if option.help.isEmpty { problems.append("\(name): --\(option.long) has no help text") }
        if option.takesValue, (option.valueName ?? "").isEmpty {
          problems.append("\(name): --\(option.long) takes a value but has no value name")
        }
        if option.isRequired, option.defaultValue != nil {
          problems.append("\(name): --\(option.long) is required and has a default")
        }
        if case .choice(let values) = option.valueType {
          for value in values where !value.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-_.".contains($0)) }) {
            problems.append("\(name): --\(option.long) choice '\(value)' is not lower-case ASCII")
          }
        }
        if let value = option.defaultValue, let type = option.valueType,
          ArgumentValue.convert(option.isList ? String(value.split(separator: ",").first ?? "") : value, to: type) == nil
        {
          problems.append("\(name): --\(option.long) default '\(value)' is not \(type.expectation)")
        }
      }
      if !command.isGroup {
        for (index, positional) in command.positionals.enumerated() {
          if positional.help.isEmpty { problems.append("\(name): <\(positional.name)> has no help text") }
          if positional.isVariadic, index != command.positionals.count - 1 {
            problems.append("\(name): variadic <\(positional.name)> must be last")
          }
          if !positional.isRequired,
            command.positionals[(index + 1)...].contains(where: { $0.isRequired && !$0.isVariadic })
          {
            problems.append("\(name): optional <\(positional.name)> comes before a required argument")
          }
        }
      } else if !command.positionals.isEmpty {
        problems.append("\(name): a group cannot take positional arguments")
      }
      for sub in command.subcommands {
        visit(sub, path: path + [sub.name], inherited: scope)
      }
    }
    visit(root, path: [], inherited: [])
    return problems
  }
}
