import Foundation
import QtoolCore
import QtoolData
import QtoolStore
import Yams

/// `strategy validate --json`: the spec is valid, its name and the hash of its text.
public struct StrategyValidation: Codable, Sendable, Equatable {
  public var valid = true
  public var name: String
  public var hash: String
  enum CodingKeys: String, CodingKey { case valid, name = "strategy", hash }
  public init(name: String, hash: String) {
    self.name = name
    self.hash = hash
  }
}

/// A registered strategy with one version's text and parsed spec.
public struct StrategyDetail: Encodable, Sendable {
  public var strategy: StrategyRecord
  public var version: Int
  public var hash: String
  public var text: String
  public var spec: StrategySpec
}

extension StrategyOperations {
  /// `strategy validate`: parses and checks the spec, every rule included.
  public func validation(_ reference: StrategyReference) throws -> StrategyValidation {
    let loaded = try validate(reference)
    return StrategyValidation(name: loaded.spec.name, hash: loaded.hash)
  }

  /// One version (the latest unless given) of a registered strategy.
  public func show(name: String, version: Int? = nil) throws -> StrategyDetail {
    let record = try database.strategy(named: name)
    let loaded = try StrategyLoader.resolve(.registered(name: name, version: version), database: database)
    let versions = try database.strategyVersions(name: name)
    let chosen = version ?? versions.last?.version ?? 1
    return StrategyDetail(strategy: record, version: chosen, hash: loaded.hash, text: loaded.text, spec: loaded.spec)
  }

  /// Registers a new strategy from spec text; refuses a name that is registered already.
  public func create(name: String, text: String) throws -> Created {
    try Identifier.check(name, as: .strategy)
    if (try? database.strategy(named: name)) != nil {
      throw OperationError(
        .alreadyExists, code: "strategy_exists", "a strategy named \(name) is registered already", details: ["strategy": .string(name)],
        hint: "register a new version of it instead, or choose another name")
    }
    return try register(name: name, path: nil, text: text)
  }

  /// A new version of a registered strategy (the same version when the text is unchanged).
  public func update(name: String, text: String) throws -> Created {
    _ = try database.strategy(named: name)
    return try register(name: name, path: nil, text: text)
  }

  /// Registers the latest version of `name` (or `version`) under `newName`, with the spec's
  /// `name:` set to it.
  public func clone(name: String, version: Int? = nil, as newName: String) throws -> Created {
    let loaded = try StrategyLoader.resolve(.registered(name: name, version: version), database: database)
    return try create(name: newName, text: try Self.renamed(loaded.text, to: newName))
  }

  /// The spec text with its top-level `name` replaced: JSON stays JSON, YAML keeps its lines.
  static func renamed(_ text: String, to name: String) throws -> String {
    let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
    if trimmed.hasPrefix("{"), var object = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) as? [String: Any] {
      object["name"] = name
      return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted]), as: UTF8.self) + "\n"
    }
    var lines = text.components(separatedBy: "\n")
    if let index = lines.firstIndex(where: { $0.hasPrefix("name:") }) {
      lines[index] = "name: \(name)"
    } else {
      lines.insert("name: \(name)", at: 0)
    }
    return lines.joined(separator: "\n")
  }
}

/// A run's results for the API: its curve with the benchmark, monthly returns, drawdown
/// periods and trades.
public struct RunResults: Encodable, Sendable {
  public struct Point: Codable, Sendable {
    public var time: String
    public var equity: Double
    public var benchmark: Double?
  }
  public var run: RunSummary
  public var equity: [Point]
  public var monthlyReturns: [ResultSeries.MonthlyReturn]
  public var drawdownPeriods: [ResultSeries.DrawdownPeriod]
  public var trades: [Trade]

  enum CodingKeys: String, CodingKey { case run, equity, monthlyReturns = "monthly_returns", drawdownPeriods = "drawdown_periods", trades }
}

extension BacktestOperations {
  /// The recorded runs as `backtest list` shows them, newest first.
  public func summaries() throws -> [RunSummary] { try list().map(RunSummary.init) }

  public func results(id: String) throws -> RunResults {
    let detail = try show(id: id)
    let points = detail.timestamps.indices.map { i in
      RunResults.Point(
        time: UTCCalendar.format(detail.timestamps[i], alwaysTime: true), equity: detail.equity[i],
        benchmark: detail.benchmark[i].isFinite ? detail.benchmark[i] : nil)
    }
    return RunResults(
      run: RunSummary(detail.run), equity: points, monthlyReturns: ResultSeries.monthlyReturns(detail.timestamps, detail.equity),
      drawdownPeriods: ResultSeries.drawdownPeriods(detail.timestamps, detail.equity), trades: detail.trades)
  }

  /// An SVG chart of a run's equity and benchmark, as in the HTML report.
  public func equityChart(id: String) throws -> String {
    let detail = try show(id: id)
    var series: [([Double], String, String)] = [(detail.equity, "#2563eb", "equity")]
    if detail.benchmark.contains(where: \.isFinite) { series.append((detail.benchmark, "#9ca3af", "benchmark")) }
    return HTMLReport.lineChart(id: "equity-\(detail.run.id)", timestamps: detail.timestamps, series: series)
  }
}
