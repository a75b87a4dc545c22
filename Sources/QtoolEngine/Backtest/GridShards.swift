import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// Shard K of N of a grid: the combinations `K-1`th of N contiguous, count-balanced blocks of
/// the grid's ordered combination list (the cartesian product of the axes in the order they are
/// given, the last axis varying fastest, less those failing the condition). Shard K holds
/// combinations `⌊C·(K−1)/N⌋ ..< ⌊C·K/N⌋` of C: sizes differ by at most one.
public struct GridShard: Sendable, Equatable, Codable, CustomStringConvertible {
  /// 1-based.
  public var index: Int
  public var count: Int

  /// The most shards a grid may be split into.
  public static let maxShards = 100_000

  public var description: String { "\(index)/\(count)" }

  public init(index: Int, count: Int) throws {
    guard count >= 1, count <= Self.maxShards else {
      throw OperationError.invalidArgument(
        "a grid is split into 1 to \(Self.maxShards) shards, not \(count)", field: "shard", hint: "give the shard as K/N with 1 ≤ K ≤ N, e.g. 1/4")
    }
    guard index >= 1, index <= count else {
      throw OperationError.invalidArgument(
        "shard \(index) of \(count) does not exist: shards are numbered 1 to \(count)", field: "shard",
        hint: "give the shard as K/N with 1 ≤ K ≤ N, e.g. 1/\(count)")
    }
    self.index = index
    self.count = count
  }

  /// `K/N`, or `auto`: under Slurm, with `shards` the shard is `SLURM_ARRAY_TASK_ID` of
  /// `shards`; without, it is `(SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN) / SLURM_ARRAY_TASK_STEP
  /// + 1` of `SLURM_ARRAY_TASK_COUNT`. Under Kubernetes, the 0-based `JOB_COMPLETION_INDEX` + 1
  /// of `shards`.
  public static func parse(_ text: String, shards: Int?, environment: [String: String]) throws -> GridShard {
    if text == "auto" {
      // A scheduler's task numbers are small and never negative: anything else is refused
      // before it is computed with (Int.min − 1 would stop the process).
      func number(_ name: String, atLeast lowest: Int = 0) throws -> Int? {
        guard let value = environment[name], !value.isEmpty else { return nil }
        guard let number = Int(value), number >= lowest, number <= 10_000_000 else {
          throw OperationError.invalidArgument(
            "\(name) is '\(value)', not a whole number from \(lowest) to 10000000", field: "shard",
            hint: "run under a Slurm array or a Kubernetes Indexed Job, or give the shard as K/N")
        }
        return number
      }
      if let task = try number("SLURM_ARRAY_TASK_ID") {
        // With the number of shards given, the task id is the shard number: an array of
        // 1-N, or of any of them (a resume resubmits `--array=3,7`).
        if let shards { return try GridShard(index: task, count: shards) }
        guard let count = try number("SLURM_ARRAY_TASK_COUNT") ?? shards else {
          throw OperationError.invalidArgument(
            "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not", field: "shard", hint: "give the number of shards with {shards}")
        }
        let minimum = try number("SLURM_ARRAY_TASK_MIN") ?? 1
        let step = try number("SLURM_ARRAY_TASK_STEP", atLeast: 1) ?? 1
        // A task between the steps, or before the first, is no shard: two tasks would run one.
        guard task >= minimum, (task - minimum) % step == 0 else {
          throw OperationError.invalidArgument(
            "SLURM_ARRAY_TASK_ID \(task) is not on the array's steps (from SLURM_ARRAY_TASK_MIN \(minimum) by SLURM_ARRAY_TASK_STEP \(step))",
            field: "shard", hint: "give the number of shards with {shards} when the array's ids are the shard numbers")
        }
        return try GridShard(index: (task - minimum) / step + 1, count: count)
      }
      if let index = try number("JOB_COMPLETION_INDEX") {
        guard let shards else {
          throw OperationError.invalidArgument(
            "JOB_COMPLETION_INDEX is set but the number of shards is not given", field: "shards",
            hint: "give it with {shards}, the Indexed Job's completions")
        }
        return try GridShard(index: index + 1, count: shards)
      }
      throw OperationError.invalidArgument(
        "shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm array task) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); neither is set",
        field: "shard", hint: "give the shard as K/N outside a scheduler")
    }
    let parts = text.split(separator: "/", omittingEmptySubsequences: false)
    guard parts.count == 2, let index = Int(parts[0]), let count = Int(parts[1]) else {
      throw OperationError.invalidArgument("expected the shard as K/N (e.g. 2/8) or auto, got '\(text)'", field: "shard")
    }
    if let shards, shards != count {
      throw OperationError.invalidArgument("the shard says \(count) shards but \(shards) were given", field: "shards")
    }
    return try GridShard(index: index, count: count)
  }

  /// This shard's combinations of a grid of `total`.
  public func range(of total: Int) -> Range<Int> {
    total * (index - 1) / count..<total * index / count
  }
}

/// What one shard stored.
public struct GridShardReport: Encodable, Sendable {
  public var gridID: String
  public var jobID: String?
  public var shard: Int
  public var shards: Int
  public var strategy: String
  public var dataset: String
  /// Combinations in the whole grid, and this shard's: `first ..< end` of its ordered list.
  public var combinations: Int
  public var first: Int
  public var end: Int
  public var bars: Int
  public var snapshotHash: String?
  public var seconds: Double
  enum CodingKeys: String, CodingKey {
    case gridID = "grid_id", jobID = "job_id", shard, shards, strategy, dataset, combinations, first, end, bars, snapshotHash = "snapshot_hash",
      seconds
  }
}

/// A merged grid: stored in the main store, its best rows as `backtest grid show` gives them.
public struct GridMergeReport: Encodable, Sendable {
  public var id: String
  /// The merge's own job, as a local grid's report names its job.
  public var jobID: String?
  public var strategy: String
  public var dataset: String
  /// The params the grid varies, by name.
  public var axes: [String]
  public var shards: Int
  public var combinations: Int
  public var bars: Int
  /// The bars before the grid's first that warmed its indicators up, as a local grid reports.
  public var warmupBars: Int
  public var rank: String
  public var seconds: Double
  public var results: [GridRows.Row]

  enum CodingKeys: String, CodingKey {
    case id, jobID = "job_id", strategy, dataset, axes, shards, combinations, bars, warmupBars = "warmup_bars", rank, seconds, results
  }
}

/// A store holding shards, for a merge: its path (for messages) and the opened store.
public struct ShardStore: Sendable {
  public var path: String
  public var database: QtoolDatabase
  public init(path: String, database: QtoolDatabase) {
    self.path = path
    self.database = database
  }

  /// The shard store at `path`, opened read-only: a merge never writes to what shards wrote.
  public static func open(path: String) throws -> ShardStore {
    try requireFile(path, "shard store", hint: "give the stores the shards wrote (their --db), e.g. DIR/shard-*.db")
    return ShardStore(path: path, database: try QtoolDatabase.open(path: path, readOnly: true))
  }
}

/// Refuses (66) a path that names no file, or a directory, where a `noun` (a file) is wanted.
func requireFile(_ path: String, _ noun: String, hint: String) throws {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue else {
    throw OperationError.notFound(
      isDirectory.boolValue ? "\(path) is a directory, not a \(noun)" : "no \(noun) \(path)",
      code: "file_not_found", details: ["path": .string(path)], hint: ErrorHint(hint))
  }
}

extension BacktestOperations {
  /// The engine version shards must agree on to be merged.
  public static var shardEngineVersion: String { "\(engineVersion) qtool \(VersionInfo.version) \(GeneratedBuildInfo.commit)" }

  /// A sharded grid's id: the same in every shard of it, from what it sweeps (strategy name,
  /// axes, condition, ranking, settings, number of shards). The spec version, snapshot and engine
  /// are recorded with each shard and checked when shards are merged.
  static func shardedGridID(strategy: String, request: GridRequest, shards: Int, walkForward: String? = nil) throws -> String {
    try shardedGridID(
      strategy: strategy, axes: request.axes, condition: request.condition, rank: request.rank, settings: try settingsText(request), shards: shards,
      walkForward: walkForward)
  }

  /// The same from what a shard records (its settings as stored).
  public static func shardedGridID(
    strategy: String, axes: [GridAxis], condition: String?, rank: String, settings: String, shards: Int, walkForward: String? = nil
  ) throws -> String {
    struct Identity: Encodable {
      var strategy: String
      var axes: [GridAxis]
      var condition: String?
      var rank: String
      var settings: String
      var shards: Int
      /// A sharded walk-forward's `TRAIN/TEST` (absent for a plain grid).
      var walkForward: String?
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let identity = Identity(
      strategy: strategy, axes: axes, condition: condition, rank: rank, settings: settings, shards: shards, walkForward: walkForward)
    return "g" + ContentHash.sha256Hex(try encoder.encode(identity)).prefix(9)
  }

  /// Runs shard `shard` of the grid, as a job, and records it with its results in this store.
  /// Bars come from `data` when given (a snapshot, checked by `ShardSnapshot.open`) and from
  /// this store otherwise.
  public func gridShard(_ request: GridRequest, shard: GridShard, data: ShardSnapshot? = nil) throws -> GridShardReport {
    let loaded = try checkGrid(request)
    struct Request: Encodable {
      var grid: GridRequest
      var shard: String
    }
    return try JobRunner.run(
      .grid, request: Request(grid: request, shard: shard.description), context: context, link: { ["grid_id": .string($0.gridID)] }
    ) {
      context in
      try BacktestOperations(context).gridShardNow(request, loaded: loaded, shard: shard, data: data)
    }
  }

  func gridShardNow(_ request: GridRequest, loaded: LoadedSpec, shard: GridShard, data snapshot: ShardSnapshot?) throws -> GridShardReport {
    let started = context.clock.now()
    let (reader, snapshotHash) = shardReader(snapshot: snapshot)
    let compiled = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin)
    let combinations = try Self.combinations(request, known: compiled.parameters)
    let range = shard.range(of: combinations.count)
    // The warm-up is the whole grid's, as a local grid's: every shard runs on the same bars.
    let warms = request.from != nil && !request.noWarmup
    let data = try ShardSnapshot.explaining(snapshot) { try reader.loadGridData(loaded, request: request, combinations: warms ? combinations : []) }
    let mine = Array(combinations[range])
    let metrics = mine.isEmpty ? [] : try reader.evaluate(mine, loaded: loaded, capital: compiled.capital, data: data, jobs: request.jobs)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let read = Metrics.reader(request.rank) ?? { _ in .nan }
    let results = try zip(range, zip(mine, metrics)).map { index, pair in
      let score = read(pair.1)
      return GridShardResult(
        combination: index, params: try Self.paramsText(pair.0, encoder: encoder), metrics: pair.1.sortedJSON, score: score.isNaN ? nil : score)
    }
    let id = try Self.shardedGridID(strategy: loaded.spec.name, request: request, shards: shard.count)
    try context.cancellation.check()
    try database.recordGridShard(
      GridShardRecord(
        gridID: id, shard: shard.index, shards: shard.count, combinations: combinations.count, firstCombination: range.lowerBound,
        endCombination: range.upperBound, strategyName: loaded.spec.name, specText: loaded.text, specHash: loaded.hash, dataset: data.datasetName,
        axes: try Self.axesText(request), rank: request.rank, settings: try Self.settingsText(request), snapshotHash: snapshotHash,
        engineVersion: Self.shardEngineVersion, bars: data.tradedCount, warmupBars: data.tradingStart, jobID: context.jobID,
        completedAt: context.clock.now(), definition: try GridDefinition(axes: request.axes, condition: request.condition).text,
        dataHash: data.sliceHash, resultsHash: ContentHash.fingerprint(records: results.map(\.hashedFields))),
      results: results)
    return GridShardReport(
      gridID: id, jobID: context.jobID, shard: shard.index, shards: shard.count, strategy: loaded.spec.name, dataset: data.datasetName,
      combinations: combinations.count, first: range.lowerBound, end: range.upperBound, bars: data.tradedCount, snapshotHash: snapshotHash,
      seconds: context.clock.seconds(since: started))
  }

  /// Checks that the shards in `stores` (this store's own when empty) hold every combination of
  /// grid `id` exactly once, all run with the same spec version, snapshot and engine, and stores
  /// the grid in this store ranked as a local run ranks it. Missing shards are listed.
  public func mergeGrid(id: String, stores given: [ShardStore], top: Int = 10) throws -> GridMergeReport {
    let started = context.clock.now()
    let byShard: [FoundShard<GridShardRecord>] = try checkedShards(
      of: id, noun: "grid", in: given, read: { try $0.gridShards(gridID: id) }, others: { try $0.gridShards().map(\.gridID) },
      countResults: { try $0.gridShardResultCount(gridID: id) },
      checks: [ShardDisagreement(what: "grid definitions", differs: { $0.definition != $1.definition }, describe: { $0.definition ?? "none" })],
      runAlike: "run every shard of a grid with the same spec, snapshot and qtool", rerun: { _ in "backtest grid …" })
    let first = byShard[0]
    let total = first.record.combinations
    guard try !database.hasGrid(id: id) else {
      throw OperationError(
        .alreadyExists, code: "grid_exists", "grid \(id) is already stored in \(database.path)", details: ["grid_id": .string(id)],
        hint: "`qtool backtest grid show \(id)` shows it")
    }
    // Nothing a shard store says is taken on trust: each result's params must be the grid's
    // combination at its place, and its score the ranked metric its metrics hold.
    let combinations = try Self.recordedCombinations(first.record, id: id, store: first.store)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    var params = [String](repeating: "", count: total)
    var metrics = [String](repeating: "", count: total)
    var scores = [Double](repeating: .nan, count: total)
    for entry in byShard {
      let shard = entry.record.shard
      let expected = GridShard(unchecked: shard, count: first.record.shards).range(of: total)
      let results = try entry.database.gridShardResults(entry.record)
      guard entry.record.firstCombination == expected.lowerBound, entry.record.endCombination == expected.upperBound,
        results.map(\.combination) == Array(expected)
      else {
        throw OperationError.invalidInput(
          "shard \(shard) of grid \(id) in \(entry.store) holds \(results.count) of its \(expected.count) combinations",
          code: "grid_shard_incomplete",
          details: ["grid_id": .string(id), "shard": .number(Double(shard))], hint: "run that shard again")
      }
      for result in results {
        let expected = combinations[result.combination]
        try Self.checkResult(result, expected: expected, rank: first.record.rank, encoder: encoder, id: id, shard: shard, store: entry.store)
        // Stored as a local run stores it, whatever spacing or number format the shard's text has.
        params[result.combination] =
          result.params == FlatJSON.text(expected) ? result.params : try Self.paramsText(expected, encoder: encoder)
        metrics[result.combination] = result.metrics
        scores[result.combination] = result.score ?? .nan
      }
      try Self.checkResultsHash(entry, results.map(\.hashedFields), noun: "grid", id: id)
      try context.cancellation.check()
    }
    let order = Self.ranking(scores: scores, by: first.record.rank)
    try database.recordGrid(
      id: id, strategyName: first.record.strategyName, specText: first.record.specText, dataset: first.record.dataset, axes: first.record.axes,
      rank: first.record.rank, results: order.map { (params[$0], metrics[$0]) }, jobID: context.jobID, settings: first.record.settings,
      at: context.clock.now())
    let known = (try? StrategyLoader.parse(first.record.specText, origin: "grid \(id)"))?.spec.params ?? [:]
    let rows = order.prefix(max(1, top)).enumerated().map { rank, index in
      GridRows.Row(
        row: rank + 1,
        params: known.merging((try? JSONDecoder().decode([String: Double].self, from: Data(params[index].utf8))) ?? [:]) { $1 },
        metrics: Metrics.stored(metrics[index]))
    }
    return GridMergeReport(
      id: id, jobID: context.jobID, strategy: first.record.strategyName, dataset: first.record.dataset,
      axes: ((try? JSONDecoder().decode([String: [Double]].self, from: Data(first.record.axes.utf8))) ?? [:]).keys.sorted(),
      shards: first.record.shards, combinations: total,
      bars: first.record.bars, warmupBars: first.record.warmupBars, rank: first.record.rank, seconds: context.clock.seconds(since: started),
      results: rows)
  }
}

/// A grid as given, as its shards record it: the axes in their order and the condition, from
/// which its ordered combination list is rebuilt.
public struct GridDefinition: Codable, Sendable, Equatable {
  public var axes: [GridAxis]
  public var condition: String?
  enum CodingKeys: String, CodingKey { case axes, condition = "where" }

  public init(axes: [GridAxis], condition: String?) {
    self.axes = axes
    self.condition = condition
  }

  public var text: String {
    get throws {
      let encoder = JSONEncoder()
      encoder.outputFormatting = .sortedKeys
      return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
  }
}

extension BacktestOperations {
  /// A combination's params as a grid stores them: JSON, keys sorted.
  public static func paramsText(_ combination: [String: Double], encoder: JSONEncoder) throws -> String {
    String(decoding: try encoder.encode(combination), as: UTF8.self)
  }

  /// The grid's ordered combination list, rebuilt from what a shard of it records (axes in
  /// order, condition, spec); refused when the shard records none, or one that is not grid `id`'s.
  static func recordedCombinations(_ record: GridShardRecord, id: String, store: String) throws -> [[String: Double]] {
    try recordedCombinations(
      definition: record.definition, shard: record.shard, shards: record.shards, strategyName: record.strategyName, specText: record.specText,
      rank: record.rank, settings: record.settings, combinations: record.combinations, walkForward: nil, id: id, store: store
    ).combinations
  }

  /// The same from a walk-forward shard's record; with the strategy's params, which its items
  /// store merged with their combination's.
  static func recordedCombinations(_ record: WalkForwardShardRecord, id: String, store: String) throws -> (
    combinations: [[String: Double]], known: [String: Double]
  ) {
    try recordedCombinations(
      definition: record.definition, shard: record.shard, shards: record.shards, strategyName: record.strategyName, specText: record.specText,
      rank: record.rank, settings: record.settings, combinations: record.combinations, walkForward: record.walkForward, id: id, store: store)
  }

  static func recordedCombinations(
    definition text: String?, shard: Int, shards: Int, strategyName: String, specText: String, rank: String, settings: String, combinations count: Int,
    walkForward: String?, id: String, store: String
  ) throws -> (combinations: [[String: Double]], known: [String: Double]) {
    let noun = walkForward == nil ? "grid" : "walk-forward"
    let details: [String: JSONValue] = ["grid_id": .string(id), "shard": .number(Double(shard)), "store": .string(store)]
    guard let text, let definition = try? JSONDecoder().decode(GridDefinition.self, from: Data(text.utf8)) else {
      throw OperationError.invalidInput(
        "shard \(shard) of \(noun) \(id) in \(store) does not record the grid's axes and condition (an older qtool wrote it, or it is damaged), so its results cannot be checked; nothing was merged",
        code: "grid_shard_unverifiable", details: details, hint: "run the \(noun)'s shards again with this qtool, then merge")
    }
    let recomputed = try shardedGridID(
      strategy: strategyName, axes: definition.axes, condition: definition.condition, rank: rank, settings: settings, shards: shards,
      walkForward: walkForward)
    guard recomputed == id else {
      throw OperationError.invalidInput(
        "shard \(shard) of \(noun) \(id) in \(store) records a grid (axes, condition, settings) that is not \(noun) \(id)'s but \(recomputed)'s; the store was changed or is damaged, and nothing was merged",
        code: "grid_shard_mismatch", details: details, hint: "run that shard again")
    }
    let loaded = try StrategyLoader.parse(specText, origin: "\(noun) \(id)")
    let known = try CompiledStrategy(loaded.spec, origin: loaded.origin).parameters
    let request = GridRequest(
      strategy: .registered(name: strategyName, version: nil), axes: definition.axes, condition: definition.condition, rank: rank,
      maxCombinations: .max)
    let combinations = try combinations(request, known: known)
    guard combinations.count == count else {
      throw OperationError.invalidInput(
        "shard \(shard) of \(noun) \(id) in \(store) says the grid has \(count) combinations, but its axes and condition give \(combinations.count); nothing was merged",
        code: "grid_shard_mismatch", details: details, hint: "run that shard again")
    }
    return (combinations, known)
  }

  /// Refuses a stored result whose params are not the grid's combination at its place, or whose
  /// score is not the ranked metric of its own metrics (equal as numbers; an undefined metric,
  /// stored as null, has no score or an infinite one, as a profit factor without a loss).
  static func checkResult(
    _ result: GridShardResult, expected: [String: Double], rank: String, encoder: JSONEncoder, id: String, shard: Int, store: String
  ) throws {
    func mismatch(_ what: String) -> OperationError {
      OperationError.invalidInput(
        "\(store): combination \(result.combination) of grid \(id) (shard \(shard)) \(what); the shard store was changed after the shard ran, or is damaged, and nothing was merged",
        code: "grid_shard_mismatch",
        details: [
          "grid_id": .string(id), "shard": .number(Double(shard)), "combination": .number(Double(result.combination)), "store": .string(store),
        ], hint: "run that shard again (backtest grid … --shard \(shard)/N), then merge")
    }
    guard FlatJSON.numbers(result.params) == expected else {
      throw mismatch("has params \(result.params), but the grid's combination \(result.combination) is \(try paramsText(expected, encoder: encoder))")
    }
    let score = result.score.map { $0.isNaN ? "NaN" : "\($0)" } ?? "none"
    switch MetricsJSON.value(of: rank, in: result.metrics) {
    case .none:
      throw mismatch("has metrics without \(rank), the grid's ranking metric")
    case .some(.none):
      // Null is how JSON stores an infinity too: the other metrics say which one it was (a
      // profit factor without a loss), or that it is undefined, and then there is no score.
      let restored = Metrics.stored(result.metrics)[rank] ?? nil
      guard result.score == restored else {
        throw mismatch("has score \(score), but its \(rank) is \(restored.map { "\($0)" } ?? "undefined (null)")")
      }
    case .some(.some(let value)):
      guard let stored = result.score, stored == value else { throw mismatch("has score \(score), but its \(rank) is \(value)") }
    }
  }
}

/// Reading one metric out of the metrics JSON a grid stores (`Metrics.sortedJSON`) without
/// decoding the whole object: a merge reads one per result.
enum MetricsJSON {
  /// nil when `name` is not in `json`; `.some(nil)` when it is null; else its number (which
  /// `sortedJSON` writes so that it reads back bit for bit).
  static func value(of name: String, in json: String) -> Double?? {
    let key = Array("\"\(name)\":".utf8)
    var json = json
    return json.withUTF8 { bytes -> Double?? in
      guard bytes.count >= key.count else { return nil }
      var start = -1
      search: for i in 0...(bytes.count - key.count) where bytes[i] == key[0] {
        for k in 1..<key.count where bytes[i + k] != key[k] { continue search }
        start = i + key.count
        break
      }
      guard start >= 0 else { return nil }
      while start < bytes.count, bytes[start] == 0x20 { start += 1 }
      var end = start
      while end < bytes.count, bytes[end] != UInt8(ascii: ","), bytes[end] != UInt8(ascii: "}"), bytes[end] != 0x20 { end += 1 }
      let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<end]), as: UTF8.self)
      if text == "null" { return .some(nil) }
      guard let value = Double(text), value.isFinite else { return nil }
      return .some(value)
    }
  }
}

/// A flat JSON object of numbers (a combination's params as a grid stores them), read without
/// JSONDecoder: a merge reads one per result, and 100,000 decodes or encodes cost seconds.
enum FlatJSON {
  /// `numbers` written as JSONEncoder with sorted keys writes them in the usual cases (whole
  /// numbers without `.0`), for a fast equality check; anything it writes differently only
  /// takes the slow path.
  static func text(_ numbers: [String: Double]) -> String {
    "{" + numbers.keys.sorted().map { "\"\($0)\":\(DisplayFormat.written(numbers[$0]!))" }.joined(separator: ",") + "}"
  }

  /// The object's keys and numbers; nil for anything else (nesting, strings, escapes, junk).
  static func numbers(_ text: String) -> [String: Double]? {
    var text = text
    return text.withUTF8 { bytes -> [String: Double]? in
      var i = 0
      func skipSpace() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 } }
      func expect(_ byte: UInt8) -> Bool {
        skipSpace()
        guard i < bytes.count, bytes[i] == byte else { return false }
        i += 1
        return true
      }
      var result: [String: Double] = [:]
      guard expect(UInt8(ascii: "{")) else { return nil }
      skipSpace()
      if i < bytes.count, bytes[i] == UInt8(ascii: "}") {
        i += 1
        skipSpace()
        return i == bytes.count ? result : nil
      }
      while true {
        guard expect(UInt8(ascii: "\"")) else { return nil }
        let keyStart = i
        while i < bytes.count, bytes[i] != UInt8(ascii: "\""), bytes[i] != UInt8(ascii: "\\") { i += 1 }
        guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
        let key = String(decoding: UnsafeBufferPointer(rebasing: bytes[keyStart..<i]), as: UTF8.self)
        i += 1
        guard expect(UInt8(ascii: ":")) else { return nil }
        skipSpace()
        let numberStart = i
        while i < bytes.count, bytes[i] != UInt8(ascii: ","), bytes[i] != UInt8(ascii: "}"), bytes[i] > 0x20 { i += 1 }
        let token = String(decoding: UnsafeBufferPointer(rebasing: bytes[numberStart..<i]), as: UTF8.self)
        guard let first = token.utf8.first, first == UInt8(ascii: "-") || (0x30...0x39).contains(first), let value = Double(token), value.isFinite,
          result.updateValue(value, forKey: key) == nil
        else { return nil }
        skipSpace()
        if expect(UInt8(ascii: ",")) { continue }
        guard expect(UInt8(ascii: "}")) else { return nil }
        skipSpace()
        return i == bytes.count ? result : nil
      }
    }
  }
}

extension GridShard {
  public init(unchecked index: Int, count: Int) {
    self.index = index
    self.count = count
  }
}

/// The snapshot a shard reads its bars from, opened read-only and checked: its bars against
/// the hash it records, and that against the one the grid was given (`--snapshot-hash`).
/// Checked before the shard's own store is opened, so a refused snapshot leaves no store
/// behind.
public struct ShardSnapshot: Sendable {
  public let database: QtoolDatabase
  public let hash: String

  /// Runs `body`, saying of a dataset it cannot find that the snapshot lacks it — not the
  /// store `qtool data list` shows, which may well hold it.
  static func explaining<T>(_ snapshot: ShardSnapshot?, _ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch DatasetError.notFound(let name, _) where snapshot != nil {
      let path = snapshot!.database.path
      let held = (try? snapshot!.database.datasets().map(\.name)) ?? []
      throw OperationError.notFound(
        "the snapshot \(path) holds no dataset '\(name)'" + (held.isEmpty ? "" : " (it holds \(held.joined(separator: ", ")))"),
        code: "dataset_not_found", details: ["dataset": .string(name), "snapshot": .string(path)],
        hint: "snapshot the data the grid reads: qtool data snapshot \(name) -o FILE")
    }
  }

  /// The snapshot at `path` (nil: none, and the shard reads its own store), checked; a hash
  /// without a snapshot is refused.
  public static func open(path: String?, expected: String?) throws -> ShardSnapshot? {
    if expected?.isEmpty == true {
      throw OperationError.invalidArgument(
        "the snapshot hash is empty", field: "snapshot_hash", hint: "give the hash `qtool data snapshot` printed, or leave {snapshot_hash} out")
    }
    guard let path else {
      if expected != nil {
        throw OperationError.invalidArgument(
          "a snapshot hash was given without a snapshot", field: "snapshot_hash", hint: "give the snapshot with {snapshot}")
      }
      return nil
    }
    try requireFile(path, "snapshot", hint: "write one with `qtool data snapshot DATASET -o FILE`")
    let database = try QtoolDatabase.openSnapshot(path: path)
    return ShardSnapshot(database: database, hash: try SnapshotOperations.verify(database, expected: expected))
  }
}

extension BacktestOperations {
  /// What a shard reads its bars with: the snapshot when given, this store otherwise.
  func shardReader(snapshot: ShardSnapshot?) -> (reader: BacktestOperations, snapshotHash: String?) {
    guard let snapshot else { return (self, nil) }
    var dataContext = context
    dataContext.database = snapshot.database
    return (BacktestOperations(dataContext), snapshot.hash)
  }
}

/// What a merge checks of each shard it is given, a grid's and a walk-forward's alike.
protocol MergeableShard: Sendable {
  var shard: Int { get }
  var shards: Int { get }
  var strategyName: String { get }
  var specText: String { get }
  var specHash: String { get }
  var dataHash: String? { get }
  var resultsHash: String? { get }
  /// How many results (combinations, work items) the shard says it holds.
  var itemCount: Int { get }
  var snapshotHash: String? { get }
  var engineVersion: String { get }
  var dataset: String { get }
  var bars: Int { get }
  var warmupBars: Int { get }
  var combinations: Int { get }
  var axes: String { get }
  var rank: String { get }
  var settings: String { get }
}

extension GridShardRecord: MergeableShard {
  var itemCount: Int { max(0, endCombination - firstCombination) }
}
extension WalkForwardShardRecord: MergeableShard {
  var itemCount: Int { max(0, endItem - firstItem) }
}

extension GridShardResult {
  /// Every field as stored, for the shard's `resultsHash`.
  public var hashedFields: [String] { [String(combination), params, metrics, score.map { String($0.bitPattern) } ?? "-"] }
}

extension WalkForwardShardResult {
  /// Every field as stored, for the shard's `resultsHash`.
  public var hashedFields: [String] { [String(item), params, inSample, outOfSample, score.map { String($0.bitPattern) } ?? "-"] }
}

/// A shard a merge found: the store holding it (its path, for messages) and its record.
struct FoundShard<Record: MergeableShard> {
  var store: String
  var record: Record
  var database: QtoolDatabase
}

/// One more way the shards of one run may disagree: what differs, and each shard's value of it.
struct ShardDisagreement<Record> {
  var what: String
  var differs: (Record, Record) -> Bool
  var describe: (Record) -> String
}

extension BacktestOperations {
  /// A shard store edited or damaged after its shards ran: nothing is merged.
  static func changedSince(_ store: String, _ what: String, id: String, shard: Int) -> OperationError {
    OperationError.invalidInput(
      "\(store) \(what); the shard store was changed after the shard ran, or is damaged, and nothing was merged", code: "grid_shard_mismatch",
      details: ["grid_id": .string(id), "shard": .number(Double(shard)), "store": .string(store)], hint: "run that shard again, then merge")
  }

  /// Refuses a shard whose results, field for field, are not those it hashed as it wrote
  /// them: any metric edited since, not only the params and scores checked one by one.
  static func checkResultsHash<Record: MergeableShard>(_ entry: FoundShard<Record>, _ fields: [[String]], noun: String, id: String) throws {
    guard let recorded = entry.record.resultsHash else {
      throw OperationError.invalidInput(
        "\(entry.store): shard \(entry.record.shard) of \(noun) \(id) was written by an older qtool that did not hash its results",
        code: "grid_shard_mismatch", details: ["grid_id": .string(id), "shard": .number(Double(entry.record.shard))],
        hint: "run that shard again with this qtool, then merge")
    }
    guard ContentHash.fingerprint(records: fields) == recorded else {
      throw changedSince(
        entry.store, "holds results of shard \(entry.record.shard) of \(noun) \(id) that are not those it wrote", id: id, shard: entry.record.shard)
    }
  }

  /// The shards of `id` (a `noun`: grid or walk-forward) that `given` holds (this store when
  /// empty), in shard order, checked as a merge checks them: every store holds some, all were
  /// run alike (spec version, snapshot, qtool, `checks`, data, grid; `runAlike` says how), none
  /// is given twice and none is missing (`rerun` is the command that runs one).
  func checkedShards<Record: MergeableShard>(
    of id: String, noun: String, in given: [ShardStore], read: (QtoolDatabase) throws -> [Record], others: (QtoolDatabase) throws -> [String],
    countResults: (QtoolDatabase) throws -> Int, checks: [ShardDisagreement<Record>] = [],
    sameData: (Record, Record) -> Bool = { $0.dataset == $1.dataset && $0.bars == $1.bars && $0.dataHash == $1.dataHash },
    runAlike: String, rerun: (Record) -> String
  ) throws -> [FoundShard<Record>] {
    let stores = given.isEmpty ? [ShardStore(path: database.path, database: database)] : given
    var found: [FoundShard<Record>] = []
    for store in stores {
      let shards = try read(store.database)
      if shards.isEmpty {
        let others = Set(try others(store.database)).sorted()
        throw OperationError.notFound(
          "\(store.path) holds no shard of \(noun) \(id)" + (others.isEmpty ? "" : " (it holds shards of \(others.joined(separator: ", ")))"),
          code: "grid_shard_not_found", details: ["grid_id": .string(id), "store": .string(store.path)],
          hint: "give the stores the shards of this \(noun) wrote (their --db)")
      }
      // Results beyond its shards' blocks were added after they ran (a shard rewrites its own
      // block whole); missing ones are named shard by shard below.
      let held = shards.reduce(0) { $0 + $1.itemCount }
      let stored = try countResults(store.database)
      guard stored <= held else {
        throw Self.changedSince(
          store.path, "holds \(stored) results of \(noun) \(id), but its shards (\(shards.map { String($0.shard) }.joined(separator: ", "))) wrote \(held)",
          id: id, shard: shards[0].shard)
      }
      for shard in shards where ContentHash.sha256Hex(Data(shard.specText.utf8)) != shard.specHash {
        throw Self.changedSince(store.path, "holds shard \(shard.shard) with a spec text that is not the spec version it records", id: id, shard: shard.shard)
      }
      found += shards.map { FoundShard(store: store.path, record: $0, database: store.database) }
    }
    let first = found[0]
    func disagree(_ what: String, _ a: String?, _ b: String?, _ other: FoundShard<Record>) -> OperationError {
      OperationError.invalidInput(
        "the shards of \(noun) \(id) were run with different \(what): shard \(first.record.shard) (\(first.store)) with \(a ?? "none"), shard \(other.record.shard) (\(other.store)) with \(b ?? "none")",
        code: "grid_shards_disagree", details: ["grid_id": .string(id), "field": .string(what)], hint: ErrorHint(runAlike))
    }
    for other in found.dropFirst() {
      let (a, b) = (first.record, other.record)
      if a.specHash != b.specHash {
        throw disagree("spec versions", "spec \(a.strategyName) \(a.specHash.prefix(12))", "spec \(b.strategyName) \(b.specHash.prefix(12))", other)
      }
      if a.snapshotHash != b.snapshotHash {
        throw disagree("snapshots", a.snapshotHash.map { "snapshot \($0)" }, b.snapshotHash.map { "snapshot \($0)" }, other)
      }
      if a.engineVersion != b.engineVersion { throw disagree("qtool versions", "qtool \(a.engineVersion)", "qtool \(b.engineVersion)", other) }
      if let check = checks.first(where: { $0.differs(a, b) }) { throw disagree(check.what, check.describe(a), check.describe(b), other) }
      if !sameData(a, b) {
        func data(_ shard: Record) -> String { "\(shard.bars) bars of \(shard.dataset) (\(shard.dataHash.map { "data \($0.prefix(19))" } ?? "no data hash"))" }
        throw disagree("data", data(a), data(b), other)
      }
      // Named field by field: "different grids" with the same count on both sides said nothing.
      if a.shards != b.shards { throw disagree("shard counts", "\(a.shards) shards", "\(b.shards) shards", other) }
      if a.rank != b.rank { throw disagree("rankings", "--rank \(a.rank)", "--rank \(b.rank)", other) }
      if a.axes != b.axes { throw disagree("axes", a.axes, b.axes, other) }
      if a.settings != b.settings { throw disagree("settings", a.settings, b.settings, other) }
      if a.combinations != b.combinations {
        throw disagree("grids", "\(a.combinations) combinations", "\(b.combinations) combinations", other)
      }
    }
    var byShard: [Int: FoundShard<Record>] = [:]
    for entry in found {
      if let twice = byShard[entry.record.shard] {
        throw OperationError.invalidInput(
          "shard \(entry.record.shard) of \(noun) \(id) is in two stores: \(twice.store) and \(entry.store)", code: "grid_shard_duplicate",
          details: ["grid_id": .string(id), "shard": .number(Double(entry.record.shard))], hint: "give each shard's store once")
      }
      byShard[entry.record.shard] = entry
    }
    let shards = first.record.shards
    let missing = (1...shards).filter { byShard[$0] == nil }
    guard missing.isEmpty else {
      throw OperationError.notFound(
        "\(noun) \(id) is missing \(missing.count) of its \(shards) shards: \(missing.map(String.init).joined(separator: ", "))",
        code: "grid_shards_missing",
        details: ["grid_id": .string(id), "missing": .array(missing.map { .number(Double($0)) }), "shards": .number(Double(shards))],
        hint: "run the missing shards (\(rerun(first.record)) {shard} K/\(shards)), or `qtool backtest grid resume \(id) --slurm`")
    }
    return (1...shards).map { byShard[$0]! }
  }
}
