import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// What one shard of a sharded walk-forward stored.
public struct WalkForwardShardReport: Encodable, Sendable {
  public var gridID: String
  public var jobID: String?
  public var shard: Int
  public var shards: Int
  public var strategy: String
  public var dataset: String
  public var walkForward: String
  /// The walk-forward's folds and combinations; its work items are folds × combinations, fold
  /// major, and this shard ran items `first ..< end`.
  public var folds: Int
  public var combinations: Int
  public var items: Int
  public var first: Int
  public var end: Int
  public var bars: Int
  public var snapshotHash: String?
  public var seconds: Double
  enum CodingKeys: String, CodingKey {
    case gridID = "grid_id", jobID = "job_id", shard, shards, strategy, dataset, walkForward = "walk_forward", folds, combinations, items, first =
      "first_item",
      end = "end_item", bars, snapshotHash = "snapshot_hash", seconds
  }
}

extension Metrics {
  /// Every metric exactly, infinities and undefined values as strings: a walk-forward shard
  /// stores its metrics so that a merge reports the very numbers a local run does.
  var exactJSON: String { Self.exactJSON { Self.reader($0)!(self) } }

  /// The metrics `value` gives by name, as `exactJSON` writes them.
  static func exactJSON(_ value: (String) -> Double) -> String {
    "{"
      + names.sorted().map { name in
        let number = value(name)
        let text =
          isCount(name)
          ? String(Int(number))
          : number.isNaN ? "\"nan\"" : number.isInfinite ? (number > 0 ? "\"inf\"" : "\"-inf\"") : "\(number)"
        return "\"\(name)\":\(text)"
      }.joined(separator: ",") + "}"
  }

  static func exact(_ text: String) throws -> Metrics {
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return try decoder.decode(Metrics.self, from: Data(text.utf8))
  }
}

extension BacktestOperations {
  /// Runs shard `shard` of a walk-forward, as a job, and records it in this store. The work
  /// items are the walk-forward's folds × combinations, fold major (item `f·C + c`: combination
  /// `c` in fold `f`); shard K of N runs items `⌊I·(K−1)/N⌋ ..< ⌊I·K/N⌋` of the I, so N equal to
  /// the number of folds gives one fold per task. Each item is measured on its fold's train
  /// window and on its test window, so the merge picks each fold's best without the data.
  public func walkForwardShard(
    _ request: GridRequest, train: PeriodLength, test: PeriodLength, shard: GridShard, data: ShardSnapshot? = nil
  ) throws -> WalkForwardShardReport {
    let loaded = try checkGrid(request)
    struct Request: Encodable {
      var grid: GridRequest
      var train: String
      var test: String
      var shard: String
    }
    return try JobRunner.run(
      .walkForward, request: Request(grid: request, train: train.description, test: test.description, shard: shard.description), context: context,
      link: { ["grid_id": .string($0.gridID)] }
    ) { context in
      try BacktestOperations(context).walkForwardShardNow(request, loaded: loaded, train: train, test: test, shard: shard, data: data)
    }
  }

  func walkForwardShardNow(
    _ request: GridRequest, loaded: LoadedSpec, train: PeriodLength, test: PeriodLength, shard: GridShard, data snapshot: ShardSnapshot?
  ) throws -> WalkForwardShardReport {
    let started = context.clock.now()
    let (reader, snapshotHash) = shardReader(snapshot: snapshot)
    let base = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin)
    let known = base.parameters
    let combinations = try Self.combinations(request, known: known)
    // As a local walk-forward: the train windows warm up for the grid's longest warm-up, each
    // test window for its combination's own.
    let (warmup, expression) = try reader.longestWarmup(loaded, capital: request.capital, combinations: combinations)
    let data = try ShardSnapshot.explaining(snapshot) {
      try reader.loadData(
        loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps, warmup: warmup,
        noWarmup: request.noWarmup, expression: expression)
    }
    guard data.tradedCount >= 2 else { throw BacktestError.noBars(dataset: data.datasetName) }
    let folds = Self.walkForwardFolds(data, train: train, test: test)
    guard !folds.isEmpty else { throw Self.shorterThanOneWindow(data.timestamps) }
    let count = combinations.count
    let range = shard.range(of: folds.count * count)
    let models = try ModelAttachments.load(base.modelNames, database: reader.database, allowInSample: false)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let read = Metrics.reader(request.rank) ?? { _ in .nan }
    var results: [WalkForwardShardResult] = []
    results.reserveCapacity(range.count)
    for (fold, (trainRange, testRange)) in folds.enumerated() {
      let (lower, upper) = (max(range.lowerBound, fold * count), min(range.upperBound, (fold + 1) * count))
      guard lower < upper else { continue }
      let mine = lower..<upper
      let indices = (mine.lowerBound - fold * count)..<(mine.upperBound - fold * count)
      let chosen = Array(combinations[indices])
      let inSample = try reader.evaluate(
        chosen, loaded: loaded, capital: base.capital, data: data.window(trainRange, warmup: warmup), jobs: request.jobs)
      // Out of sample each combination warms up for its own look-back, as the chosen one does
      // in a local run: combinations of the same warm-up share one window.
      var byWarmup: [Int: [Int]] = [:]
      for (offset, combination) in chosen.enumerated() {
        var strategy = try CompiledStrategy(loaded.spec, overrides: combination, capital: request.capital, origin: loaded.origin)
        models.apply(to: &strategy)
        byWarmup[strategy.warmup.bars, default: []].append(offset)
      }
      var outOfSample = [Metrics?](repeating: nil, count: chosen.count)
      for (bars, offsets) in byWarmup.sorted(by: { $0.key < $1.key }) {
        let metrics = try reader.evaluate(
          offsets.map { chosen[$0] }, loaded: loaded, capital: base.capital, data: data.window(testRange, warmup: bars), jobs: request.jobs)
        for (offset, metric) in zip(offsets, metrics) { outOfSample[offset] = metric }
      }
      for offset in chosen.indices {
        let score = read(inSample[offset])
        results.append(
          WalkForwardShardResult(
            item: mine.lowerBound + offset,
            params: String(decoding: try encoder.encode(known.merging(chosen[offset]) { $1 }), as: UTF8.self),
            inSample: inSample[offset].exactJSON, outOfSample: outOfSample[offset]!.exactJSON, score: score.isNaN ? nil : score))
      }
      try context.cancellation.check()
    }
    let walkForward = "\(train)/\(test)"
    let id = try Self.shardedGridID(strategy: loaded.spec.name, request: request, shards: shard.count, walkForward: walkForward)
    let windows = folds.map { [Self.span(data.timestamps, $0.train), Self.span(data.timestamps, $0.test)] }
    try context.cancellation.check()
    try database.recordWalkForwardShard(
      WalkForwardShardRecord(
        gridID: id, shard: shard.index, shards: shard.count, folds: folds.count, combinations: count, firstItem: range.lowerBound,
        endItem: range.upperBound, strategyName: loaded.spec.name, specText: loaded.text, specHash: loaded.hash, dataset: data.datasetName,
        axes: try Self.axesText(request), rank: request.rank, settings: try Self.settingsText(request), walkForward: walkForward,
        windows: String(decoding: try encoder.encode(windows), as: UTF8.self), snapshotHash: snapshotHash, engineVersion: Self.shardEngineVersion,
        bars: data.tradedCount, warmupBars: data.warmupEnabled ? warmup : 0, jobID: context.jobID, completedAt: context.clock.now(),
        definition: try GridDefinition(axes: request.axes, condition: request.condition).text, dataHash: data.sliceHash,
        resultsHash: ContentHash.fingerprint(records: results.map(\.hashedFields))),
      results: results)
    return WalkForwardShardReport(
      gridID: id, jobID: context.jobID, shard: shard.index, shards: shard.count, strategy: loaded.spec.name, dataset: data.datasetName,
      walkForward: walkForward, folds: folds.count, combinations: count, items: folds.count * count, first: range.lowerBound, end: range.upperBound,
      bars: data.tradedCount, snapshotHash: snapshotHash, seconds: context.clock.seconds(since: started))
  }

  /// Refuses a stored item whose params are not its combination's (with the strategy's other
  /// params, as a shard stores them), whose metrics do not read, or whose score is not the
  /// ranked metric of its in-sample metrics (undefined: no score).
  static func checkItem(
    _ result: WalkForwardShardResult, expected: [String: Double], count: Int, rank: String, encoder: JSONEncoder, id: String, shard: Int,
    store: String
  ) throws {
    let (fold, combination) = (result.item / count, result.item % count)
    func mismatch(_ what: String) -> OperationError {
      OperationError.invalidInput(
        "\(store): work item \(result.item) of walk-forward \(id) (fold \(fold + 1), combination \(combination), shard \(shard)) \(what); the shard store was changed after the shard ran, or is damaged, and nothing was merged",
        code: "grid_shard_mismatch",
        details: [
          "grid_id": .string(id), "shard": .number(Double(shard)), "item": .number(Double(result.item)), "store": .string(store),
        ], hint: "run that shard again (backtest grid … --walk-forward … --shard \(shard)/N), then merge")
    }
    guard FlatJSON.numbers(result.params) == expected else {
      throw mismatch("has params \(result.params), but its combination is \(try paramsText(expected, encoder: encoder))")
    }
    guard let inSample = try? Metrics.exact(result.inSample), (try? Metrics.exact(result.outOfSample)) != nil else {
      throw mismatch("has metrics that do not read as metrics")
    }
    let value = Metrics.reader(rank).map { $0(inSample) } ?? .nan
    let score = result.score.map { $0.isNaN ? "NaN" : "\($0)" } ?? "none"
    if value.isNaN {
      guard result.score == nil else { throw mismatch("has score \(score), but its in-sample \(rank) is undefined") }
    } else {
      guard let stored = result.score, stored == value else { throw mismatch("has score \(score), but its in-sample \(rank) is \(value)") }
    }
  }

  /// True when `stores` (this store when empty) hold shards of a walk-forward with this id
  /// rather than of a plain grid: `backtest grid merge` takes either.
  public func isShardedWalkForward(id: String, stores given: [ShardStore]) throws -> Bool {
    let stores = given.isEmpty ? [ShardStore(path: database.path, database: database)] : given
    for store in stores where !(try store.database.walkForwardShards(gridID: id)).isEmpty { return true }
    return false
  }

  /// Checks that the shards in `stores` (this store's own when empty) hold every work item of
  /// walk-forward `id` exactly once, all run with the same spec version, snapshot, engine and
  /// walk-forward settings; picks each fold's best in sample as a local run does, stitches the
  /// test windows, and stores the report in this store. Missing shards are listed.
  public func mergeWalkForward(id: String, stores given: [ShardStore]) throws -> WalkForwardReport {
    let byShard: [FoundShard<WalkForwardShardRecord>] = try checkedShards(
      of: id, noun: "walk-forward", in: given, read: { try $0.walkForwardShards(gridID: id) },
      others: { try $0.walkForwardShards().map(\.gridID) + $0.gridShards().map(\.gridID) },
      countResults: { try $0.walkForwardShardResultCount(gridID: id) },
      checks: [
        ShardDisagreement(
          what: "walk-forward settings", differs: { $0.walkForward != $1.walkForward || $0.windows != $1.windows || $0.folds != $1.folds },
          describe: { "--walk-forward \($0.walkForward) (\($0.folds) folds)" })
      ],
      sameData: { $0.dataset == $1.dataset && $0.bars == $1.bars && $0.warmupBars == $1.warmupBars && $0.dataHash == $1.dataHash },
      runAlike: "run every shard of a walk-forward with the same spec, snapshot, qtool and --walk-forward",
      rerun: { "backtest grid … --walk-forward \($0.walkForward)" })
    let first = byShard[0]
    let shards = first.record.shards
    guard try database.walkForwardRunReport(id: id) == nil else {
      throw OperationError(
        .alreadyExists, code: "grid_exists", "walk-forward \(id) is already merged into \(database.path)", details: ["grid_id": .string(id)],
        hint: "each walk-forward is merged once")
    }
    let (folds, count) = (first.record.folds, first.record.combinations)
    let total = folds * count
    // Nothing a shard store says is taken on trust: each item's params must be its
    // combination's, and its score the ranked metric of its in-sample metrics.
    let (combinations, known) = try Self.recordedCombinations(first.record, id: id, store: first.store)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    var items = [WalkForwardShardResult?](repeating: nil, count: total)
    for entry in byShard {
      let shard = entry.record.shard
      let expected = GridShard(unchecked: shard, count: shards).range(of: total)
      let results = try entry.database.walkForwardShardResults(entry.record)
      guard entry.record.firstItem == expected.lowerBound, entry.record.endItem == expected.upperBound, results.map(\.item) == Array(expected) else {
        throw OperationError.invalidInput(
          "shard \(shard) of walk-forward \(id) in \(entry.store) holds \(results.count) of its \(expected.count) work items",
          code: "grid_shard_incomplete", details: ["grid_id": .string(id), "shard": .number(Double(shard))], hint: "run that shard again")
      }
      for result in results {
        try Self.checkItem(
          result, expected: combinations[result.item % count].merging(known) { mine, _ in mine }, count: count, rank: first.record.rank,
          encoder: encoder, id: id, shard: shard, store: entry.store)
        items[result.item] = result
      }
      try Self.checkResultsHash(entry, results.map(\.hashedFields), noun: "walk-forward", id: id)
      try context.cancellation.check()
    }
    let spans = try JSONDecoder().decode([[WalkForwardReport.Span]].self, from: Data(first.record.windows.utf8))
    var windows: [WalkForwardReport.Window] = []
    var compounded = 1.0
    for fold in 0..<folds {
      let block = items[(fold * count)..<((fold + 1) * count)].map { $0! }
      let best = block[Self.ranking(scores: block.map { $0.score ?? .nan }, by: first.record.rank)[0]]
      let outOfSample = try Metrics.exact(best.outOfSample)
      let inSample = try Metrics.exact(best.inSample)
      compounded *= 1 + outOfSample.totalReturn
      windows.append(
        WalkForwardReport.Window(
          train: spans[fold][0], test: spans[fold][1], parameters: try JSONDecoder().decode([String: Double].self, from: Data(best.params.utf8)),
          inSample: inSample, outOfSample: outOfSample, inSampleRank: Metrics.reader(first.record.rank).map { $0(inSample) } ?? .nan))
    }
    let axes = (try? JSONDecoder().decode([String: [Double]].self, from: Data(first.record.axes.utf8))) ?? [:]
    let report = WalkForwardReport(
      strategy: first.record.strategyName, dataset: first.record.dataset, rank: first.record.rank, combinations: count,
      warmupBars: first.record.warmupBars, windows: windows, outOfSampleReturn: compounded - 1, id: id, shards: shards,
      axes: axes.keys.sorted())
    try database.recordWalkForwardRun(
      id: id, strategyName: first.record.strategyName, dataset: first.record.dataset, walkForward: first.record.walkForward, shards: shards,
      report: try StoredWalkForward(report, axes: axes).encoded(), jobID: context.jobID, at: context.clock.now())
    return report
  }
}
