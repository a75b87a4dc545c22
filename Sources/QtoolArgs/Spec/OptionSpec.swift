/// The type of value an option or positional takes; parsing checks it and help names it.
public enum ValueType: Sendable, Equatable {
  case string
  case int
  case double
  /// `YYYY-MM-DD` or an ISO-8601 date-time; always UTC.
  case date
  /// A length of time such as `90s`, `15m`, `4h`, `2d`, `1w`.
  case duration
  /// A bar timeframe such as `1m`, `15m`, `1h`, `1d`, `1w`, `1M`.
  case timeframe
  /// One of a fixed set of lower-case words.
  case choice([String])
  case path(PathKind)

  /// How an error message describes the expected form.
  var expectation: String {
    switch self {
    case .string: return "a string"
    case .int: return "a whole number like 42"
    case .double: return "a number like 0.25"
    case .date: return "a date like 2024-01-31"
    case .duration: return "a duration like 15m, 4h or 2d"
    case .timeframe: return "a timeframe like 1m, 15m, 1h, 1d, 1w or 1M"
    case .choice(let values): return "one of " + values.joined(separator: ", ")
    case .path(.directory): return "a directory path"
    case .path(.namedFile): return "a file path (here - cannot stand for standard input or output)"
    case .path: return "a file path"
    }
  }
}

public enum PathKind: Sendable, Equatable {
  /// A file, or `-` for standard input or output.
  case file(extensions: [String])
  /// A file qtool must open by name: a SQLite store, a file read again later (a secret at each
  /// delivery), a key a TLS library loads. `-` is refused while parsing.
  case namedFile(extensions: [String])
  /// A directory; `-` is refused while parsing.
  case directory
}

/// What a shell should offer when completing a value.
public enum CompletionKind: Sendable, Equatable {
  case none
  case choices([String])
  case files(extensions: [String])
  case directories
  /// Ask qtool itself: the script runs `qtool __complete <topic>` (e.g. `datasets`).
  case dynamic(String)
}

/// A named option: `--long`, optionally `-s`, either a flag or one that takes a value.
public struct OptionSpec: Sendable {
  public enum Kind: Sendable, Equatable {
    /// A switch; `negatable` adds `--no-<name>`.
    case flag(negatable: Bool)
    /// Takes a value; `list` accumulates repeated and comma-separated values.
    case value(ValueType, list: Bool)
    /// Takes a value each time it is given; values accumulate and are never split on commas.
    case repeatable(ValueType)
  }

  public var long: String
  public var short: Character?
  public var kind: Kind
  public var valueName: String?
  public var help: String
  public var defaultValue: String?
  public var environment: String?
  public var isRequired: Bool
  public var isHidden: Bool
  public var aliases: [String]
  public var completion: CompletionKind

  public init(
    long: String, short: Character? = nil, kind: Kind, valueName: String? = nil,
    help: String, defaultValue: String? = nil, environment: String? = nil,
    isRequired: Bool = false, isHidden: Bool = false, aliases: [String] = [],
    completion: CompletionKind? = nil
  ) {
    self.long = long
    self.short = short
    self.kind = kind
    self.valueName = valueName
    self.help = help
    self.defaultValue = defaultValue
    self.environment = environment
    self.isRequired = isRequired
    self.isHidden = isHidden
    self.aliases = aliases
    self.completion = completion ?? OptionSpec.defaultCompletion(for: kind)
  }

  /// A switch such as `--json`.
  public static func flag(
    _ long: String, short: Character? = nil, help: String, negatable: Bool = false,
    environment: String? = nil, isHidden: Bool = false
  ) -> OptionSpec {
    OptionSpec(
      long: long, short: short, kind: .flag(negatable: negatable), help: help,
      environment: environment, isHidden: isHidden)
  }

  /// An option given any number of times, each value kept whole (commas included).
  public static func repeatable(
    _ long: String, _ type: ValueType = .string, valueName: String, help: String
  ) -> OptionSpec {
    OptionSpec(long: long, kind: .repeatable(type), valueName: valueName, help: help)
  }

  /// An option that takes one value (or several, with `list: true`).
  public static func value(
    _ long: String, short: Character? = nil, _ type: ValueType = .string, valueName: String,
    help: String, defaultValue: String? = nil, environment: String? = nil,
    required: Bool = false, list: Bool = false, isHidden: Bool = false,
    completion: CompletionKind? = nil
  ) -> OptionSpec {
    OptionSpec(
      long: long, short: short, kind: .value(type, list: list), valueName: valueName,
      help: help, defaultValue: defaultValue, environment: environment,
      isRequired: required, isHidden: isHidden, completion: completion)
  }

  public var takesValue: Bool {
    switch kind {
    case .value, .repeatable: return true
    case .flag: return false
    }
  }

  public var isNegatable: Bool {
    if case .flag(negatable: true) = kind { return true }
    return false
  }

  public var valueType: ValueType? {
    switch kind {
    case .value(let type, _), .repeatable(let type): return type
    case .flag: return nil
    }
  }

  /// Values accumulate (repeated or comma-separated).
  public var isList: Bool {
    switch kind {
    case .value(_, list: true), .repeatable: return true
    default: return false
    }
  }

  /// Commas separate values of a list option; a repeatable one keeps them.
  var splitsOnCommas: Bool {
    if case .value(_, list: true) = kind { return true }
    return false
  }

  static func defaultCompletion(for kind: Kind) -> CompletionKind {
    switch kind {
    case .value(let type, _), .repeatable(let type): return type.defaultCompletion
    case .flag: return .none
    }
  }
}

extension ValueType {
  var defaultCompletion: CompletionKind {
    switch self {
    case .choice(let values): return .choices(values)
    case .path(.directory): return .directories
    case .path(.file(let extensions)), .path(.namedFile(let extensions)): return .files(extensions: extensions)
    case .timeframe: return .choices(["1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w", "1M"])
    default: return .none
    }
  }
}

/// A positional argument.
public struct PositionalSpec: Sendable {
  public enum Arity: Sendable, Equatable { case required, optional, variadic, variadicOptional }

  public var name: String
  public var type: ValueType
  public var arity: Arity
  public var help: String
  public var completion: CompletionKind

  public init(
    _ name: String, _ type: ValueType = .string, arity: Arity = .required, help: String,
    completion: CompletionKind? = nil
  ) {
    self.name = name
    self.type = type
    self.arity = arity
    self.help = help
    self.completion = completion ?? type.defaultCompletion
  }

  var isVariadic: Bool { arity == .variadic || arity == .variadicOptional }
  var isRequired: Bool { arity == .required || arity == .variadic }

  /// `<file>`, `[<file>]`, `<file>...`, `[<file>...]`
  var usage: String {
    switch arity {
    case .required: return "<\(name)>"
    case .optional: return "[<\(name)>]"
    case .variadic: return "<\(name)>..."
    case .variadicOptional: return "[<\(name)>...]"
    }
  }
}
