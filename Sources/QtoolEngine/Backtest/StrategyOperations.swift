import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool strategy …`: scaffold, register, validate and list specs.
public struct StrategyOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  var database: QtoolDatabase { context.database }

  public struct Created: Codable, Sendable {
    public var name: String
    public var path: String
    public var version: Int
    enum CodingKeys: String, CodingKey { case name = "strategy", path, version }
  }

  /// Writes a spec from `template` to `path` (refusing to overwrite) and registers it.
  public func create(name: String, template: String, symbol: String, timeframe: String, path: String, overwrite: Bool) throws -> Created {
    try Identifier.check(name, as: .strategy)
    for symbol in symbol.split(separator: ",") { try Identifier.check(String(symbol), as: .symbol) }
    guard let text = StrategyTemplates.render(template, name: name, symbol: symbol, timeframe: timeframe) else {
      throw OperationError.invalidArgument(
        "unknown template '\(template)'", field: "template", hint: ErrorHint("templates: \(StrategyTemplates.names.joined(separator: ", "))"))
    }
    let loaded = try StrategyLoader.parse(text, origin: path)
    try AtomicFile.write(Data(text.utf8), to: path, overwrite: overwrite)
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    let version = try database.registerStrategy(
      name: name, type: template, path: absolute, specText: text, hash: loaded.hash, at: context.clock.now())
    return Created(name: name, path: absolute, version: version)
  }

  /// Registers `text` as the latest version of `name` (a new version when it changed).
  public func register(name: String, path: String?, text: String) throws -> Created {
    try Identifier.check(name, as: .strategy)
    let loaded = try StrategyLoader.parse(text, origin: path ?? name)
    let type = (try? database.strategy(named: name).type) ?? "rules"
    let version = try database.registerStrategy(name: name, type: type, path: path, specText: text, hash: loaded.hash, at: context.clock.now())
    return Created(name: name, path: path ?? "", version: version)
  }

  /// Parses and checks a spec without running it.
  public func validate(_ reference: StrategyReference) throws -> LoadedSpec { try StrategyLoader.resolve(reference, database: database) }

  public func list() throws -> [StrategyRecord] { try database.strategies() }

  public func versions(name: String) throws -> [StrategyVersion] { try database.strategyVersions(name: name) }
}
