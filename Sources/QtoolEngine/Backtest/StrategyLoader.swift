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

/// Reads strategy specs from YAML or JSON files, or from the store by name.
public enum StrategyLoader {
  static let sections: [String: [String]] = [
    "": ["name", "description", "universe", "params", "rules", "sizing", "costs", "risk", "execution", "signals", "benchmark", "portfolio"],
    "universe": ["symbols", "timeframe", "source", "dataset"],
    "rules": ["entry", "exit", "short_entry", "short_exit"],
    "sizing": ["fraction", "units", "notional", "max_units", "max_notional"],
    "costs": ["commission", "commission_fixed", "slippage_bps"],
    "risk": ["stop_loss", "take_profit", "trailing_stop", "max_drawdown_halt"],
    "execution": ["fill", "units", "close_at_end", "capital"],
    "signals": ["strong", "medium", "weak"],
    "portfolio": ["rank", "top", "rebalance"],
  ]

  /// A path to a file, else the name of a registered strategy (its latest version).
  public static func load(_ reference: String, database: QtoolDatabase?) throws -> LoadedSpec {
    if FileManager.default.fileExists(atPath: reference) {
      guard let text = try? String(contentsOfFile: reference, encoding: .utf8) else {
        throw OperationError.notFound("cannot read \(reference) as UTF-8 text")
      }
      return try parse(text, origin: reference)
    }
    if reference.hasSuffix(".yaml") || reference.hasSuffix(".yml") || reference.hasSuffix(".json") || reference.contains("/") {
      throw OperationError.notFound("no spec file \(reference)")
    }
    guard let database else { throw StrategyStoreError.notFound(reference, suggestion: nil) }
    let versions = try database.strategyVersions(name: reference)
    let latest = versions.last!
    if let path = try database.strategy(named: reference).path, let text = try? String(contentsOfFile: path, encoding: .utf8) {
      // A registered spec's file may have been edited: every change is a new version.
      let hash = ContentHash.sha256Hex(Data(text.utf8))
      if hash != latest.hash {
        let loaded = try parse(text, origin: path)
        try database.registerStrategy(name: reference, type: "rules", path: path, specText: text, hash: hash)
        return loaded
      }
    }
    return try parse(latest.specText, origin: "strategy \(reference) v\(latest.version)")
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
      throw SpecError.invalid("\(origin): \(describe(error))")
    }
    // Rules are parsed here too, so every error is found before a run starts.
    _ = try CompiledStrategy(spec, origin: origin)
    return LoadedSpec(spec: spec, text: text, hash: ContentHash.sha256Hex(Data(text.utf8)), origin: origin)
  }

  static func checkKeys(_ mapping: Node.Mapping, section: String, origin: String) throws {
    guard let known = sections[section] else { return }
    for (key, value) in mapping {
      guard let name = key.string else { continue }
      guard known.contains(name) else {
        let place = section.isEmpty ? name : "\(section).\(name)"
        throw SpecError.invalid(
          "\(origin): unknown key '\(place)'" + (Similarity.closest(to: name, among: known).map { " — did you mean '\($0)'?" } ?? "")
            + "; \(section.isEmpty ? "top-level keys" : section) are \(known.joined(separator: ", "))")
      }
      if section.isEmpty, case .mapping(let inner) = value, name != "params" { try checkKeys(inner, section: name, origin: origin) }
    }
  }

  static func describe(_ error: DecodingError) -> String {
    func path(_ context: DecodingError.Context) -> String {
      context.codingPath.map(\.stringValue).filter { !$0.hasPrefix("Index") }.joined(separator: ".")
    }
    switch error {
    case .keyNotFound(let key, let context):
      let parent = path(context)
      return "missing '\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)'"
    case .typeMismatch(_, let context), .valueNotFound(_, let context):
      return "'\(path(context))' has the wrong type: \(context.debugDescription)"
    case .dataCorrupted(let context):
      return "'\(path(context))': \(context.debugDescription)"
    @unknown default:
      return "\(error)"
    }
  }
}
