import Foundation

/// Parses a command line against a command tree.
///
/// Accepts `--opt=value`, `--opt value`, `-o value`, `-ovalue`, bundled short flags (`-qv`),
/// `--no-<flag>`, `--` to end options, options anywhere among positionals, repeated options
/// (the last wins; list options accumulate), and environment fallbacks. `--help` and
/// `--version` are answered before anything else is checked.
public struct Parser: Sendable {
  public let root: CommandSpec
  public let environment: [String: String]

  public init(root: CommandSpec, environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.root = root
    self.environment = environment
  }

  public func parse(_ arguments: [String]) throws(UsageError) -> ParseOutcome {
    let (path, command, remaining) = try resolveCommand(arguments)
    let scope = optionScope(for: path)

    if remaining.prefix(while: { $0 != "--" }).contains(where: { $0 == "--help" || $0 == "-h" }) {
      return .help(path)
    }
    if path.isEmpty, remaining.prefix(while: { $0 != "--" }).contains(where: { $0 == "--version" || $0 == "-V" }) {
      return .version
    }
    if command.isGroup {
      if path.isEmpty, remaining.isEmpty { return .help([]) }
      let names = command.subcommands.filter { !$0.isHidden }.map(\.name)
      throw UsageError(
        "'\(commandName(path))' needs a command: one of \(names.joined(separator: ", "))",
        commandPath: path)
    }

    var parsed = ParsedArguments(commandPath: path, command: command)
    var positionalTexts: [String] = []
    var index = 0
    var optionsEnded = false
    func fail(_ message: String) -> UsageError { UsageError(message, commandPath: path) }

    while index < remaining.count {
      let token = remaining[index]
      index += 1
      if optionsEnded || token == "-" || !token.hasPrefix("-") || isNegativeNumber(token) {
        positionalTexts.append(token)
        continue
      }
      if token == "--" {
        optionsEnded = true
        continue
      }
      if token.hasPrefix("--") {
        let body = token.dropFirst(2)
        let name: String
        var inlineValue: String?
        if let equals = body.firstIndex(of: "=") {
          name = String(body[..<equals])
          inlineValue = String(body[body.index(after: equals)...])
        } else {
          name = String(body)
        }
        if let option = scope.first(where: { $0.long == name || $0.aliases.contains(name) }) {
          if option.takesValue {
            let text: String
            if let inlineValue {
              text = inlineValue
            } else if index < remaining.count, !looksLikeOption(remaining[index], in: scope) {
              text = remaining[index]
              index += 1
            } else {
              throw fail("--\(option.long): missing value (expected \(option.valueType!.expectation))")
            }
            try store(text, for: option, into: &parsed, path: path)
          } else {
            if inlineValue != nil { throw fail("--\(option.long) does not take a value") }
            parsed.values[option.long, default: []].append(.bool(true))
            parsed.origins[option.long] = .commandLine
          }
          continue
        }
        if name.hasPrefix("no-"),
          let option = scope.first(where: { $0.isNegatable && $0.long == name.dropFirst(3) })
        {
          if inlineValue != nil { throw fail("--\(name) does not take a value") }
          parsed.values[option.long, default: []].append(.bool(false))
          parsed.origins[option.long] = .commandLine
          continue
        }
        let candidates = scope.filter { !$0.isHidden }.flatMap { option in
          [option.long] + (option.isNegatable ? ["no-" + option.long] : [])
        }
        throw fail(
          "unknown option '--\(name)'" + Suggestion.didYouMean(name, among: candidates, prefix: "--"))
      }
      // One or more short options: -v, -qv, -o value, -ovalue.
      var characters = Substring(token.dropFirst())
      while let character = characters.first {
        characters = characters.dropFirst()
        guard let option = scope.first(where: { $0.short == character }) else {
          throw fail("unknown option '-\(character)'" + (token.count > 2 ? " in '\(token)'" : ""))
        }
        if option.takesValue {
          let text: String
          if !characters.isEmpty {
            text = String(characters.hasPrefix("=") ? characters.dropFirst() : characters)
            characters = ""
          } else if index < remaining.count, !looksLikeOption(remaining[index], in: scope) {
            text = remaining[index]
            index += 1
          } else {
            throw fail("-\(character): missing value (expected \(option.valueType!.expectation))")
          }
          try store(text, for: option, into: &parsed, path: path)
        } else {
          parsed.values[option.long, default: []].append(.bool(true))
          parsed.origins[option.long] = .commandLine
        }
      }
    }

    try assignPositionals(positionalTexts, of: command, into: &parsed, path: path)
    try applyFallbacks(scope: scope, into: &parsed, path: path)
    return .run(parsed)
  }

  /// Options visible at `path`: the root's (global) options, then each group's, then the leaf's.
  public func optionScope(for path: [String]) -> [OptionSpec] {
    var scope = root.options
    var node = root
    for word in path {
      guard let next = node.subcommand(named: word) else { break }
      node = next
      scope += node.options
    }
    return scope
  }

  /// Finds the command path: walks non-option words while the current command is a group.
  private func resolveCommand(_ arguments: [String]) throws(UsageError) -> ([String], CommandSpec, [String]) {
    var node = root
    var path: [String] = []
    var remaining: [String] = []
    var index = 0
    while index < arguments.count {
      let token = arguments[index]
      index += 1
      guard node.isGroup else {
        remaining.append(token)
        continue
      }
      if token == "--" {
        remaining.append(contentsOf: arguments[(index - 1)...])
        break
      }
      if token.hasPrefix("-"), token != "-" {
        remaining.append(token)
        // A known option that takes a separate value consumes the next word.
        let scope = optionScope(for: path)
        if token.hasPrefix("--"), !token.contains("="),
          let option = scope.first(where: { $0.long == token.dropFirst(2) || $0.aliases.contains(String(token.dropFirst(2))) }),
          option.takesValue, index < arguments.count
        {
          remaining.append(arguments[index])
          index += 1
        } else if !token.hasPrefix("--"), token.count == 2,
          let option = scope.first(where: { $0.short == token.last }), option.takesValue,
          index < arguments.count
        {
          remaining.append(arguments[index])
          index += 1
        }
        continue
      }
      guard let next = node.subcommand(named: token) else {
        if let name = node.defaultSubcommand, let fallback = node.subcommand(named: name) {
          // Not one of the group's commands: the first argument of its default one.
          path.append(fallback.name)
          node = fallback
          remaining.append(token)
          continue
        }
        let names = node.subcommands.filter { !$0.isHidden }.flatMap { [$0.name] + $0.aliases }
        throw UsageError(
          "unknown command '\(token)' for '\(commandName(path))'"
            + Suggestion.didYouMean(token, among: names),
          commandPath: path)
      }
      node = next
      path.append(next.name)
    }
    // Only options were given after a group with a default command: they are the default's.
    if node.isGroup, let name = node.defaultSubcommand, let fallback = node.subcommand(named: name), !remaining.isEmpty,
      !remaining.contains(where: { $0 == "--help" || $0 == "-h" })
    {
      path.append(fallback.name)
      node = fallback
    }
    return (path, node, remaining)
  }

  private func store(
    _ text: String, for option: OptionSpec, into parsed: inout ParsedArguments, path: [String],
    origin: ValueOrigin = .commandLine
  ) throws(UsageError) {
    let type = option.valueType!
    let label = origin == .environment ? "\(option.environment!) (for --\(option.long))" : "--\(option.long)"
    let pieces = option.splitsOnCommas ? text.split(separator: ",", omittingEmptySubsequences: true).map(String.init) : [text]
    if pieces.isEmpty { throw UsageError("\(label): expected \(type.expectation), got ''", commandPath: path) }
    if parsed.origins[option.long] == .defaultValue || (origin == .commandLine && parsed.origins[option.long] == .environment) {
      parsed.values[option.long] = []
    }
    if !option.isList { parsed.values[option.long] = [] }
    for piece in pieces {
      guard let value = ArgumentValue.convert(piece, to: type) else {
        var message = "\(label): expected \(type.expectation), got '\(piece)'"
        if case .choice(let values) = type { message += Suggestion.didYouMean(piece, among: values) }
        throw UsageError(message, commandPath: path)
      }
      parsed.values[option.long, default: []].append(value)
    }
    parsed.origins[option.long] = origin
  }

  private func assignPositionals(
    _ texts: [String], of command: CommandSpec, into parsed: inout ParsedArguments, path: [String]
  ) throws(UsageError) {
    var texts = texts[...]
    let specs = command.positionals
    for (position, spec) in specs.enumerated() {
      let laterRequired = specs[(position + 1)...].filter(\.isRequired).count
      var taken: ArraySlice<String>
      if spec.isVariadic {
        taken = texts.dropLast(laterRequired)
      } else if texts.count > laterRequired || (spec.isRequired && !texts.isEmpty) {
        // A required one takes a value left to right, so the one reported missing is the last.
        taken = texts.prefix(1)
      } else {
        taken = []
      }
      texts = texts.dropFirst(taken.count)
      if taken.isEmpty {
        if spec.isRequired {
          throw UsageError("missing required argument \(spec.usage)", commandPath: path)
        }
        continue
      }
      for text in taken {
        guard let value = ArgumentValue.convert(text, to: spec.type) else {
          throw UsageError("<\(spec.name)>: expected \(spec.type.expectation), got '\(text)'", commandPath: path)
        }
        parsed.values[spec.name, default: []].append(value)
      }
      parsed.origins[spec.name] = .commandLine
    }
    if let extra = texts.first {
      throw UsageError("unexpected argument '\(extra)'", commandPath: path)
    }
  }

  private func applyFallbacks(scope: [OptionSpec], into parsed: inout ParsedArguments, path: [String]) throws(UsageError) {
    for option in scope where parsed.origins[option.long] == nil {
      if let variable = option.environment, let text = environment[variable], !text.isEmpty {
        if option.takesValue {
          try store(text, for: option, into: &parsed, path: path, origin: .environment)
        } else {
          let truthy = ["1", "true", "yes", "on"].contains(text.lowercased())
          parsed.values[option.long] = [.bool(truthy)]
          parsed.origins[option.long] = .environment
        }
        continue
      }
      if option.isRequired {
        let env = option.environment.map { " (or set \($0))" } ?? ""
        throw UsageError(
          "missing required option --\(option.long) <\(option.valueName ?? "value")>\(env)",
          commandPath: path)
      }
      if let text = option.defaultValue {
        try store(text, for: option, into: &parsed, path: path, origin: .defaultValue)
      }
    }
  }

  private func looksLikeOption(_ token: String, in scope: [OptionSpec]) -> Bool {
    guard token.hasPrefix("-"), token != "-" else { return false }
    return !isNegativeNumber(token)
  }

  /// `-5`, `-0.5`, and any other dash then digit (`--shard -1/4`, `--param x=…` aside): no
  /// option's name starts with a digit, so such a token is a value, refused or taken by the
  /// option's own check rather than called a missing value.
  private func isNegativeNumber(_ token: String) -> Bool {
    let rest = token.dropFirst()
    guard token.hasPrefix("-"), let first = rest.first else { return false }
    return (first.isASCII && first.isNumber) || (first == "." && rest.dropFirst().first.map { $0.isASCII && $0.isNumber } == true)
  }

  func commandName(_ path: [String]) -> String {
    ([root.name] + path).joined(separator: " ")
  }
}
