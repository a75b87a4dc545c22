import Foundation
import QtoolCore
import QtoolData
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// What `data snapshot` wrote.
public struct SnapshotReport: Encodable, Sendable {
  public struct Entry: Encodable, Sendable {
    public var dataset: String
    public var bars: Int
    public var contentHash: String
    enum CodingKeys: String, CodingKey { case dataset, bars, contentHash = "content_hash" }
  }
  public var path: String
  /// Over every dataset's name, definition and content hash: what a shard checks.
  public var hash: String
  public var datasets: [Entry]
  public var bytes: Int
  public var seconds: Double
}

/// Snapshots: read-only store files holding just the datasets a cluster job needs.
public struct SnapshotOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  /// Writes `datasets` (names) with their bars and content hashes to a new file at `path`,
  /// atomically, read-only (mode 0444).
  public func snapshot(datasets names: [String], to path: String, overwrite: Bool) throws -> SnapshotReport {
    let started = context.clock.now()
    let (copies, hash) = try plan(datasets: names)
    return try write(copies, hash: hash, to: path, overwrite: overwrite, started: started)
  }

  /// The datasets a snapshot of `names` holds, and its hash, without writing anything.
  func plan(datasets names: [String]) throws -> ([SnapshotDataset], String) {
    guard !names.isEmpty else { throw OperationError.invalidArgument("name at least one dataset to snapshot", field: "datasets") }
    var copies: [SnapshotDataset] = []
    for name in Set(names).sorted() {
      let summary = try context.database.dataset(named: name)
      guard summary.origin != "derived" else {
        throw OperationError.invalidArgument(
          "\(name) is a derived dataset; a snapshot holds imported or downloaded bars only", field: "datasets",
          hint: "snapshot the dataset it was derived from")
      }
      let bars = try context.database.bars(datasetID: summary.id)
      try context.cancellation.check()
      copies.append(
        SnapshotDataset(
          definition: DatasetDefinition(
            name: summary.name, source: summary.source, symbol: summary.symbol, timeframe: summary.parsedTimeframe,
            calendar: TradingCalendar(rawValue: summary.calendar) ?? .allDays, origin: summary.origin, metadata: summary.metadata),
          bars: bars, contentHash: ContentHash.of(bars)))
    }
    return (copies, Self.hash(copies.map { ($0.definition, $0.contentHash) }))
  }

  func write(_ copies: [SnapshotDataset], hash: String, to path: String, overwrite: Bool, started: Int64) throws -> SnapshotReport {
    try AtomicFile.checkReplaceable(path, overwrite: overwrite)
    let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard access(directory, W_OK) == 0 else {
      throw OperationError.cannotWrite("cannot write the snapshot \(path): \(String(cString: strerror(errno)))", path: path)
    }
    let temporary = AtomicFile.temporaryPath(for: path)
    TemporaryFiles.register(temporary)
    defer {
      unlink(temporary)
      unlink(temporary + "-journal")
      TemporaryFiles.unregister(temporary)
    }
    do {
      try QtoolDatabase.writeSnapshot(copies, hash: hash, to: temporary, at: context.clock.now(), cancellation: context.cancellation)
    } catch let error as StoreError {
      throw OperationError.cannotWrite("cannot write the snapshot \(path): \(error.message)", path: path)
    }
    chmod(temporary, 0o444)
    if overwrite { unlink(path) }
    guard rename(temporary, path) == 0 else {
      throw OperationError.cannotWrite("cannot write the snapshot \(path): \(String(cString: strerror(errno)))", path: path)
    }
    let bytes = ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    return SnapshotReport(
      path: path, hash: hash,
      datasets: copies.map { SnapshotReport.Entry(dataset: $0.definition.name, bars: $0.bars.count, contentHash: $0.contentHash) },
      bytes: bytes, seconds: context.clock.seconds(since: started))
  }

  static func hash(_ datasets: [(DatasetDefinition, String)]) -> String {
    let text = datasets.sorted { $0.0.name < $1.0.name }.map { definition, content in
      [definition.name, definition.source, definition.symbol, definition.timeframe.description, definition.calendar.rawValue, content].joined(
        separator: "\t")
    }.joined(separator: "\n")
    return String(ContentHash.sha256Hex(Data(text.utf8)).prefix(32))
  }

  /// The hash of the snapshot `store`, checked against its bars and against `expected` (the one
  /// recorded for the grid); a mismatch is bad input (65).
  static func verify(_ store: QtoolDatabase, expected: String?) throws -> String {
    guard let recorded = try store.snapshotHash() else {
      throw OperationError.invalidInput(
        "\(store.path) is not a snapshot (it records no snapshot hash)", code: "not_a_snapshot",
        hint: "write one with `qtool data snapshot DATASET… -o FILE`")
    }
    var entries: [(DatasetDefinition, String)] = []
    for summary in try store.datasets() {
      let bars = try store.bars(datasetID: summary.id)
      entries.append(
        (
          DatasetDefinition(
            name: summary.name, source: summary.source, symbol: summary.symbol, timeframe: summary.parsedTimeframe,
            calendar: TradingCalendar(rawValue: summary.calendar) ?? .allDays, origin: summary.origin), ContentHash.of(bars)
        ))
    }
    let actual = hash(entries)
    guard actual == recorded else {
      throw OperationError.invalidInput(
        "the snapshot \(store.path) is damaged: its bars hash to \(actual), it records \(recorded)", code: "snapshot_hash_mismatch",
        details: ["expected": .string(recorded), "actual": .string(actual)], hint: "write the snapshot again")
    }
    if let expected, expected != recorded {
      throw OperationError.invalidInput(
        "the snapshot \(store.path) has hash \(recorded), but the grid was recorded with snapshot \(expected)", code: "snapshot_hash_mismatch",
        details: ["expected": .string(expected), "actual": .string(recorded)], hint: "give every shard the snapshot the grid was submitted with")
    }
    return recorded
  }
}
