import Foundation
import QtoolCore
import QtoolEngine
import Testing

@testable import QtoolServer

/// The OpenAPI document is written by hand: these hold it to the routes and the Swift types.
@Suite struct OpenAPITests {
  nonisolated(unsafe) static let document: [String: Any] = (try? JSONSerialization.jsonObject(with: Data(OpenAPIDocument.json.utf8)) as? [String: Any]) ?? [:]

  static var operations: [(method: String, path: String, operation: [String: Any])] {
    let paths = document["paths"] as? [String: [String: Any]] ?? [:]
    return paths.flatMap { path, methods in
      methods.compactMap { method, value in (value as? [String: Any]).map { (method.uppercased(), path, $0) } }
    }
  }

  @Test func theEmbeddedDocumentIsTheCommittedFile() throws {
    let file = try String(contentsOf: packageRoot.appendingPathComponent("Sources/QtoolServer/OpenAPI/openapi.json"), encoding: .utf8)
    #expect(file.trimmingCharacters(in: .newlines) == OpenAPIDocument.json, "run `make generate` after editing openapi.json")
    #expect(Self.document["openapi"] as? String == "3.1.0")
  }

  @Test func theRoutesAreTheOperationsOfTheDocument() {
    let routes = Set(APIService.allRoutes.map { "\($0.method) \($0.pattern)" })
    let documented = Set(Self.operations.map { "\($0.method) \($0.path)" })
    #expect(routes.subtracting(documented).sorted() == [], "routes the document lacks")
    #expect(documented.subtracting(routes).sorted() == [], "operations without a route")
    #expect(routes.count == APIService.allRoutes.count, "a route is declared twice")
  }

  @Test func operationIDsAndScopesMatchTheRouteTable() {
    var seen = Set<String>()
    for route in APIService.allRoutes {
      guard let (_, _, operation) = Self.operations.first(where: { $0.method == route.method && $0.path == route.pattern }) else { continue }
      #expect(operation["operationId"] as? String == route.operationID, "\(route.method) \(route.pattern)")
      #expect(seen.insert(route.operationID).inserted, "operationId \(route.operationID) twice")
      #expect(operation["x-scope"] as? String == route.scope?.rawValue, "\(route.method) \(route.pattern) scope")
      let open = (operation["security"] as? [Any])?.isEmpty == true
      #expect(open == !route.authenticated, "\(route.method) \(route.pattern): security says \(open ? "open" : "needs credentials")")
    }
  }

  /// Each schema with examples and the Swift type they must decode into.
  static let types: [String: @Sendable (Data) throws -> Data] = {
    func roundTrip<T: Codable>(_ type: T.Type) -> @Sendable (Data) throws -> Data {
      { data in try APIJSON.encoder.encode(try JSONDecoder().decode(T.self, from: data)) }
    }
    return [
      "LoginRequest": roundTrip(AuthRoutes.Login.self), "RefreshRequest": roundTrip(AuthRoutes.Refresh.self),
      "PreprocessRequest": roundTrip(PreprocessRequest.self), "DownloadRequest": roundTrip(DownloadRequest.self),
      "BulkRequest": roundTrip(DataRoutes.BulkRequest.self), "SpecBody": roundTrip(StrategyRoutes.SpecBody.self),
      "StrategyReference": roundTrip(StrategyReference.self), "CloneRequest": roundTrip(StrategyRoutes.CloneBody.self),
      "BacktestRequest": roundTrip(BacktestRequest.self), "GridRequest": roundTrip(GridRequest.self), "ErrorEnvelope": roundTrip(ErrorEnvelope.self),
      "TrainRequest": roundTrip(TrainRequest.self), "PredictRequest": roundTrip(TrainRoutes.PredictBody.self),
      "StartRequest": roundTrip(LiveRoutes.StartBody.self), "StopRequest": roundTrip(LiveRoutes.StopBody.self),
      "ChannelRequest": roundTrip(ChannelRequest.self), "Run": roundTrip(RunInfo.self), "Position": roundTrip(PositionInfo.self),
      "EquityPoint": roundTrip(AccountDetail.EquityPoint.self), "RunLog": roundTrip(RunLog.self),
    ]
  }()

  /// The schema of `Envelope`'s data in an answer's schema, and whether it is a page of them.
  static func enveloped(_ schema: [String: Any]) -> (String, Bool)? {
    func name(_ value: Any?) -> String? { ((value as? [String: Any])?["$ref"] as? String).map { String($0.split(separator: "/").last!) } }
    guard let parts = schema["allOf"] as? [[String: Any]], name(parts.first) == "Envelope",
      let data = (parts.last?["properties"] as? [String: Any])?["data"] as? [String: Any]
    else { return nil }
    if let ref = name(data) { return (ref, false) }
    guard let pageParts = data["allOf"] as? [[String: Any]], name(pageParts.first) == "Page",
      let items = ((pageParts.last?["properties"] as? [String: Any])?["items"] as? [String: Any])?["items"], let ref = name(items)
    else { return nil }
    return (ref, true)
  }

  /// Every example, with the schema it illustrates.
  static var examples: [(where: String, schema: String, example: Any)] {
    var found: [(String, String, Any)] = []
    func visit(_ value: Any, _ place: String) {
      if let object = value as? [String: Any] {
        if let example = object["example"], let schema = object["schema"] as? [String: Any] {
          if let ref = schema["$ref"] as? String {
            found.append((place, String(ref.split(separator: "/").last!), example))
          } else if let (ref, paged) = Self.enveloped(schema), let data = (example as? [String: Any])?["data"] {
            // An answer's example: its data (or each item of its page) illustrates the schema in the envelope.
            let values = paged ? ((data as? [String: Any])?["items"] as? [Any] ?? []) : [data]
            for (index, value) in values.enumerated() { found.append((place + "/data" + (paged ? "/items/\(index)" : ""), ref, value)) }
          }
        }
        for (key, inner) in object { visit(inner, place + "/" + key) }
      } else if let array = value as? [Any] {
        for (index, inner) in array.enumerated() { visit(inner, place + "/\(index)") }
      }
    }
    visit(document, "")
    return found
  }

  @Test func everyExampleDecodesIntoItsTypeAndReencodesEqual() throws {
    let examples = Self.examples
    #expect(examples.count >= 10)
    for (place, schema, example) in examples {
      guard let roundTrip = Self.types[schema] else {
        Issue.record("\(place): no Swift type for the examples of \(schema)")
        continue
      }
      let data = try JSONSerialization.data(withJSONObject: example, options: [.sortedKeys, .fragmentsAllowed])
      let again = try roundTrip(data)
      let before = try JSONDecoder().decode(JSONValue.self, from: data)
      let after = try JSONDecoder().decode(JSONValue.self, from: again)
      #expect(before == after, "\(place) (\(schema)):\n\(String(decoding: data, as: UTF8.self))\n\(String(decoding: again, as: UTF8.self))")
    }
  }
}
