import Foundation
import GRDB
import GRDBSQLite
import QtoolCore

/// A recorded backtest run as `backtest list/show` read it.
public struct RunRecord: Codable, Sendable, Equatable, FetchableRecord {
  public var id: String
  public var strategyName: String
  public var specText: String
  public var datasets: String
  public var params: String
  public var engineVersion: String
  public var fingerprint: String
  public var status: String
  public var metrics: String?
  public var createdAt: Int64
  /// When risk.max_drawdown_halt (or ruin) stopped trading, and why; nil when it never did.
  public var haltedAt: Int64?
  public var haltReason: String?

  enum CodingKeys: String, CodingKey {
    case id, strategyName = "strategy_name", specText = "spec_text", datasets, params, engineVersion = "engine_version", fingerprint, status
    case metrics, createdAt = "created_at", haltedAt = "halted_at", haltReason = "halt_reason"
  }

  enum PublicKeys: String, CodingKey {
    case id, strategy, status, createdAt = "created_at", engineVersion = "engine_version", fingerprint, datasets, params, settings, metrics, spec
    case haltedAt = "halted_at", haltReason = "halt_reason"
  }

  /// The run in qtool's JSON vocabulary (`qtool help json`): stored JSON columns as nested
  /// objects, times ISO-8601, the strategy as `strategy` and its param values as `params`.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: PublicKeys.self)
    func object(_ text: String?) -> JSONValue { text.flatMap { try? JSONDecoder().decode(JSONValue.self, from: Data($0.utf8)) } ?? .null }
    try container.encode(id, forKey: .id)
    try container.encode(strategyName, forKey: .strategy)
    try container.encode(status, forKey: .status)
    try container.encode(UTCCalendar.format(createdAt, alwaysTime: true), forKey: .createdAt)
    try container.encode(engineVersion, forKey: .engineVersion)
    try container.encode(fingerprint, forKey: .fingerprint)
    var datasets = object(self.datasets)
    if case .array(let items) = datasets {
      // Stored with `name`; shown with the vocabulary's `dataset`.
      datasets = .array(items.map { item in
        guard case .object(var fields) = item else { return item }
        if let name = fields.removeValue(forKey: "name") { fields["dataset"] = name }
        // Stored as dates for daily data; shown as every time is.
        for key in ["first", "last"] {
          if case .string(let text) = fields[key], let time = TimestampParser.parse(text) { fields[key] = .string(UTCCalendar.format(time, alwaysTime: true)) }
        }
        return .object(fields)
      })
    }
    try container.encode(datasets, forKey: .datasets)
    var settings = object(params)
    var values = JSONValue.object([:])
    if case .object(var fields) = settings {
      values = fields.removeValue(forKey: "parameters") ?? .object([:])
      settings = .object(fields)
    }
    try container.encode(values, forKey: .params)
    try container.encode(settings, forKey: .settings)
    try container.encode(object(metrics), forKey: .metrics)
    try container.encode(haltedAt.map { UTCCalendar.format($0, alwaysTime: true) }, forKey: .haltedAt)
    try container.encode(haltReason, forKey: .haltReason)
    try container.encode(specText, forKey: .spec)
  }

  public init(
    id: String, strategyName: String, specText: String, datasets: String, params: String, engineVersion: String, fingerprint: String,
    status: String, metrics: String?, createdAt: Int64, haltedAt: Int64? = nil, haltReason: String? = nil
  ) {
    self.haltedAt = haltedAt
    self.haltReason = haltReason
    self.id = id
    self.strategyName = strategyName
    self.specText = specText
    self.datasets = datasets
    self.params = params
    self.engineVersion = engineVersion
    self.fingerprint = fingerprint
    self.status = status
    self.metrics = metrics
    self.createdAt = createdAt
  }
}

extension RunRecord {
  /// The run's metrics by name (undefined ones left out; infinite ones, stored as null,
  /// restored: `Metrics.stored`).
  public var metricValues: [String: Double] { Metrics.stored(metrics).compactMapValues { $0 } }
}

public enum RunError: QtoolError, Equatable {
  case notFound(String, suggestion: String?)
  /// A prefix that several runs start with (at most 20 listed).
  case ambiguous(String, candidates: [String])
  public var category: ErrorCategory {
    switch self {
    case .notFound: return .notFound
    case .ambiguous: return .usage
    }
  }
  public var code: String {
    switch self {
    case .notFound: return "run_not_found"
    case .ambiguous: return "run_id_ambiguous"
    }
  }
  public var message: String {
    switch self {
    case .notFound(let id, let suggestion): return "no backtest run '\(id)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
    case .ambiguous(let id, let candidates):
      let more = candidates.count >= 20 ? " or more" : ""
      return "'\(id)' matches \(candidates.count)\(more) runs: \(candidates.prefix(5).joined(separator: ", "))\(candidates.count > 5 ? ", …" : "")"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .notFound(let id, let suggestion): return ["run": .string(id), "suggestion": JSONValue(suggestion)]
    case .ambiguous(let id, let candidates): return ["run": .string(id), "candidates": .array(candidates.map { .string($0) })]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .notFound: return "`qtool backtest list` shows the recorded runs"
    case .ambiguous: return "give more characters of the id"
    }
  }
}

extension QtoolDatabase {
  /// Records a run that starts now (status `running`, no results yet), so a running backtest
  /// is visible; `completeRun` fills it in, `deleteRun` takes it back if it fails.
  public func startRun(id: String, strategyName: String, specText: String, engineVersion: String, jobID: String?, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO backtest_runs (id, strategy_name, spec_text, datasets, params, engine_version, fingerprint, status, progress, created_at, job_id)
          VALUES (?, ?, ?, '[]', '{}', ?, '', 'running', 0, ?, ?)
          """, arguments: [id, strategyName, specText, engineVersion, time, jobID])
    }
  }

  /// Completes a started run — settings, metrics, trades and equity curve — in one transaction.
  public func completeRun(
    _ run: RunRecord, trades: [Trade], symbols: [String], timestamps: [Int64], equity: [Double], benchmark: [Double]?, at time: Int64
  ) throws {
    try write { db in
      try db.execute(
        sql: """
          UPDATE backtest_runs SET datasets = ?, params = ?, fingerprint = ?, status = 'completed', progress = 1, metrics = ?, finished_at = ?,
            halted_at = ?, halt_reason = ?
          WHERE id = ?
          """, arguments: [run.datasets, run.params, run.fingerprint, run.metrics, time, run.haltedAt, run.haltReason, run.id])
      try Self.insertTrades(db, runID: run.id, trades, symbols: symbols)
      try Self.insertSeries(db, runID: run.id, timestamps: timestamps, equity: equity, benchmark: benchmark)
    }
  }

  /// Records a finished run with its trades and equity curve in one transaction.
  public func recordRun(_ run: RunRecord, trades: [Trade], symbols: [String], timestamps: [Int64], equity: [Double], benchmark: [Double]?) throws {
    try startRun(id: run.id, strategyName: run.strategyName, specText: run.specText, engineVersion: run.engineVersion, jobID: nil, at: run.createdAt)
    try completeRun(run, trades: trades, symbols: symbols, timestamps: timestamps, equity: equity, benchmark: benchmark, at: run.createdAt)
  }

  /// The curves bound straight from the arrays' storage: no intermediate copies of megabytes.
  static func insertSeries(_ db: Database, runID: String, timestamps: [Int64], equity: [Double], benchmark: [Double]?) throws {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let statement = try RawSQL.prepare(handle, "INSERT INTO run_series (run_id, timestamps, equity, benchmark) VALUES (?, ?, ?, ?)")
    defer { sqlite3_finalize(statement) }
    sqlite3_bind_text(statement, 1, runID, -1, transientDestructor)
    let code = timestamps.withUnsafeBytes { ts in
      equity.withUnsafeBytes { eq in
        RawSQL.bindBlob(statement, 2, ts)
        RawSQL.bindBlob(statement, 3, eq)
        guard let benchmark else { return sqlite3_step(statement) }
        return benchmark.withUnsafeBytes { bm in
          RawSQL.bindBlob(statement, 4, bm)
          return sqlite3_step(statement)
        }
      }
    }
    try RawSQL.expectDone(code, handle)
  }

  /// Trades on the raw handle: a run can close tens of thousands, and GRDB's argument
  /// arrays cost ten times the insert itself.
  static func insertTrades(_ db: Database, runID: String, _ trades: [Trade], symbols: [String]) throws {
    guard let handle = db.sqliteConnection else { throw StoreError.sqlite("closed connection") }
    let sql = """
      INSERT INTO trades (run_id, seq, symbol, side, size, entry_ts, entry_price, exit_ts, exit_price, pnl, return, commission, reason)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      """
    let statement = try RawSQL.prepare(handle, sql)
    defer { sqlite3_finalize(statement) }
    // Bindings survive sqlite3_reset: the run id is bound once, the symbol when it changes.
    sqlite3_bind_text(statement, 1, runID, -1, transientDestructor)
    var boundSymbol: String?
    for (seq, trade) in trades.enumerated() {
      sqlite3_bind_int64(statement, 2, Int64(seq))
      if symbols[seq] != boundSymbol {
        sqlite3_bind_text(statement, 3, symbols[seq], -1, transientDestructor)
        boundSymbol = symbols[seq]
      }
      sqlite3_bind_text(statement, 4, trade.side, -1, transientDestructor)
      sqlite3_bind_double(statement, 5, trade.size)
      sqlite3_bind_int64(statement, 6, trade.entryTime)
      sqlite3_bind_double(statement, 7, trade.entryPrice)
      sqlite3_bind_int64(statement, 8, trade.exitTime)
      sqlite3_bind_double(statement, 9, trade.exitPrice)
      sqlite3_bind_double(statement, 10, trade.pnl)
      sqlite3_bind_double(statement, 11, trade.returnPct)
      sqlite3_bind_double(statement, 12, trade.commission)
      sqlite3_bind_text(statement, 13, trade.reason.rawValue, -1, transientDestructor)
      try RawSQL.expectDone(sqlite3_step(statement), handle)
      sqlite3_reset(statement)
    }
  }

  public func runs() throws -> [RunRecord] {
    try read { try RunRecord.fetchAll($0, sql: "SELECT * FROM backtest_runs WHERE status = 'completed' ORDER BY created_at DESC, id") }
  }

  /// The run with this id, or the one whose id starts with it (like git's short hashes).
  public func run(id: String) throws -> RunRecord {
    let matches = try read {
      try RunRecord.fetchAll(
        $0, sql: "SELECT * FROM backtest_runs WHERE status = 'completed' AND (id = ? OR id LIKE ? ESCAPE '\\') ORDER BY id LIMIT 20",
        arguments: [id, RawSQL.prefixPattern(id)])
    }
    if let exact = matches.first(where: { $0.id == id }) { return exact }
    if matches.count == 1, !id.isEmpty { return matches[0] }
    if matches.count > 1, !id.isEmpty { throw RunError.ambiguous(id, candidates: matches.map(\.id)) }
    let ids = try read { try String.fetchAll($0, sql: "SELECT id FROM backtest_runs WHERE status = 'completed'") }
    throw RunError.notFound(id, suggestion: Similarity.closest(to: id, among: ids))
  }

  public func trades(runID: String) throws -> [Trade] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM trades WHERE run_id = ? ORDER BY seq", arguments: [runID]).map { row in
        Trade(
          side: row["side"], size: row["size"], entryBar: 0, entryTime: row["entry_ts"], entryPrice: row["entry_price"], exitBar: 0,
          exitTime: row["exit_ts"], exitPrice: row["exit_price"], pnl: row["pnl"], returnPct: row["return"], commission: row["commission"],
          reason: Trade.Reason(rawValue: row["reason"]) ?? .signal, symbol: row["symbol"])
      }
    }
  }

  public func equityCurve(runID: String) throws -> (timestamps: [Int64], equity: [Double], benchmark: [Double?]) {
    try read { db in
      guard let row = try Row.fetchOne(db, sql: "SELECT timestamps, equity, benchmark FROM run_series WHERE run_id = ?", arguments: [runID]) else {
        return ([], [], [])
      }
      let timestamps: Data = row["timestamps"]
      let equity: Data = row["equity"]
      let benchmark: Data? = row["benchmark"]
      let times = timestamps.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) }
      let values = equity.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
      let bench = benchmark.map { data in data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)).map { Optional($0) } } }
      return (times, values, bench ?? [Double?](repeating: nil, count: times.count))
    }
  }

  public func deleteRun(id: String) throws {
    try write { db in
      try db.execute(sql: "DELETE FROM trades WHERE run_id = ?", arguments: [id])
      try db.execute(sql: "DELETE FROM run_series WHERE run_id = ?", arguments: [id])
      try db.execute(sql: "DELETE FROM backtest_runs WHERE id = ?", arguments: [id])
    }
  }
}

/// A registered strategy and its versions.
public struct StrategyRecord: Codable, Sendable, Equatable {
  public var name: String
  public var type: String
  public var status: String
  public var path: String?
  public var versions: Int
  public var latestHash: String
  public var updatedAt: Int64
  enum CodingKeys: String, CodingKey { case name = "strategy", type, status, path, versions, latestHash = "latest_hash", updatedAt = "updated_at" }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(name, forKey: .name)
    try container.encode(type, forKey: .type)
    try container.encode(status, forKey: .status)
    try container.encode(path, forKey: .path)
    try container.encode(versions, forKey: .versions)
    try container.encode(latestHash, forKey: .latestHash)
    try container.encode(UTCCalendar.format(updatedAt, alwaysTime: true), forKey: .updatedAt)
  }
}

public struct StrategyVersion: Codable, Sendable, Equatable {
  public var version: Int
  public var hash: String
  public var specText: String
  public var createdAt: Int64
  enum CodingKeys: String, CodingKey { case version, hash, specText = "spec", createdAt = "created_at" }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(version, forKey: .version)
    try container.encode(hash, forKey: .hash)
    try container.encode(specText, forKey: .specText)
    try container.encode(UTCCalendar.format(createdAt, alwaysTime: true), forKey: .createdAt)
  }
}

public enum StrategyStoreError: QtoolError, Equatable {
  case notFound(String, suggestion: String?)
  public var category: ErrorCategory { .notFound }
  public var code: String { "strategy_not_found" }
  public var message: String {
    switch self {
    case .notFound(let name, let suggestion): return "no strategy named '\(name)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .notFound(let name, let suggestion): return ["strategy": .string(name), "suggestion": JSONValue(suggestion)]
    }
  }
  public var hint: ErrorHint? { "`qtool strategy list` shows the registered strategies; a spec file can be given by its path" }
}

extension QtoolDatabase {
  /// Registers `name` (or updates it) and records `specText` as a new version when its hash
  /// is new. Returns the version number the text has.
  @discardableResult
  public func registerStrategy(name: String, type: String, path: String?, specText: String, hash: String, at time: Int64? = nil) throws -> Int {
    try write { db in
      let now = time ?? SystemClock().now()
      try db.execute(
        sql: """
          INSERT INTO strategies (name, type, path, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (name) DO UPDATE SET path = COALESCE(excluded.path, path), type = excluded.type
          """, arguments: [name, type, path, now, now])
      let id = try Int64.fetchOne(db, sql: "SELECT id FROM strategies WHERE name = ?", arguments: [name])!
      if let existing = try Int.fetchOne(db, sql: "SELECT version FROM strategy_versions WHERE strategy_id = ? AND hash = ?", arguments: [id, hash]) {
        return existing
      }
      let next = (try Int.fetchOne(db, sql: "SELECT max(version) FROM strategy_versions WHERE strategy_id = ?", arguments: [id]) ?? 0) + 1
      try db.execute(
        sql: "INSERT INTO strategy_versions (strategy_id, version, hash, spec_text, created_at) VALUES (?, ?, ?, ?, ?)",
        arguments: [id, next, hash, specText, now])
      try db.execute(sql: "UPDATE strategies SET updated_at = ? WHERE id = ?", arguments: [now, id])
      return next
    }
  }

  public func strategies() throws -> [StrategyRecord] {
    try read { db in
      // A cached statement: the server lists strategies on every dashboard refresh and API call.
      try Row.fetchAll(
        db.cachedStatement(
          sql: """
            SELECT s.name, s.type, s.status, s.path, s.updated_at, count(v.id) AS versions,
                   (SELECT hash FROM strategy_versions WHERE strategy_id = s.id ORDER BY version DESC LIMIT 1) AS latest_hash
            FROM strategies s LEFT JOIN strategy_versions v ON v.strategy_id = s.id GROUP BY s.id ORDER BY s.name
            """)
      ).map {
        StrategyRecord(
          name: $0["name"], type: $0["type"], status: $0["status"], path: $0["path"], versions: $0["versions"], latestHash: $0["latest_hash"] ?? "",
          updatedAt: $0["updated_at"])
      }
    }
  }

  public func strategy(named name: String) throws -> StrategyRecord {
    if let found = try strategies().first(where: { $0.name == name }) { return found }
    throw StrategyStoreError.notFound(name, suggestion: Similarity.closest(to: name, among: try strategyNames()))
  }

  /// Deletes a registered strategy and its versions; recorded runs keep their spec text.
  public func deleteStrategy(name: String) throws {
    _ = try strategy(named: name)
    try write { db in try db.execute(sql: "DELETE FROM strategies WHERE name = ?", arguments: [name]) }
  }

  public func strategyVersions(name: String) throws -> [StrategyVersion] {
    _ = try strategy(named: name)
    return try read { db in
      try Row.fetchAll(
        db,
        sql:
          "SELECT v.version, v.hash, v.spec_text, v.created_at FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id WHERE s.name = ? ORDER BY v.version",
        arguments: [name]
      ).map { StrategyVersion(version: $0["version"], hash: $0["hash"], specText: $0["spec_text"], createdAt: $0["created_at"]) }
    }
  }
}

extension QtoolDatabase {
  /// Records a parameter grid and every combination's params and metrics (JSON), in one transaction.
  public func recordGrid(
    id: String, strategyName: String, specText: String, dataset: String, axes: String, rank: String, results: [(params: String, metrics: String)],
    jobID: String? = nil, settings: String? = nil, at time: Int64? = nil
  ) throws {
    try write { db in
      try db.execute(
        sql:
          "INSERT INTO grid_runs (id, strategy_name, spec_text, dataset, axes, rank, created_at, job_id, settings) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        arguments: [id, strategyName, specText, dataset, axes, rank, time ?? SystemClock().now(), jobID, settings])
      let statement = try db.makeStatement(sql: "INSERT INTO grid_results (grid_id, seq, params, metrics) VALUES (?, ?, ?, ?)")
      for (seq, result) in results.enumerated() { try statement.execute(arguments: [id, seq, result.params, result.metrics]) }
    }
  }
}

/// SQLITE_TRANSIENT: SQLite copies the text, as a Swift string's C buffer lives only for the call.
let transientDestructor = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// A stored grid as the catalog of grids shows it.
public struct GridRecord: Sendable, Equatable, FetchableRecord {
  public var id: String
  public var strategyName: String
  public var specText: String
  public var dataset: String
  public var axes: String
  public var rank: String
  public var createdAt: Int64
  public var jobID: String?
  public var settings: String?
  public var combinations: Int

  public init(row: Row) {
    id = row["id"]
    strategyName = row["strategy_name"]
    specText = row["spec_text"]
    dataset = row["dataset"]
    axes = row["axes"]
    rank = row["rank"]
    createdAt = row["created_at"]
    jobID = row["job_id"]
    settings = row["settings"]
    combinations = row["combinations"]
  }
}

public enum GridError: QtoolError, Equatable {
  case notFound(String)
  case ambiguous(String, candidates: [String])
  case noRow(grid: String, row: Int, rows: Int)

  public var category: ErrorCategory {
    switch self {
    case .notFound, .noRow: return .notFound
    case .ambiguous: return .usage
    }
  }
  public var code: String {
    switch self {
    case .notFound: return "grid_not_found"
    case .ambiguous: return "grid_id_ambiguous"
    case .noRow: return "grid_row_not_found"
    }
  }
  public var message: String {
    switch self {
    case .notFound(let id): return "no grid '\(id)'"
    case .ambiguous(let id, let candidates): return "'\(id)' matches \(candidates.count) grids: \(candidates.prefix(5).joined(separator: ", "))"
    case .noRow(let grid, let row, let rows): return "grid \(grid) has no row \(row); its rows are 1 to \(rows)"
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .notFound: return "`qtool backtest grid list` shows the stored grids"
    case .ambiguous: return "give more characters of the id"
    case .noRow: return nil
    }
  }
}

extension QtoolDatabase {
  static let gridSelect = """
    SELECT g.*, (SELECT count(*) FROM grid_results r WHERE r.grid_id = g.id) AS combinations FROM grid_runs g
    """

  public func grids() throws -> [GridRecord] {
    try read { try GridRecord.fetchAll($0, sql: Self.gridSelect + " ORDER BY g.created_at DESC, g.id") }
  }

  /// The grid with this id, or the one whose id starts with it.
  public func grid(id: String) throws -> GridRecord {
    try read { db in
      if let exact = try GridRecord.fetchOne(db, sql: Self.gridSelect + " WHERE g.id = ?", arguments: [id]) { return exact }
      let matches = try GridRecord.fetchAll(db, sql: Self.gridSelect + " WHERE g.id LIKE ? ESCAPE '\\' LIMIT 20", arguments: [RawSQL.prefixPattern(id)])
      guard !id.isEmpty, let first = matches.first else { throw GridError.notFound(id) }
      guard matches.count == 1 else { throw GridError.ambiguous(id, candidates: matches.map(\.id)) }
      return first
    }
  }

  /// A grid's results in the order they were ranked when it ran: (params JSON, metrics JSON).
  public func gridResults(gridID: String) throws -> [(params: String, metrics: String)] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT params, metrics FROM grid_results WHERE grid_id = ? ORDER BY seq", arguments: [gridID]).map {
        ($0["params"], $0["metrics"])
      }
    }
  }
}
