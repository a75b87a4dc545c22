import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Yams

/// A model spec as loaded: its text (hashed per version) and where it came from.
public struct LoadedModelSpec: Sendable {
  public var spec: ModelSpec
  public var text: String
  public var hash: String
  /// The file path, or `model NAME` for a registered one.
  public var origin: String
  /// The registered name's file, when it came from one.
  public var path: String?
}

/// Which model spec an operation trains: a registered model by name, or a spec given inline
/// (`{"name": "goog-up"}` or `{"spec": "<YAML or JSON text>"}`). A request never names a file.
public enum ModelReference: Codable, Sendable, Equatable {
  case registered(name: String)
  case inline(spec: String, origin: String?)

  enum CodingKeys: String, CodingKey { case name, spec, origin }

  public init(from decoder: any Decoder) throws {
    if let single = try? decoder.singleValueContainer(), let name = try? single.decode(String.self) {
      self = .registered(name: name)
      return
    }
    let container = try decoder.container(keyedBy: CodingKeys.self)
    if let name = try container.decodeIfPresent(String.self, forKey: .name) {
      self = .registered(name: name)
    } else if let text = try? container.decode(String.self, forKey: .spec) {
      self = .inline(spec: text, origin: try container.decodeIfPresent(String.self, forKey: .origin))
    } else if let object = try container.decodeIfPresent(JSONValue.self, forKey: .spec) {
      self = .inline(spec: String(decoding: try JSONCoding.encoder.encode(object), as: UTF8.self), origin: nil)
    } else {
      throw DecodingError.keyNotFound(
        CodingKeys.name, DecodingError.Context(codingPath: decoder.codingPath, debugDescription: "a model is {\"name\": …} or {\"spec\": …}"))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    switch self {
    case .registered(let name): try container.encode(name, forKey: .name)
    case .inline(let text, let origin):
      try container.encode(text, forKey: .spec)
      try container.encodeIfPresent(origin, forKey: .origin)
    }
  }
}

/// Reads model specs: YAML or JSON text, features kept in the order written.
public enum ModelLoader {
  static let sections: [String: [String]] = [
    "": ["name", "description", "dataset", "universe", "params", "features", "label", "model", "split", "walk_forward"],
    "universe": ["symbols", "timeframe"],
    "label": ["expr", "kind"],
    "split": ["train", "valid", "test", "purge"],
    "walk_forward": ["train", "valid", "test", "step", "expanding", "purge"],
  ]

  public static func resolve(_ reference: ModelReference, database: QtoolDatabase) throws -> LoadedModelSpec {
    switch reference {
    case .inline(let text, let origin): return try parse(text, origin: origin ?? "the inline spec")
    case .registered(let name):
      let record = try database.model(named: name)
      var loaded = try parse(record.specText, origin: "model \(name)")
      loaded.path = record.path
      return loaded
    }
  }

  public static func parse(_ text: String, origin: String) throws -> LoadedModelSpec {
    func invalid(_ message: String) -> ModelSpecError { .invalid("\(origin): \(message)") }
    let node: Node?
    do {
      node = try Yams.compose(yaml: text)
    } catch {
      throw invalid("not valid YAML or JSON: \(error)")
    }
    guard let node, case .mapping(let root) = node else { throw invalid("a model spec is a mapping (name:, dataset:, features:, label:, model:, …)") }
    for (key, value) in root {
      guard let name = key.string else { continue }
      guard let known = sections[""], known.contains(name) else {
        throw invalid(
          "unknown key '\(name)'" + (Similarity.closest(to: name, among: sections[""]!).map { " — did you mean '\($0)'?" } ?? "")
            + "; top-level keys are \(sections[""]!.joined(separator: ", "))")
      }
      if let inner = sections[name], case .mapping(let mapping) = value {
        for (innerKey, _) in mapping {
          guard let innerName = innerKey.string, !inner.contains(innerName) else { continue }
          if innerName.contains("(") || innerName.contains(")") {
            throw invalid(
              "'\(name)' is written as { … } and an expression inside it has a comma, which YAML reads as the next key; quote the expression or write one key per line"
            )
          }
          throw invalid(
            "unknown key '\(name).\(innerName)'" + (Similarity.closest(to: innerName, among: inner).map { " — did you mean '\($0)'?" } ?? "")
              + "; \(name) has \(inner.joined(separator: ", "))")
        }
      }
    }
    var spec: ModelSpec
    do {
      spec = try YAMLDecoder().decode(ModelSpec.self, from: text)
    } catch let error as DecodingError {
      // At the spot in the document, as a strategy spec's errors are.
      throw ModelSpecError.invalid("\(origin)\(StrategyLoader.position(of: error, in: node)): \(StrategyLoader.describe(error, in: node))")
    }
    // The features' order is the columns' order: take it from the document, not the decoder.
    if let features = root["features"], case .mapping(let mapping) = features {
      spec.features = try mapping.map { key, value in
        guard let name = key.string, let expr = value.string else {
          throw invalid("features: each feature is name: expression, e.g. rsi14: rsi(close, 14)")
        }
        return ModelSpec.Feature(name: name, expr: expr)
      }
    }
    if let universe = spec.universe {
      for symbol in universe.symbols {
        do { try Identifier.check(symbol, as: .symbol) } catch let error as InvalidName { throw invalid(error.message) }
      }
      guard !universe.symbols.isEmpty else { throw invalid("universe.symbols lists no symbol") }
      guard spec.dataset == nil else { throw invalid("give dataset or universe, not both") }
    } else if spec.dataset == nil {
      throw invalid("the spec needs a dataset (e.g. dataset: GOOG-1d) or a universe (symbols and timeframe)")
    }
    _ = try CompiledModel(spec, origin: origin)
    if spec.walkForward != nil { _ = try CompiledModel(spec, walkForward: true, origin: origin) }
    return LoadedModelSpec(spec: spec, text: text, hash: ContentHash.sha256Hex(Data(text.utf8)), origin: origin, path: nil)
  }
}
