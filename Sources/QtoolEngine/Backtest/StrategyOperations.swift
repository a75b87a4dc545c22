import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool strategy …`: scaffold, register, validate and list specs.
public struct StrategyOperations: Sendable {
  public let database: QtoolDatabase
  public init(database: QtoolDatabase) { self.database = database }

  public struct Created: Codable, Sendable {
    public var name: String
    public var path: String
    public var version: Int
  }

  /// Writes a spec from `template` to `path` (refusing to overwrite) and registers it.
  public func create(name: String, template: String, symbol: String, timeframe: String, path: String, overwrite: Bool) throws -> Created {
    guard let text = StrategyTemplates.render(template, name: name, symbol: symbol, timeframe: timeframe) else {
      throw OperationError.invalidArgument("unknown template '\(template)'; templates: \(StrategyTemplates.names.joined(separator: ", "))")
    }
    if FileManager.default.fileExists(atPath: path), !overwrite {
      throw OperationError.alreadyExists("\(path) exists; pass --force to replace it or --output another path")
    }
    let loaded = try StrategyLoader.parse(text, origin: path)
    do {
      try text.write(toFile: path, atomically: true, encoding: .utf8)
    } catch {
      throw OperationError.cannotWrite("cannot write \(path): \(error.localizedDescription)")
    }
    let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    let version = try database.registerStrategy(name: name, type: template, path: absolute, specText: text, hash: loaded.hash)
    return Created(name: name, path: absolute, version: version)
  }

  /// Parses and checks a spec file (or a registered name) without running it.
  public func validate(_ reference: String) throws -> LoadedSpec { try StrategyLoader.load(reference, database: database) }

  public func list() throws -> [StrategyRecord] { try database.strategies() }

  public func versions(name: String) throws -> [StrategyVersion] { try database.strategyVersions(name: name) }
}
