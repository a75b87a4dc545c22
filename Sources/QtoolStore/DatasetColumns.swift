import Foundation
import GRDB
import QtoolCore

extension QtoolDatabase {
  /// Replaces the extra columns of a dataset (inside a transaction).
  public static func writeColumns(_ db: Database, datasetID: Int64, _ columns: [(name: String, values: [Double])]) throws {
    try db.execute(sql: "DELETE FROM dataset_columns WHERE dataset_id = ?", arguments: [datasetID])
    for (position, column) in columns.enumerated() {
      let blob = column.values.withUnsafeBufferPointer { Data(buffer: $0) }
      try db.execute(
        sql: "INSERT INTO dataset_columns (dataset_id, position, name, data) VALUES (?, ?, ?, ?)",
        arguments: [datasetID, position, column.name, blob])
    }
  }

  /// `series` (bars of the dataset, consecutive) with the dataset's feature columns over the
  /// same bars. Columns are stored whole, one value per stored bar: bars stored after the
  /// features were computed leave them out of date, and they are then not attached (the rules
  /// reading them say the column is missing).
  static func attachColumns(_ db: Database, datasetID: Int64, to series: BarSeries) throws -> BarSeries {
    let rows = try Row.fetchAll(db, sql: "SELECT name, data FROM dataset_columns WHERE dataset_id = ? ORDER BY position", arguments: [datasetID])
    guard !rows.isEmpty, let first = series.timestamps.first else { return series }
    let all = try readTimestamps(db, datasetID: datasetID)
    var low = 0, high = all.count
    while low < high {
      let middle = (low + high) / 2
      if all[middle] < first { low = middle + 1 } else { high = middle }
    }
    guard low + series.count <= all.count, all[low] == first, all[low + series.count - 1] == series.timestamps.last else { return series }
    var attached = series
    for row in rows {
      let data: Data = row["data"]
      guard data.count == all.count * MemoryLayout<Double>.size else { continue }
      let values = data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)[low..<(low + series.count)]) }
      attached.columns[row["name"]] = values
    }
    return attached
  }

  /// The extra columns of a dataset, in the order they were added.
  public func columns(datasetID: Int64) throws -> [(name: String, values: [Double])] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT name, data FROM dataset_columns WHERE dataset_id = ? ORDER BY position", arguments: [datasetID]).map { row in
        let data: Data = row["data"]
        let values = data.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) }
        return (row["name"], values)
      }
    }
  }

  /// Replaces the whole content of a derived dataset: bars, extra columns, lineage. A dataset
  /// that was downloaded or imported is replaced only with `replaceOriginal`: its bars cannot
  /// be derived again.
  public func storeDerived(
    _ definition: DatasetDefinition, bars: BarSeries, columns: [(name: String, values: [Double])], contentHash: String, replace: Bool,
    replaceOriginal: Bool = false
  ) throws {
    try write { db in
      if let row = try Row.fetchOne(db, sql: "SELECT id, origin FROM datasets WHERE name = ?", arguments: [definition.name]) {
        let existing: Int64 = row["id"]
        let origin: String = row["origin"]
        guard replace else { throw OperationConflict(name: definition.name) }
        guard origin == "derived" || replaceOriginal else { throw OperationConflict(name: definition.name, origin: origin) }
        try db.execute(sql: "DELETE FROM bar_chunks WHERE dataset_id = ?", arguments: [existing])
        try db.execute(sql: "DELETE FROM datasets WHERE id = ?", arguments: [existing])
      }
      let id = try Self.findOrCreateDataset(db, definition)
      _ = try Self.upsertBars(db, datasetID: id, bars)
      try Self.writeColumns(db, datasetID: id, columns)
      try Self.refreshStatistics(db, datasetID: id)
      try db.execute(sql: "UPDATE datasets SET content_hash = ? WHERE id = ?", arguments: [contentHash, id])
    }
  }
}

/// A derived dataset's name is taken and replacing was not asked for.
public struct OperationConflict: QtoolError, Equatable {
  public var name: String
  /// Set when the dataset is not a derived one (`downloaded`, `imported`).
  public var origin: String?
  public init(name: String, origin: String? = nil) {
    self.name = name
    self.origin = origin
  }
  public var category: ErrorCategory { .alreadyExists }
  public var code: String { origin == nil ? "dataset_exists" : "dataset_is_original" }
  public var message: String {
    guard let origin else { return "dataset '\(name)' already exists" }
    return "dataset '\(name)' holds \(origin) bars, which preprocessing cannot make again"
  }
  public var details: [String: JSONValue] { ["dataset": .string(name), "origin": JSONValue(origin)] }
  public var hint: ErrorHint? {
    origin == nil ? "replace it with {force}, or choose another {out}" : "choose another {out}, or replace it anyway with {replace_original}"
  }
}
