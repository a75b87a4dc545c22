import Foundation
import GRDB

/// One shard of a sharded grid as its store records it (`backtest grid --shard K/N`).
public struct GridShardRecord: Sendable, Equatable, Codable {
  public var gridID: String
  /// 1-based.
  public var shard: Int
  public var shards: Int
  /// Combinations in the whole grid.
  public var combinations: Int
  /// This shard's combinations: `firstCombination..<endCombination` of the grid's ordered list.
  public var firstCombination: Int
  public var endCombination: Int
  public var strategyName: String
  public var specText: String
  public var specHash: String
  public var dataset: String
  public var axes: String
  public var rank: String
  public var settings: String
  public var snapshotHash: String?
  public var engineVersion: String
  public var bars: Int
  public var warmupBars: Int
  public var jobID: String?
  public var completedAt: Int64
  /// The grid as given: its axes in order and its condition (JSON); nil in a shard an older
  /// qtool wrote.
  public var definition: String?
  /// The hash of the bars the shard read (`MarketData.sliceHash`); nil from an older qtool.
  public var dataHash: String?
  /// The fingerprint of the results as the shard wrote them, in order (`ContentHash.fingerprint`);
  /// nil from an older qtool.
  public var resultsHash: String?

  public init(
    gridID: String, shard: Int, shards: Int, combinations: Int, firstCombination: Int, endCombination: Int, strategyName: String, specText: String,
    specHash: String, dataset: String, axes: String, rank: String, settings: String, snapshotHash: String?, engineVersion: String, bars: Int,
    warmupBars: Int, jobID: String?, completedAt: Int64, definition: String? = nil,
    dataHash: String? = nil, resultsHash: String? = nil
  ) {
    self.definition = definition
    self.dataHash = dataHash
    self.resultsHash = resultsHash
    self.gridID = gridID
    self.shard = shard
    self.shards = shards
    self.combinations = combinations
    self.firstCombination = firstCombination
    self.endCombination = endCombination
    self.strategyName = strategyName
    self.specText = specText
    self.specHash = specHash
    self.dataset = dataset
    self.axes = axes
    self.rank = rank
    self.settings = settings
    self.snapshotHash = snapshotHash
    self.engineVersion = engineVersion
    self.bars = bars
    self.warmupBars = warmupBars
    self.jobID = jobID
    self.completedAt = completedAt
  }

  init(row: Row) {
    self.init(
      gridID: row["grid_id"], shard: row["shard"], shards: row["shards"], combinations: row["combinations"],
      firstCombination: row["first_combination"], endCombination: row["end_combination"], strategyName: row["strategy_name"],
      specText: row["spec_text"], specHash: row["spec_hash"], dataset: row["dataset"], axes: row["axes"], rank: row["rank"],
      settings: row["settings"], snapshotHash: row["snapshot_hash"], engineVersion: row["engine_version"], bars: row["bars"],
      warmupBars: row["warmup_bars"], jobID: row["job_id"], completedAt: row["completed_at"], definition: row["definition"],
      dataHash: row["data_hash"], resultsHash: row["results_hash"])
  }
}

/// One combination's result in a shard: its place in the grid's ordered list, its params and
/// metrics (JSON) and the raw value of the grid's ranking metric (nil when undefined).
public struct GridShardResult: Sendable, Equatable {
  public var combination: Int
  public var params: String
  public var metrics: String
  public var score: Double?
  public init(combination: Int, params: String, metrics: String, score: Double?) {
    self.combination = combination
    self.params = params
    self.metrics = metrics
    self.score = score
  }
}

extension QtoolDatabase {
  /// Records a shard and its results in one transaction, replacing what an earlier run of the
  /// same shard wrote: a rerun after a crash writes nothing twice.
  public func recordGridShard(_ shard: GridShardRecord, results: [GridShardResult]) throws {
    try replaceShard(
      ShardTables.grid, gridID: shard.gridID, shard: shard.shard, items: shard.firstCombination..<shard.endCombination,
      record: [
        "shards": shard.shards, "combinations": shard.combinations, "first_combination": shard.firstCombination,
        "end_combination": shard.endCombination, "strategy_name": shard.strategyName, "spec_text": shard.specText, "spec_hash": shard.specHash,
        "dataset": shard.dataset, "axes": shard.axes, "rank": shard.rank, "settings": shard.settings, "snapshot_hash": shard.snapshotHash,
        "engine_version": shard.engineVersion, "bars": shard.bars, "warmup_bars": shard.warmupBars, "job_id": shard.jobID,
        "completed_at": shard.completedAt, "definition": shard.definition,
        "data_hash": shard.dataHash, "results_hash": shard.resultsHash,
      ],
      resultColumns: ["params", "metrics", "score"],
      results: results.map { ($0.combination, [$0.params, $0.metrics, $0.score]) })
  }

  /// The shards of `gridID` this store holds (every grid's when nil), by grid and shard.
  public func gridShards(gridID: String? = nil) throws -> [GridShardRecord] {
    try shardRows(ShardTables.grid, gridID: gridID).map(GridShardRecord.init(row:))
  }

  /// How many results of grid `gridID` this store holds, whichever shard wrote them.
  public func gridShardResultCount(gridID: String) throws -> Int { try shardResultCount(ShardTables.grid, gridID: gridID) }

  /// A shard's results in combination order.
  public func gridShardResults(_ shard: GridShardRecord) throws -> [GridShardResult] {
    try read { db in
      try Row.fetchAll(
        db,
        sql:
          "SELECT combination, params, metrics, score FROM grid_shard_results WHERE grid_id = ? AND combination >= ? AND combination < ? ORDER BY combination",
        arguments: [shard.gridID, shard.firstCombination, shard.endCombination]
      ).map {
        GridShardResult(
          combination: try $0.checked(0, "combination", in: path), params: try $0.checked(1, "params", in: path),
          metrics: try $0.checked(2, "metrics", in: path), score: try $0.checkedOptional(3, "score", in: path))
      }
    }
  }

  /// True when a grid with exactly this id is stored.
  public func hasGrid(id: String) throws -> Bool {
    try read { try Int.fetchOne($0, sql: "SELECT count(*) FROM grid_runs WHERE id = ?", arguments: [id]) ?? 0 > 0 }
  }
}

/// A grid submitted to Slurm: its work directory and Slurm job ids.
public struct GridSubmissionRecord: Sendable, Equatable, Codable {
  public var gridID: String
  public var jobID: String?
  public var workDir: String
  public var shards: Int
  public var arrayJob: String
  public var mergeJob: String
  /// Earlier submissions' array and merge job ids, oldest first (a resume appends).
  public var history: [String]
  public var createdAt: Int64
  public init(
    gridID: String, jobID: String?, workDir: String, shards: Int, arrayJob: String, mergeJob: String, history: [String] = [], createdAt: Int64
  ) {
    self.gridID = gridID
    self.jobID = jobID
    self.workDir = workDir
    self.shards = shards
    self.arrayJob = arrayJob
    self.mergeJob = mergeJob
    self.history = history
    self.createdAt = createdAt
  }
}

extension QtoolDatabase {
  /// Records (or, after a resume, replaces) a grid's Slurm submission.
  public func recordGridSubmission(_ record: GridSubmissionRecord) throws {
    let history = String(decoding: try JSONEncoder().encode(record.history), as: UTF8.self)
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO grid_submissions (grid_id, job_id, work_dir, shards, array_job, merge_job, history, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (grid_id) DO UPDATE SET job_id = excluded.job_id, array_job = excluded.array_job, merge_job = excluded.merge_job,
            history = excluded.history
          """,
        arguments: [record.gridID, record.jobID, record.workDir, record.shards, record.arrayJob, record.mergeJob, history, record.createdAt])
    }
  }

  /// The Slurm submission of grid `gridID`, or of the grid a qtool job submitted.
  public func gridSubmission(gridID: String? = nil, jobID: String? = nil) throws -> GridSubmissionRecord? {
    try read { db in
      guard try db.tableExists("grid_submissions") else { return nil }
      let row =
        if let gridID {
          try Row.fetchOne(db, sql: "SELECT * FROM grid_submissions WHERE grid_id = ?", arguments: [gridID])
        } else {
          try Row.fetchOne(db, sql: "SELECT * FROM grid_submissions WHERE job_id = ?", arguments: [jobID])
        }
      guard let row else { return nil }
      let history = (try? JSONDecoder().decode([String].self, from: Data((row["history"] as String).utf8))) ?? []
      return GridSubmissionRecord(
        gridID: row["grid_id"], jobID: row["job_id"], workDir: row["work_dir"], shards: row["shards"], arrayJob: row["array_job"],
        mergeJob: row["merge_job"], history: history, createdAt: row["created_at"])
    }
  }
}
