import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import QtoolCore
import QtoolEngine
import QtoolStore
import Testing

@testable import QtoolServer

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

let smaSpecText = """
  name: goog-sma
  universe: { symbols: [GOOG], timeframe: 1d }
  params: { fast: 10, slow: 30 }
  rules:
    entry: cross_above(sma(close, fast), sma(close, slow))
    exit: cross_below(sma(close, fast), sma(close, slow))
  """

/// A server on a real store in a temporary directory: GOOG's daily bars imported, a strategy
/// registered, bcrypt at its cheapest, limits as given.
struct ServerFixture {
  let directory: String
  let database: QtoolDatabase
  let settings: Settings
  let service: APIService
  let clock: any WallClock

  static func make(environment extra: [String: String] = [:], clock: any WallClock = SystemClock(), data: Bool = true) async throws -> ServerFixture {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-serve-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    var environment = ["XDG_CONFIG_HOME": directory + "/config", "QTOOL_SERVE_BCRYPT_COST": "4", "QTOOL_SERVE_RATE_DEFAULT": "100000/min"]
    for (key, value) in extra { environment[key] = value }
    let settings = try Settings.resolve(flags: ["home": (directory, .flag)], configFile: nil, environment: environment)
    let database = try QtoolDatabase.open(path: settings.databasePath)
    if data {
      let context = OperationContext(database: database, clock: clock)
      _ = try DataOperations(context).importFiles(
        ImportRequest(files: [packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path], symbol: "GOOG", timeframe: Timeframe("1d")!))
      _ = try StrategyOperations(context).register(name: "goog-sma", path: nil, text: smaSpecText)
    }
    let configuration = try ServerConfiguration.resolve(settings: settings)
    var logger = Logger(label: "qtool.serve")
    logger.logLevel = .critical
    let service = await APIService(database: database, settings: settings, configuration: configuration, clock: clock, logger: logger)
    return ServerFixture(directory: directory, database: database, settings: settings, service: service, clock: clock)
  }

  var auth: AuthOperations { AuthOperations(database: database, clock: clock, bcryptCost: 4) }

  /// An API token with `scopes` (all by default).
  func token(_ scopes: String = "*", name: String? = nil, lifetime: Int64? = nil) throws -> String {
    try auth.createToken(name: name ?? "t" + UUID().uuidString.prefix(8).lowercased(), scopes: try Scope.parseList(scopes), lifetime: lifetime).token
  }

  func cleanUp() { try? FileManager.default.removeItem(atPath: directory) }

  /// Runs `body` against the routes without a socket.
  func withRouter(_ body: @escaping @Sendable (Client) async throws -> Void) async throws {
    let app = try APIServer(service: service).application()
    try await app.test(.router) { client in try await body(Client(client: client)) }
  }
}

/// An answer: status, headers, the body, and the body as JSON when it is.
struct Answer: Sendable {
  var status: Int
  var headers: HTTPFields
  var body: Data
  var text: String { String(decoding: body, as: UTF8.self) }
  var json: JSONValue? { try? JSONDecoder().decode(JSONValue.self, from: body) }
  var object: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
  var data: Any? { object["data"] }
  var dataObject: [String: Any] { data as? [String: Any] ?? [:] }
  var error: [String: Any] { object["error"] as? [String: Any] ?? [:] }
  var errorCode: String? { error["code"] as? String }
  /// The envelope's `data` as a JSON value.
  var dataValue: JSONValue? {
    guard case .object(let fields)? = json else { return nil }
    return fields["data"]
  }
  func header(_ name: String) -> String? { headers[HTTPField.Name(name)!] }
}

/// A test client that sends JSON and bearer tokens.
struct Client: Sendable {
  let client: any TestClientProtocol

  func request(
    _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: String? = nil, body: Data? = nil, headers extra: [String: String] = [:]
  ) async throws -> Answer {
    var headers = HTTPFields()
    if let token { headers[.authorization] = "Bearer \(token)" }
    if json != nil { headers[.contentType] = "application/json" }
    for (name, value) in extra { headers[HTTPField.Name(name)!] = value }
    let payload = json.map { ByteBuffer(string: $0) } ?? body.map { ByteBuffer(data: $0) }
    return try await client.execute(uri: uri, method: method, headers: headers, body: payload) { response in
      Answer(status: Int(response.status.code), headers: response.headers, body: Data(buffer: response.body))
    }
  }

  func get(_ uri: String, token: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
    try await request(.get, uri, token: token, headers: headers)
  }

  func post(_ uri: String, token: String? = nil, json: String? = nil, headers: [String: String] = [:]) async throws -> Answer {
    try await request(.post, uri, token: token, json: json ?? "{}", headers: headers)
  }

  /// Polls a job until it has finished (bounded).
  func waitForJob(_ id: String, token: String, seconds: Double = 30) async throws -> [String: Any] {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      let job = try await get("/api/v1/jobs/\(id)", token: token).dataObject
      if let status = job["status"] as? String, !["queued", "running"].contains(status) { return job }
      try await Task.sleep(for: .milliseconds(20))
    }
    Issue.record("job \(id) did not finish in \(seconds) s")
    return [:]
  }
}
