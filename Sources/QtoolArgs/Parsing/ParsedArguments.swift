import Foundation

/// Where a value came from; `config show` and diagnostics report it.
public enum ValueOrigin: String, Sendable, Equatable {
  case commandLine = "flag"
  case environment = "env"
  case defaultValue = "default"
}

/// The outcome of parsing a command line against the tree.
public enum ParseOutcome: Sendable {
  /// Run the leaf command.
  case run(ParsedArguments)
  /// `--help` or `-h` was given: show help for the command at this path.
  case help([String])
  /// `--version` was given at the top level.
  case version
}

/// The typed values of one invocation, keyed by option long name or positional name.
public struct ParsedArguments: Sendable {
  /// Names from the root (excluded) to the leaf, e.g. `["data", "import"]`.
  public let commandPath: [String]
  public let command: CommandSpec
  var values: [String: [ArgumentValue]]
  var origins: [String: ValueOrigin]

  init(commandPath: [String], command: CommandSpec) {
    self.commandPath = commandPath
    self.command = command
    self.values = [:]
    self.origins = [:]
  }

  public init(
    commandPath: [String], command: CommandSpec, values: [String: [ArgumentValue]],
    origins: [String: ValueOrigin] = [:]
  ) {
    self.commandPath = commandPath
    self.command = command
    self.values = values
    self.origins = origins
  }

  /// Where the value of `name` came from, or nil when it has none.
  public func origin(_ name: String) -> ValueOrigin? { origins[name] }

  /// True when the user gave `name` on the command line or through its environment variable.
  public func isGiven(_ name: String) -> Bool {
    guard let origin = origins[name] else { return false }
    return origin != .defaultValue
  }

  public func string(_ name: String) -> String? {
    values[name]?.last.flatMap { if case .string(let s) = $0 { return s } else { return nil } }
  }

  public func strings(_ name: String) -> [String] {
    (values[name] ?? []).compactMap { if case .string(let s) = $0 { return s } else { return nil } }
  }

  public func int(_ name: String) -> Int? {
    values[name]?.last.flatMap { if case .int(let v) = $0 { return v } else { return nil } }
  }

  public func double(_ name: String) -> Double? {
    values[name]?.last.flatMap {
      switch $0 {
      case .double(let v): return v
      case .int(let v): return Double(v)
      default: return nil
      }
    }
  }

  public func date(_ name: String) -> Date? {
    values[name]?.last.flatMap { if case .date(let v) = $0 { return v } else { return nil } }
  }

  /// Seconds.
  public func duration(_ name: String) -> Int? {
    values[name]?.last.flatMap { if case .duration(let v) = $0 { return v } else { return nil } }
  }

  /// How many times a flag was given (`-vv` is 2); negations reset the count.
  public func count(_ name: String) -> Int {
    var total = 0
    for value in values[name] ?? [] {
      if case .bool(let on) = value { total = on ? total + 1 : 0 }
    }
    return total
  }

  /// A flag's state: false when absent or negated with `--no-<name>`.
  public func flag(_ name: String) -> Bool {
    values[name]?.last.map { if case .bool(let v) = $0 { return v } else { return false } } ?? false
  }
}
