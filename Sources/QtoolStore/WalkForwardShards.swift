import Foundation
import GRDB

/// One shard of a sharded walk-forward as its store records it (`backtest grid --walk-forward
/// … --shard K/N`): its block `firstItem..<endItem` of the (fold × combination) work items, fold
/// major (item `f·C + c` is combination `c` in fold `f`).
public struct WalkForwardShardRecord: Sendable, Equatable, Codable {
  public var gridID: String
  /// 1-based.
  public var shard: Int
  public var shards: Int
  public var folds: Int
  public var combinations: Int
  public var firstItem: Int
  public var endItem: Int
  public var strategyName: String
  public var specText: String
  public var specHash: String
  public var dataset: String
  public var axes: String
  public var rank: String
  public var settings: String
  /// `TRAIN/TEST`, e.g. `2y/6m`.
  public var walkForward: String
  /// Every fold's train and test spans (JSON), the same in every shard of the walk-forward.
  public var windows: String
  public var snapshotHash: String?
  public var engineVersion: String
  public var bars: Int
  public var warmupBars: Int
  public var jobID: String?
  public var completedAt: Int64
  /// The grid as given: its axes in order and its condition (JSON, as `GridShardRecord`'s);
  /// nil in a shard an older qtool wrote.
  public var definition: String?
  /// The hash of the bars the shard read (`MarketData.sliceHash`); nil from an older qtool.
  public var dataHash: String?
  /// The fingerprint of the results as the shard wrote them, in order (`ContentHash.fingerprint`);
  /// nil from an older qtool.
  public var resultsHash: String?

  public init(
    gridID: String, shard: Int, shards: Int, folds: Int, combinations: Int, firstItem: Int, endItem: Int, strategyName: String, specText: String,
    specHash: String, dataset: String, axes: String, rank: String, settings: String, walkForward: String, windows: String, snapshotHash: String?,
    engineVersion: String, bars: Int, warmupBars: Int, jobID: String?, completedAt: Int64, definition: String? = nil,
    dataHash: String? = nil, resultsHash: String? = nil
  ) {
    self.definition = definition
    self.dataHash = dataHash
    self.resultsHash = resultsHash
    self.gridID = gridID
    self.shard = shard
    self.shards = shards
    self.folds = folds
    self.combinations = combinations
    self.firstItem = firstItem
    self.endItem = endItem
    self.strategyName = strategyName
    self.specText = specText
    self.specHash = specHash
    self.dataset = dataset
    self.axes = axes
    self.rank = rank
    self.settings = settings
    self.walkForward = walkForward
    self.windows = windows
    self.snapshotHash = snapshotHash
    self.engineVersion = engineVersion
    self.bars = bars
    self.warmupBars = warmupBars
    self.jobID = jobID
    self.completedAt = completedAt
  }

  init(row: Row) {
    self.init(
      gridID: row["grid_id"], shard: row["shard"], shards: row["shards"], folds: row["folds"], combinations: row["combinations"],
      firstItem: row["first_item"], endItem: row["end_item"], strategyName: row["strategy_name"], specText: row["spec_text"],
      specHash: row["spec_hash"], dataset: row["dataset"], axes: row["axes"], rank: row["rank"], settings: row["settings"],
      walkForward: row["walk_forward"], windows: row["windows"], snapshotHash: row["snapshot_hash"], engineVersion: row["engine_version"],
      bars: row["bars"], warmupBars: row["warmup_bars"], jobID: row["job_id"], completedAt: row["completed_at"], definition: row["definition"],
      dataHash: row["data_hash"], resultsHash: row["results_hash"])
  }
}

/// One (fold, combination) item of a walk-forward shard: the combination's params (all of
/// them, JSON), its metrics on the fold's train and test windows (JSON), and the raw in-sample
/// value of the ranking metric (nil when undefined).
public struct WalkForwardShardResult: Sendable, Equatable {
  public var item: Int
  public var params: String
  public var inSample: String
  public var outOfSample: String
  public var score: Double?
  public init(item: Int, params: String, inSample: String, outOfSample: String, score: Double?) {
    self.item = item
    self.params = params
    self.inSample = inSample
    self.outOfSample = outOfSample
    self.score = score
  }
}

extension QtoolDatabase {
  /// Records a walk-forward shard and its items in one transaction, replacing what an earlier
  /// run of the same shard wrote.
  public func recordWalkForwardShard(_ shard: WalkForwardShardRecord, results: [WalkForwardShardResult]) throws {
    try replaceShard(
      ShardTables.walkForward, gridID: shard.gridID, shard: shard.shard, items: shard.firstItem..<shard.endItem,
      record: [
        "shards": shard.shards, "folds": shard.folds, "combinations": shard.combinations, "first_item": shard.firstItem, "end_item": shard.endItem,
        "strategy_name": shard.strategyName, "spec_text": shard.specText, "spec_hash": shard.specHash, "dataset": shard.dataset,
        "axes": shard.axes, "rank": shard.rank, "settings": shard.settings, "walk_forward": shard.walkForward, "windows": shard.windows,
        "snapshot_hash": shard.snapshotHash, "engine_version": shard.engineVersion, "bars": shard.bars, "warmup_bars": shard.warmupBars,
        "job_id": shard.jobID, "completed_at": shard.completedAt, "definition": shard.definition,
        "data_hash": shard.dataHash, "results_hash": shard.resultsHash,
      ],
      resultColumns: ["params", "in_sample", "out_of_sample", "score"],
      results: results.map { ($0.item, [$0.params, $0.inSample, $0.outOfSample, $0.score]) })
  }

  /// How many work items of walk-forward `gridID` this store holds, whichever shard wrote them.
  public func walkForwardShardResultCount(gridID: String) throws -> Int { try shardResultCount(ShardTables.walkForward, gridID: gridID) }

  /// The walk-forward shards of `gridID` this store holds (every one's when nil).
  public func walkForwardShards(gridID: String? = nil) throws -> [WalkForwardShardRecord] {
    try shardRows(ShardTables.walkForward, gridID: gridID).map(WalkForwardShardRecord.init(row:))
  }

  /// A walk-forward shard's items in order.
  public func walkForwardShardResults(_ shard: WalkForwardShardRecord) throws -> [WalkForwardShardResult] {
    try read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT item, params, in_sample, out_of_sample, score FROM walk_forward_shard_results
          WHERE grid_id = ? AND item >= ? AND item < ? ORDER BY item
          """,
        arguments: [shard.gridID, shard.firstItem, shard.endItem]
      ).map {
        WalkForwardShardResult(
          item: try $0.checked(0, "item", in: path), params: try $0.checked(1, "params", in: path), inSample: try $0.checked(2, "in_sample", in: path),
          outOfSample: try $0.checked(3, "out_of_sample", in: path), score: try $0.checkedOptional(4, "score", in: path))
      }
    }
  }

  /// Stores a merged walk-forward's report (JSON).
  public func recordWalkForwardRun(
    id: String, strategyName: String, dataset: String, walkForward: String, shards: Int, report: String, jobID: String?, at: Int64
  ) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO walk_forward_runs (id, strategy_name, dataset, walk_forward, shards, report, job_id, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          """, arguments: [id, strategyName, dataset, walkForward, shards, report, jobID, at])
    }
  }

  /// A merged walk-forward's stored report (JSON), or nil.
  public func walkForwardRunReport(id: String) throws -> String? {
    try read { db in
      guard try db.tableExists("walk_forward_runs") else { return nil }
      return try String.fetchOne(db, sql: "SELECT report FROM walk_forward_runs WHERE id = ?", arguments: [id])
    }
  }

  /// The merged walk-forwards, newest first.
  public func walkForwardRuns() throws -> [WalkForwardRunRecord] {
    try read { db in
      guard try db.tableExists("walk_forward_runs") else { return [] }
      return try Row.fetchAll(db, sql: "SELECT * FROM walk_forward_runs ORDER BY created_at DESC, id").map(WalkForwardRunRecord.init(row:))
    }
  }

  /// The merged walk-forward `id` names, exactly or as the unique prefix of one; nil when it names
  /// none (nor a grid's prefix with it), so the caller looks for a grid. Grids and merged
  /// walk-forwards share one id space (`backtest grid show ID` takes either): a prefix of both a
  /// grid's id and a walk-forward's is ambiguous.
  public func walkForwardRun(id: String) throws -> WalkForwardRunRecord? {
    try read { db in
      guard !id.isEmpty, try db.tableExists("walk_forward_runs") else { return nil }
      if let exact = try Row.fetchOne(db, sql: "SELECT * FROM walk_forward_runs WHERE id = ?", arguments: [id]) {
        return WalkForwardRunRecord(row: exact)
      }
      if try Int.fetchOne(db, sql: "SELECT count(*) FROM grid_runs WHERE id = ?", arguments: [id]) ?? 0 > 0 { return nil }
      let pattern = RawSQL.prefixPattern(id)
      let runs = try Row.fetchAll(db, sql: "SELECT * FROM walk_forward_runs WHERE id LIKE ? ESCAPE '\\' LIMIT 20", arguments: [pattern])
      guard !runs.isEmpty else { return nil }
      let grids = try String.fetchAll(db, sql: "SELECT id FROM grid_runs WHERE id LIKE ? ESCAPE '\\' LIMIT 20", arguments: [pattern])
      guard runs.count == 1, grids.isEmpty else { throw GridError.ambiguous(id, candidates: (grids + runs.map { $0["id"] as String }).sorted()) }
      return WalkForwardRunRecord(row: runs[0])
    }
  }
}

/// A merged walk-forward as its store keeps it (`backtest grid merge` of walk-forward shards).
public struct WalkForwardRunRecord: Sendable, Equatable {
  public var id: String
  public var strategyName: String
  public var dataset: String
  /// `TRAIN/TEST`, e.g. `2y/6m`.
  public var walkForward: String
  public var shards: Int
  /// The report, as JSON.
  public var report: String
  public var jobID: String?
  public var createdAt: Int64

  init(row: Row) {
    id = row["id"]
    strategyName = row["strategy_name"]
    dataset = row["dataset"]
    walkForward = row["walk_forward"]
    shards = row["shards"]
    report = row["report"]
    jobID = row["job_id"]
    createdAt = row["created_at"]
  }
}
