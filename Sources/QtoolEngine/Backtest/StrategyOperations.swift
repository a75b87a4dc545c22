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
    /// The spec as written (for a caller that prints it instead of writing a file).
    public var text: String = ""
    enum CodingKeys: String, CodingKey { case name = "strategy", path, version }
  }

  /// Writes a spec from `template` to `path` (refusing to overwrite; nil: to no file, the caller
  /// prints `text`) and registers it.
  public func create(name: String, template: String, symbol: String, timeframe: String, path: String?, overwrite: Bool) throws -> Created {
    try Identifier.check(name, as: .strategy)
    for symbol in symbol.split(separator: ",") { try Identifier.check(String(symbol), as: .symbol) }
    guard let text = StrategyTemplates.render(template, name: name, symbol: symbol, timeframe: timeframe) else {
      throw OperationError.invalidArgument(
        "unknown template '\(template)'", field: "template", hint: ErrorHint("templates: \(StrategyTemplates.names.joined(separator: ", "))"))
    }
    let loaded = try StrategyLoader.parse(text, origin: path ?? name)
    var absolute: String?
    if let path {
      try AtomicFile.write(Data(text.utf8), to: path, overwrite: overwrite)
      absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    }
    let version = try database.registerStrategy(
      name: name, type: template, path: absolute, specText: text, hash: loaded.hash, at: context.clock.now())
    return Created(name: name, path: absolute ?? "", version: version, text: text)
  }

  /// Registers `text` as the latest version of `name` (a new version when it changed).
  public func register(name: String, path: String?, text: String) throws -> Created {
    try Identifier.check(name, as: .strategy)
    let loaded = try StrategyLoader.parse(text, origin: path ?? name)
    let type = (try? database.strategy(named: name).type) ?? "rules"
    let version = try database.registerStrategy(name: name, type: type, path: path, specText: text, hash: loaded.hash, at: context.clock.now())
    return Created(name: name, path: path ?? "", version: version)
  }

  /// Parses and checks a spec without running it. A name the rules read that is not a price, a
  /// param or a function must be a column of the data: checked against the data when the store
  /// has it (validate said "valid" and the run then refused `foo > 1`).
  public func validate(_ reference: StrategyReference) throws -> LoadedSpec {
    let loaded = try StrategyLoader.resolve(reference, database: database)
    let compiled = try CompiledStrategy(loaded.spec, origin: loaded.origin)
    guard !compiled.featureColumns.isEmpty else { return loaded }
    for name in loaded.spec.datasetNames {
      guard let dataset = try? database.dataset(named: name) else { continue }
      try compiled.checkColumns(of: try database.bars(datasetID: dataset.id))
    }
    return loaded
  }

  public func list() throws -> [StrategyRecord] { try database.strategies() }

  /// Forgets a registered strategy (its file, if any, stays). Returns it as it was listed.
  public func delete(name: String) throws -> StrategyRecord {
    let record = try database.strategy(named: name)
    try database.deleteStrategy(name: name)
    return record
  }

  /// The lines that changed between two versions of a registered strategy.
  public func diff(name: String, from: Int, to: Int) throws -> SpecDiff {
    let versions = try database.strategyVersions(name: name)
    func text(_ version: Int) throws -> String {
      guard let found = versions.first(where: { $0.version == version }) else {
        throw OperationError.notFound(
          "strategy \(name) has no version \(version); it has versions 1 to \(versions.count)", code: "strategy_version_not_found",
          details: ["strategy": .string(name), "version": JSONValue(version)])
      }
      return found.specText
    }
    return SpecDiff(strategy: name, from: from, to: to, lines: SpecDiff.lines(try text(from), try text(to)))
  }

  public func versions(name: String) throws -> [StrategyVersion] { try database.strategyVersions(name: name) }
}

/// What changed between two versions of a spec, line by line (a longest-common-subsequence diff).
public struct SpecDiff: Encodable, Sendable, Equatable {
  public struct Line: Encodable, Sendable, Equatable {
    /// `same`, `removed` or `added`.
    public var change: String
    public var text: String
  }
  public var strategy: String
  public var from: Int
  public var to: Int
  public var lines: [Line]

  enum CodingKeys: String, CodingKey { case strategy, from = "from_version", to = "to_version", lines }

  public var changed: Bool { lines.contains { $0.change != "same" } }

  static func lines(_ old: String, _ new: String) -> [Line] {
    let a = old.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    let b = new.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    // Specs are short: the whole table is small.
    var table = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in stride(from: a.count - 1, through: 0, by: -1) {
      for j in stride(from: b.count - 1, through: 0, by: -1) {
        table[i][j] = a[i] == b[j] ? table[i + 1][j + 1] + 1 : max(table[i + 1][j], table[i][j + 1])
      }
    }
    var result: [Line] = []
    var (i, j) = (0, 0)
    while i < a.count || j < b.count {
      if i < a.count, j < b.count, a[i] == b[j] {
        result.append(Line(change: "same", text: a[i]))
        i += 1
        j += 1
      } else if i < a.count, j == b.count || table[i + 1][j] >= table[i][j + 1] {
        // Removals before additions, as diff prints them.
        result.append(Line(change: "removed", text: a[i]))
        i += 1
      } else {
        result.append(Line(change: "added", text: b[j]))
        j += 1
      }
    }
    return result
  }
}

extension StrategySpec {
  /// The datasets the spec trades when none is named with the run: SYMBOL-TIMEFRAME for each
  /// symbol of a portfolio; `universe.dataset`, or its one symbol's, otherwise.
  var datasetNames: [String] {
    portfolio != nil
      ? universe.symbols.map { "\($0)-\(universe.timeframe)" } : [universe.dataset ?? "\(universe.symbols.first ?? "")-\(universe.timeframe)"]
  }
}
