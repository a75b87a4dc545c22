import Foundation
import GRDB
import QtoolCore

/// A registered model: its name, the file it came from and its spec's latest text.
public struct ModelRecord: Codable, Sendable, Equatable {
  public var id: Int64
  public var name: String
  public var path: String?
  public var specText: String
  public var createdAt: Int64
  public var updatedAt: Int64
}

/// One training of a model.
public struct ModelVersionRecord: Codable, Sendable, Equatable {
  public var id: Int64
  public var model: String
  public var version: Int
  /// `training` until complete, then `ready`.
  public var status: String
  public var jobID: String?
  public var specText: String
  public var specHash: String
  public var family: String
  public var labelKind: String
  /// JSON: the feature names, in column order.
  public var features: String
  /// JSON: the params and model settings it was trained with.
  public var params: String
  /// `split` or `walk_forward`.
  public var plan: String
  /// JSON: the datasets and their content hashes.
  public var datasets: String
  public var dataHash: String?
  public var libraryVersion: String?
  public var bestEpoch: Int?
  public var epochs: Int?
  /// JSON: rows per block, best and test metrics, the library's messages.
  public var summary: String?
  public var createdAt: Int64
  public var finishedAt: Int64?

  init(row: Row) {
    id = row["id"]
    model = row["name"]
    version = row["version"]
    status = row["status"]
    jobID = row["job_id"]
    specText = row["spec_text"]
    specHash = row["spec_hash"]
    family = row["family"]
    labelKind = row["label_kind"]
    features = row["features"]
    params = row["params"]
    plan = row["plan"]
    datasets = row["datasets"]
    dataHash = row["data_hash"]
    libraryVersion = row["library_version"]
    bestEpoch = row["best_epoch"]
    epochs = row["epochs"]
    summary = row["summary"]
    createdAt = row["created_at"]
    finishedAt = row["finished_at"]
  }
}

/// One fold's trained model: its blocks (JSON), best epoch, row counts (JSON) and the model itself.
public struct ModelFoldRecord: Sendable, Equatable {
  public var fold: Int
  public var blocks: String
  public var bestEpoch: Int
  public var rows: String
  public var model: Data
  public init(fold: Int, blocks: String, bestEpoch: Int, rows: String, model: Data) {
    self.fold = fold
    self.blocks = blocks
    self.bestEpoch = bestEpoch
    self.rows = rows
    self.model = model
  }
}

/// A version's predictions on one symbol's test blocks, stitched in time.
public struct ModelPredictionSeries: Sendable, Equatable {
  public var symbol: String
  public var timestamps: [Int64]
  public var predictions: [Double]
  public init(symbol: String, timestamps: [Int64], predictions: [Double]) {
    self.symbol = symbol
    self.timestamps = timestamps
    self.predictions = predictions
  }
}

/// What the version's summary columns hold when it completes.
public struct ModelCompletion: Sendable {
  public var datasets: String
  public var dataHash: String
  public var libraryVersion: String
  public var bestEpoch: Int
  public var epochs: Int
  public var summary: String
  public init(datasets: String, dataHash: String, libraryVersion: String, bestEpoch: Int, epochs: Int, summary: String) {
    self.datasets = datasets
    self.dataHash = dataHash
    self.libraryVersion = libraryVersion
    self.bestEpoch = bestEpoch
    self.epochs = epochs
    self.summary = summary
  }
}

public enum ModelStoreError: QtoolError, Equatable {
  case notFound(String, suggestion: String?)
  case versionNotFound(String, version: Int, ready: [Int])
  case notTrained(String)

  public var category: ErrorCategory { .notFound }
  public var code: String {
    switch self {
    case .notFound: return "model_not_found"
    case .versionNotFound: return "model_version_not_found"
    case .notTrained: return "model_not_trained"
    }
  }
  public var message: String {
    switch self {
    case .notFound(let name, let suggestion): return "no model '\(name)'" + (suggestion.map { " (did you mean '\($0)'?)" } ?? "")
    case .versionNotFound(let name, let version, let ready):
      return "model \(name) has no ready version \(version)"
        + (ready.isEmpty ? "" : "; its versions: \(ready.map(String.init).joined(separator: ", "))")
    case .notTrained(let name): return "model \(name) has no trained version yet"
    }
  }
  public var details: [String: JSONValue] {
    switch self {
    case .notFound(let name, let suggestion): return ["model": .string(name), "suggestion": JSONValue(suggestion)]
    case .versionNotFound(let name, let version, _): return ["model": .string(name), "version": JSONValue(version)]
    case .notTrained(let name): return ["model": .string(name)]
    }
  }
  public var hint: ErrorHint? {
    switch self {
    case .notFound: return "`qtool train list` shows the models; `qtool train new NAME` makes one"
    case .versionNotFound(let name, _, _): return "`qtool train show \(name)` lists its versions"
    case .notTrained(let name): return "train it first with `qtool train run \(name)`"
    }
  }
}

extension QtoolDatabase {
  /// Registers `name` with its spec's text (and the file it came from), replacing the text.
  public func registerModel(name: String, path: String?, specText: String, at time: Int64) throws {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO models (name, path, spec_text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (name) DO UPDATE SET path = COALESCE(excluded.path, path), spec_text = excluded.spec_text, updated_at = excluded.updated_at
          """, arguments: [name, path, specText, time, time])
    }
  }

  public func model(named name: String) throws -> ModelRecord {
    let row = try read { try Row.fetchOne($0, sql: "SELECT * FROM models WHERE name = ?", arguments: [name]) }
    guard let row else {
      let names = try read { try String.fetchAll($0, sql: "SELECT name FROM models") }
      throw ModelStoreError.notFound(name, suggestion: Similarity.closest(to: name, among: names))
    }
    return ModelRecord(
      id: row["id"], name: row["name"], path: row["path"], specText: row["spec_text"], createdAt: row["created_at"], updatedAt: row["updated_at"])
  }

  public func models() throws -> [ModelRecord] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM models ORDER BY name").map { row in
        ModelRecord(
          id: row["id"], name: row["name"], path: row["path"], specText: row["spec_text"], createdAt: row["created_at"],
          updatedAt: row["updated_at"])
      }
    }
  }

  /// Starts a version of `name` (registered first when it is not): the next number, status
  /// `training`. Returns its row id and number.
  public func startModelVersion(
    name: String, path: String?, specText: String, specHash: String, family: String, labelKind: String, features: String, params: String,
    plan: String, jobID: String?, at time: Int64
  ) throws -> (id: Int64, version: Int) {
    try write { db in
      try db.execute(
        sql: """
          INSERT INTO models (name, path, spec_text, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
          ON CONFLICT (name) DO UPDATE SET path = COALESCE(excluded.path, path), updated_at = excluded.updated_at
          """, arguments: [name, path, specText, time, time])
      let modelID = try Int64.fetchOne(db, sql: "SELECT id FROM models WHERE name = ?", arguments: [name])!
      let next = (try Int.fetchOne(db, sql: "SELECT max(version) FROM model_versions WHERE model_id = ?", arguments: [modelID]) ?? 0) + 1
      try db.execute(
        sql: """
          INSERT INTO model_versions (model_id, version, status, job_id, spec_text, spec_hash, family, label_kind, features, params, plan, created_at)
          VALUES (?, ?, 'training', ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """, arguments: [modelID, next, jobID, specText, specHash, family, labelKind, features, params, plan, time])
      return (db.lastInsertedRowID, next)
    }
  }

  /// Stores one epoch's figures (JSON) as training goes.
  public func recordEpoch(versionID: Int64, fold: Int, epoch: Int, figures: String) throws {
    try write { db in
      try db.execute(
        sql: "INSERT OR REPLACE INTO training_metrics (version_id, fold, epoch, figures) VALUES (?, ?, ?, ?)",
        arguments: [versionID, fold, epoch, figures])
    }
  }

  /// Completes a version — its folds' models, its predictions and its summary — in one transaction.
  public func completeModelVersion(
    id: Int64, folds: [ModelFoldRecord], predictions: [ModelPredictionSeries], completion: ModelCompletion, at time: Int64
  ) throws {
    try write { db in
      for fold in folds {
        try db.execute(
          sql: "INSERT INTO model_folds (version_id, fold, blocks, best_epoch, rows, model) VALUES (?, ?, ?, ?, ?, ?)",
          arguments: [id, fold.fold, fold.blocks, fold.bestEpoch, fold.rows, fold.model])
      }
      for series in predictions {
        let timestamps = series.timestamps.withUnsafeBytes { Data($0) }
        let values = series.predictions.withUnsafeBytes { Data($0) }
        try db.execute(
          sql: "INSERT INTO model_predictions (version_id, symbol, timestamps, predictions) VALUES (?, ?, ?, ?)",
          arguments: [id, series.symbol, timestamps, values])
      }
      try db.execute(
        sql: """
          UPDATE model_versions SET status = 'ready', datasets = ?, data_hash = ?, library_version = ?, best_epoch = ?, epochs = ?, summary = ?,
            finished_at = ? WHERE id = ?
          """,
        arguments: [
          completion.datasets, completion.dataHash, completion.libraryVersion, completion.bestEpoch, completion.epochs, completion.summary, time, id,
        ])
    }
  }

  /// Deletes a version with everything it stored (a failed or cancelled training's).
  public func deleteModelVersion(id: Int64) throws {
    try write { db in try db.execute(sql: "DELETE FROM model_versions WHERE id = ?", arguments: [id]) }
  }

  /// Every version of `name`, oldest first (training ones included).
  public func modelVersions(name: String) throws -> [ModelVersionRecord] {
    _ = try model(named: name)
    return try read { db in
      try Row.fetchAll(
        db,
        sql: "SELECT v.*, m.name FROM model_versions v JOIN models m ON m.id = v.model_id WHERE m.name = ? ORDER BY v.version",
        arguments: [name]
      ).map(ModelVersionRecord.init(row:))
    }
  }

  /// The latest ready version of `name`, or the ready version `version`.
  public func readyModelVersion(name: String, version: Int? = nil) throws -> ModelVersionRecord {
    let ready = try modelVersions(name: name).filter { $0.status == "ready" }
    if let version {
      guard let found = ready.first(where: { $0.version == version }) else {
        throw ModelStoreError.versionNotFound(name, version: version, ready: ready.map(\.version))
      }
      return found
    }
    guard let latest = ready.last else { throw ModelStoreError.notTrained(name) }
    return latest
  }

  public func modelFolds(versionID: Int64) throws -> [ModelFoldRecord] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM model_folds WHERE version_id = ? ORDER BY fold", arguments: [versionID]).map { row in
        ModelFoldRecord(fold: row["fold"], blocks: row["blocks"], bestEpoch: row["best_epoch"], rows: row["rows"], model: row["model"])
      }
    }
  }

  /// Every stored epoch of a version: (fold, epoch, figures JSON), in order.
  public func trainingMetrics(versionID: Int64) throws -> [(fold: Int, epoch: Int, figures: String)] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT fold, epoch, figures FROM training_metrics WHERE version_id = ? ORDER BY fold, epoch", arguments: [versionID])
        .map { ($0["fold"], $0["epoch"], $0["figures"]) }
    }
  }

  public func modelPredictions(versionID: Int64) throws -> [ModelPredictionSeries] {
    try read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM model_predictions WHERE version_id = ? ORDER BY symbol", arguments: [versionID]).map { row in
        let timestamps: Data = row["timestamps"]
        let values: Data = row["predictions"]
        return ModelPredictionSeries(
          symbol: row["symbol"], timestamps: timestamps.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) },
          predictions: values.withUnsafeBytes { Array($0.bindMemory(to: Double.self)) })
      }
    }
  }

  /// Deletes a model and all its versions.
  public func deleteModel(name: String) throws {
    let record = try model(named: name)
    try write { db in try db.execute(sql: "DELETE FROM models WHERE id = ?", arguments: [record.id]) }
  }

  public func modelNames() throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT name FROM models ORDER BY name") }
  }
}
