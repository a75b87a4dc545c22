import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Yams

/// A spec as loaded: its text (hashed for versions and fingerprints) and where it came from.
public struct LoadedSpec: Sendable {
  public var spec: StrategySpec
  public var text: String
  public var hash: String
  /// The file path, or `strategy NAME vN` for a registered one.
  public var origin: String
}

/// Which strategy an operation runs: a registered one by name (and optional version), or a
/// spec given inline. In JSON: `{"name": "goog-sma", "version": 3}` or `{"spec": "<YAML or
/// JSON text>"}` (a spec object is accepted too). A request never names a file: only the CLI
/// reads files, and it sends their text.
public enum StrategyReference: Codable, Sendable, Equatable {
  case registered(name: String, version: Int?)
  /// `origin` says where the text came from (a file's path), for messages.
  case inline(spec: String, origin: String?)

  enum CodingKeys: String, CodingKey { case name, version, spec, origin }

  public init(from decoder: any Decoder) throws {
    if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
      self = .registered(name: name, version: nil)
      return
    }
    let container = try decoder.container(keyedBy: CodingKeys.self)
    if let name = try container.decodeIfPresent(String.self, forKey: .name) {
      self = .registered(name: name, version: try container.decodeIfPresent(Int.self, forKey: .version))
    } else if let text = try? container.decode(String.self, forKey: .spec) {
      self = .inline(spec: text, origin: try container.decodeIfPresent(String.self, forKey: .origin))
    } else if let object = try container.decodeIfPresent(JSONValue.self, forKey: .spec) {
      self = .inline(spec: String(decoding: try JSONCoding.encoder.encode(object), as: UTF8.self), origin: nil)
    } else {
      throw DecodingError.keyNotFound(
        CodingKeys.name, DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "a strategy is {\"name\": …} or {\"spec\": …}"))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .registered(let name, let version):
      try container.encode(name, forKey: .name)
      try container.encodeIfPresent(version, forKey: .version)
    case .inline(let text, let origin):
      try container.encode(text, forKey: .spec)
      try container.encodeIfPresent(origin, forKey: .origin)
    }
  }

  /// How messages name it.
  public var label: String {
    switch self {
    case .registered(let name, let version): return version.map { "\(name)@\($0)" } ?? name
    case .inline(_, let origin): return origin ?? "inline spec"
    }
  }
}

/// Reads strategy specs: parses YAML or JSON text, or takes a registered version from the store.
public enum StrategyLoader {
  static let sections: [String: [String]] = [
    "": ["name", "description", "universe", "params", "rules", "sizing", "costs", "risk", "execution", "signals", "benchmark", "portfolio"],
    "universe": ["symbols", "timeframe", "source", "dataset"],
    "rules": ["entry", "exit", "short_entry", "short_exit"],
    "sizing": ["fraction", "units", "notional", "max_units", "max_notional"],
    "costs": ["commission", "commission_fixed", "slippage_bps"],
    "risk": ["stop_loss", "take_profit", "trailing_stop", "max_drawdown_halt"],
    "execution": ["fill", "units", "close_at_end", "capital"],
    "signals": ["strong", "medium", "weak", "strength", "emit_hold"],
    "portfolio": ["rank", "top", "rebalance"],
  ]

  /// The spec a reference names: a registered strategy's version (the latest unless pinned)
  /// or an inline spec. Reads no file and writes nothing; the CLI turns a file into an inline
  /// spec, and registers a changed file's text as a new version itself.
  public static func resolve(_ reference: StrategyReference, database: QtoolDatabase) throws -> LoadedSpec {
    switch reference {
    case .inline(let text, let origin):
      return try parse(text, origin: origin ?? "the inline spec")
    case .registered(let name, let version):
      let versions = try database.strategyVersions(name: name)
      guard let chosen = version.map({ wanted in versions.first { $0.version == wanted } }) ?? versions.last else {
        throw OperationError.notFound(
          "strategy \(name) has no version \(version ?? 0); it has versions 1 to \(versions.count)", code: "strategy_version_not_found",
          details: ["strategy": .string(name), "version": JSONValue(version ?? 0)], hint: "`qtool strategy versions \(name)` lists them")
      }
      return try parse(chosen.specText, origin: "strategy \(name) v\(chosen.version)")
    }
  }

  public static func parse(_ text: String, origin: String) throws -> LoadedSpec {
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch {
      throw SpecError.invalid("\(origin): not valid YAML or JSON: \(error)")
    }
    guard let node, case .mapping(let root) = node else { throw SpecError.invalid("\(origin): a spec is a mapping (name:, universe:, rules:, …)") }
    try checkKeys(root, section: "", origin: origin)
    let spec: StrategySpec
    do {
      spec = try YAMLDecoder().decode(StrategySpec.self, from: text)
    } catch let error as DecodingError {
      throw SpecError.invalid("\(origin)\(position(of: error, in: node)): \(describe(error, in: node))")
    }
    // Rules are parsed here too, so every error is found before a run starts.
    do {
      try Identifier.check(spec.name, as: .strategy)
      for symbol in spec.universe.symbols { try Identifier.check(symbol, as: .symbol) }
    } catch let error as InvalidName {
      throw SpecError.invalid("\(origin): \(error.message)")
    }
    do {
      _ = try CompiledStrategy(spec, origin: origin)
    } catch SpecError.field(let path, _, let message) {
      // A value out of its range is said where it is written, as a value of the wrong type is.
      let keys = path.split(separator: ".").map { SpecPathKey(stringValue: String($0)) }
      let mark = Self.node(at: keys, in: node).mark.map { ":\($0.line):\($0.column)" } ?? ""
      throw SpecError.invalid("\(origin)\(mark): \(path) \(message)")
    }
    return LoadedSpec(spec: spec, text: text, hash: ContentHash.sha256Hex(Data(text.utf8)), origin: origin)
  }

  static func checkKeys(_ mapping: Node.Mapping, section: String, origin: String) throws {
    guard let known = sections[section] else { return }
    for (key, value) in mapping {
      guard let name = key.string else { continue }
      guard known.contains(name) else {
        let place = section.isEmpty ? name : "\(section).\(name)"
        if name.contains(")") || name.contains("(") {
          // `rules: { entry: rsi(close, 14) < 30 }`: YAML splits a { } mapping at every comma.
          throw SpecError.invalid(
            "\(origin): '\(section)' is written as { … } and a rule inside it has a comma, which YAML reads as the next key; quote the rule (entry: \"rsi(close, 14) < 30\") or write one rule per line"
          )
        }
        throw SpecError.invalid(
          "\(origin): unknown key '\(place)'" + (Similarity.closest(to: name, among: known).map { " — did you mean '\($0)'?" } ?? "")
            + "; \(section.isEmpty ? "the top-level keys" : "the keys of \(section)") are \(known.joined(separator: ", "))")
      }
      if section.isEmpty, case .mapping(let inner) = value, name != "params" { try checkKeys(inner, section: name, origin: origin) }
    }
  }

  /// The node at `path` in the document, as far as the path goes.
  static func node(at path: [any CodingKey], in root: Node) -> Node {
    var node = root
    for key in path {
      if let index = key.intValue, case .sequence(let items) = node, index < items.count {
        node = items[index]
      } else if case .mapping(let mapping) = node, let child = mapping[key.stringValue] {
        node = child
      } else {
        break
      }
    }
    return node
  }

  /// `:12:18`, where the value the error is about starts.
  static func position(of error: DecodingError, in root: Node) -> String {
    let context: DecodingError.Context
    switch error {
    case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c), .keyNotFound(_, let c): context = c
    @unknown default: return ""
    }
    return node(at: context.codingPath, in: root).mark.map { ":\($0.line):\($0.column)" } ?? ""
  }

  static func describe(_ error: DecodingError, in root: Node) -> String {
    func path(_ context: DecodingError.Context) -> String {
      context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".").replacingOccurrences(of: ".[", with: "[")
    }
    func expected(_ type: Any.Type) -> String {
      switch "\(type)" {
      case "Double", "Float": return "a number"
      case "Int", "Int64": return "a whole number"
      case "String": return "text"
      case "Bool": return "true or false"
      case let name where name.hasPrefix("Array"): return "a list"
      default: return "a mapping"
      }
    }
    func got(_ context: DecodingError.Context) -> String {
      let found = node(at: context.codingPath, in: root)
      if let scalar = found.scalar { return " ('\(scalar.string.prefix(60))')" }
      if case .sequence = found { return " (a list)" }
      if case .mapping = found { return " (a mapping)" }
      return ""
    }
    switch error {
    case .keyNotFound(let key, let context):
      let parent = path(context)
      return "missing '\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)'"
    case .typeMismatch(let type, let context):
      return "'\(path(context))' must be \(expected(type))" + got(context)
    case .valueNotFound(let type, let context):
      return "'\(path(context))' must be \(expected(type)), not empty"
    case .dataCorrupted(let context):
      return "'\(path(context))': \(context.debugDescription)" + got(context)
    @unknown default:
      return "\(error)"
    }
  }

}

/// A key of a spec path (`risk.stop_loss`), to find where it is written.
struct SpecPathKey: CodingKey {
  var stringValue: String
  var intValue: Int? { nil }
  init(stringValue: String) { self.stringValue = stringValue }
  init?(intValue: Int) { nil }
}
