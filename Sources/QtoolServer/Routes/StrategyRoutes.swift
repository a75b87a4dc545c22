import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

/// `/api/v1/strategies/*`: CRUD, versions, validate, clone. Live control (`:start`, `:stop`,
/// `:pause`, `:resume`) and runner status are in `LiveRoutes`.
enum StrategyRoutes {
  /// A spec to register: its text (YAML or JSON) or a spec object.
  struct SpecBody: Codable, Sendable {
    var name: String?
    var text: String

    enum CodingKeys: String, CodingKey { case name, spec }

    init(from decoder: any Decoder) throws {
      let container = try decoder.container(keyedBy: CodingKeys.self)
      name = try container.decodeIfPresent(String.self, forKey: .name)
      if let text = try? container.decode(String.self, forKey: .spec) {
        self.text = text
      } else {
        let object = try container.decode(JSONValue.self, forKey: .spec)
        guard case .object = object else {
          throw DecodingError.typeMismatch(
            String.self, .init(codingPath: [CodingKeys.spec], debugDescription: "spec is the spec's text or a spec object"))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        text = String(decoding: try encoder.encode(object), as: UTF8.self) + "\n"
      }
    }

    func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encodeIfPresent(name, forKey: .name)
      try container.encode(text, forKey: .spec)
    }
  }

  struct CloneBody: Codable, Sendable {
    var name: String
    var version: Int?
  }

  struct Deleted: Codable, Sendable {
    var deleted: String
  }

  /// The name a spec registers under: the body's, else the spec's own.
  static func specName(_ body: SpecBody) throws -> String {
    if let name = body.name { return name }
    let loaded = try StrategyLoader.parse(body.text, origin: "the spec")
    return loaded.spec.name
  }

  static func strategyName(_ request: APIRequest) throws -> String {
    let name = request.parameter("name")
    try Identifier.check(name, as: .strategy)
    return name
  }

  static var routes: [Route] {
    [
      Route("GET", "/api/v1/strategies", "listStrategies", scope: .strategiesRead) { service, request in
        let (page, size) = try request.paging()
        var strategies = try await service.run { try StrategyOperations($0).list() }
        if let status = request.string("status") { strategies = strategies.filter { $0.status == status } }
        if let type = request.string("type") { strategies = strategies.filter { $0.type == type } }
        return .ok(Page(strategies, page: page, size: size))
      },
      Route("POST", "/api/v1/strategies", "createStrategy", scope: .strategiesWrite) { service, request in
        let body = try request.decode(SpecBody.self)
        let name = try specName(body)
        let created = try await service.run { try StrategyOperations($0).create(name: name, text: body.text) }
        return .created(created, location: "/api/v1/strategies/\(created.name)")
      },
      Route("POST", "/api/v1/strategies/validate", "validateStrategy", scope: .strategiesRead) { service, request in
        let reference = try request.decode(StrategyReference.self)
        return .ok(try await service.run { try StrategyOperations($0).validation(reference) }, message: "valid")
      },
      Route("GET", "/api/v1/strategies/{name}", "getStrategy", scope: .strategiesRead) { service, request in
        let name = try strategyName(request)
        let version = try request.string("version").map { _ in try request.int("version", default: 1, in: 1...1_000_000) }
        return .ok(try await service.run { try StrategyOperations($0).show(name: name, version: version) })
      },
      Route("PUT", "/api/v1/strategies/{name}", "updateStrategy", scope: .strategiesWrite) { service, request in
        let name = try strategyName(request)
        let body = try request.decode(SpecBody.self)
        return .ok(try await service.run { try StrategyOperations($0).update(name: name, text: body.text) }, message: "registered")
      },
      Route("DELETE", "/api/v1/strategies/{name}", "deleteStrategy", scope: .strategiesWrite) { service, request in
        let name = try strategyName(request)
        return .ok(try await service.run { try StrategyOperations($0).delete(name: name) }, message: "deleted")
      },
      Route("GET", "/api/v1/strategies/{name}/versions", "listStrategyVersions", scope: .strategiesRead) { service, request in
        let name = try strategyName(request)
        return .ok(try await service.run { try StrategyOperations($0).versions(name: name) })
      },
      Route("GET", "/api/v1/strategies/{name}/versions/{version}", "getStrategyVersion", scope: .strategiesRead) { service, request in
        let name = try strategyName(request)
        guard let version = Int(request.parameter("version")), version > 0 else {
          throw ServerError.badParameter("version", "a version number, not '\(request.parameter("version"))'")
        }
        return .ok(try await service.run { try StrategyOperations($0).show(name: name, version: version) })
      },
      Route("POST", "/api/v1/strategies/{name}:clone", "cloneStrategy", scope: .strategiesWrite) { service, request in
        let name = try strategyName(request)
        let body = try request.decode(CloneBody.self)
        let created = try await service.run { try StrategyOperations($0).clone(name: name, version: body.version, as: body.name) }
        return .created(created, location: "/api/v1/strategies/\(created.name)")
      },
    ]
  }
}
