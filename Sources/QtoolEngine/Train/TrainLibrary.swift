import Foundation
import QtoolCore
import QtoolData
import QtoolModels
import QtoolStore

/// A model as `train list` shows it.
public struct ModelSummary: Codable, Sendable, Equatable {
  public var name: String
  public var path: String?
  public var versions: Int
  /// The latest ready version, its family, best epoch and figures.
  public var latest: Int?
  public var family: String?
  public var labelKind: String?
  public var bestEpoch: Int?
  public var best: [String: Double]?
  public var test: [String: Double]?
  /// A version being trained now (its job), if any.
  public var training: String?
  public var updated: String

  enum CodingKeys: String, CodingKey {
    case name, path, versions, latest, family, labelKind = "label_kind", bestEpoch = "best_epoch", best, test, training, updated
  }
}

/// A version as `train show` shows it.
public struct ModelVersionDetail: Codable, Sendable, Equatable {
  public var model: String
  public var version: Int
  public var status: String
  public var jobID: String?
  public var created: String
  public var finished: String?
  public var specHash: String
  public var spec: String
  public var report: TrainReport?

  enum CodingKeys: String, CodingKey { case model, version, status, jobID = "job_id", created, finished, specHash = "spec_hash", spec, report }
}

/// `train show`: a version in detail, and the list of versions.
public struct ModelDetail: Codable, Sendable, Equatable {
  public var name: String
  public var path: String?
  public var version: ModelVersionDetail
  public var versions: [Int]
}

/// One stored epoch.
public struct EpochRecord: Codable, Sendable, Equatable {
  public var fold: Int
  public var epoch: Int
  public var figures: EpochFigures
}

/// `train metrics`: every epoch of a version, with its best per fold.
public struct ModelMetrics: Codable, Sendable, Equatable {
  public var model: String
  public var version: Int
  public var status: String
  public var bestEpochs: [Int]
  public var epochs: [EpochRecord]
  enum CodingKeys: String, CodingKey { case model, version, status, bestEpochs = "best_epochs", epochs }
}

/// `train predict`: what a model predicts on a dataset's bars.
public struct PredictRequest: Codable, Sendable, Equatable {
  public var model: String
  public var version: Int?
  public var dataset: String
  @ISOTimestamp public var from: Int64?
  @ISOTimestamp public var to: Int64?
  public init(model: String, version: Int? = nil, dataset: String, from: Int64? = nil, to: Int64? = nil) {
    self.model = model
    self.version = version
    self.dataset = dataset
    self.from = from
    self.to = to
  }
}

public struct PredictionReport: Encodable, Sendable {
  public struct Row: Encodable, Sendable {
    public var timestamp: Int64
    public var prediction: Double
    /// Training saw this bar (its train or valid block): the prediction is in sample.
    public var inSample: Bool
    enum CodingKeys: String, CodingKey { case timestamp, prediction, inSample = "in_sample" }
    public func encode(to encoder: any Encoder) throws {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(UTCCalendar.format(timestamp, alwaysTime: true), forKey: .timestamp)
      try container.encode(prediction.isFinite ? prediction : nil, forKey: .prediction)
      try container.encode(inSample, forKey: .inSample)
    }
  }
  public var model: String
  public var version: Int
  public var dataset: String
  public var labelKind: String
  public var rows: [Row]
  enum CodingKeys: String, CodingKey { case model, version, dataset, labelKind = "label_kind", rows }
}

/// The library's own export format: one JSON document with a version's spec, folds (models as
/// base64), metrics and predictions. `train import` reads it back as a new version.
public struct ModelExport: Codable, Sendable, Equatable {
  public struct Fold: Codable, Sendable, Equatable {
    public var fold: Int
    public var blocks: FoldBlocks
    public var bestEpoch: Int
    public var rows: BlockRows
    /// XGBoost's UBJSON buffer, or the linear model's JSON, base64.
    public var model: String
    enum CodingKeys: String, CodingKey { case fold, blocks, bestEpoch = "best_epoch", rows, model }
  }
  public struct Predictions: Codable, Sendable, Equatable {
    public var symbol: String
    public var timestamps: [Int64]
    public var predictions: [Double?]
  }
  public static let currentFormat = "qtool-model/1"
  public var format: String
  public var name: String
  public var version: Int
  public var spec: String
  public var params: String
  public var family: String
  public var labelKind: String
  public var features: [String]
  public var plan: String
  public var datasets: String
  public var dataHash: String?
  public var libraryVersion: String?
  public var bestEpoch: Int?
  public var epochs: Int?
  public var summary: String?
  public var folds: [Fold]
  public var metrics: [EpochRecord]
  public var predictions: [Predictions]

  enum CodingKeys: String, CodingKey {
    case format, name, version, spec, params, family, labelKind = "label_kind", features, plan, datasets, dataHash = "data_hash"
    case libraryVersion = "library_version", bestEpoch = "best_epoch", epochs, summary, folds, metrics, predictions
  }
}

public struct ModelCreated: Codable, Sendable, Equatable {
  public var name: String
  public var path: String
  public var dataset: String
  /// The spec as written (for a caller that prints it instead of writing a file).
  public var text: String = ""
  enum CodingKeys: String, CodingKey { case name, path, dataset }
}

extension TrainOperations {
  /// Writes a spec from `template` for `dataset` to `path` (refusing to overwrite; nil: to no
  /// file, the caller prints `text`) and registers it.
  public func create(name: String, template: String, dataset: String, path: String?, overwrite: Bool) throws -> ModelCreated {
    try Identifier.check(name, as: .model)
    let summary = try database.dataset(named: dataset)
    guard let first = summary.firstTs, let last = summary.lastTs, last > first else {
      throw OperationError.invalidInput("\(dataset) has no bars to split", code: "dataset_empty", details: ["dataset": .string(dataset)])
    }
    guard let text = ModelTemplates.render(template, name: name, dataset: dataset, first: first, last: last) else {
      throw OperationError.invalidArgument(
        "unknown template '\(template)'", field: "template", hint: ErrorHint("templates: \(ModelTemplates.names.joined(separator: ", "))"))
    }
    _ = try ModelLoader.parse(text, origin: path ?? name)
    var absolute: String?
    if let path {
      try AtomicFile.write(Data(text.utf8), to: path, overwrite: overwrite)
      absolute = URL(fileURLWithPath: path).standardizedFileURL.path
    }
    try database.registerModel(name: name, path: absolute, specText: text, at: context.clock.now())
    return ModelCreated(name: name, path: absolute ?? "", dataset: dataset, text: text)
  }

  /// Registers `text` as the spec of its model (the CLI does so when a registered file changed).
  public func register(text: String, path: String?) throws -> LoadedModelSpec {
    let loaded = try ModelLoader.parse(text, origin: path ?? "the inline spec")
    try database.registerModel(name: loaded.spec.name, path: path, specText: text, at: context.clock.now())
    return loaded
  }

  public func list() throws -> [ModelSummary] {
    JobOperations(context).reconcileQuietly()
    return try database.models().map { record in
      let versions = try database.modelVersions(name: record.name)
      let ready = versions.last { $0.status == "ready" }
      let report = ready?.summary.flatMap { try? JSONDecoder().decode(TrainReport.self, from: Data($0.utf8)) }
      return ModelSummary(
        name: record.name, path: record.path, versions: versions.filter { $0.status == "ready" }.count, latest: ready?.version, family: ready?.family,
        labelKind: ready?.labelKind, bestEpoch: ready?.bestEpoch, best: report?.best, test: report?.test,
        training: versions.last { $0.status == "training" }?.jobID, updated: UTCCalendar.format(record.updatedAt, alwaysTime: true))
    }
  }

  func version(_ name: String, _ version: Int?) throws -> ModelVersionRecord {
    if let version {
      guard let found = try database.modelVersions(name: name).first(where: { $0.version == version }) else {
        throw ModelStoreError.versionNotFound(name, version: version, ready: try database.modelVersions(name: name).map(\.version))
      }
      return found
    }
    return try database.readyModelVersion(name: name)
  }

  public func show(name: String, version: Int? = nil) throws -> ModelDetail {
    let record = try database.model(named: name)
    let chosen = try self.version(name, version)
    return ModelDetail(
      name: record.name, path: record.path,
      version: ModelVersionDetail(
        model: name, version: chosen.version, status: chosen.status, jobID: chosen.jobID,
        created: UTCCalendar.format(chosen.createdAt, alwaysTime: true),
        finished: chosen.finishedAt.map { UTCCalendar.format($0, alwaysTime: true) }, specHash: chosen.specHash, spec: chosen.specText,
        report: chosen.summary.flatMap { try? JSONDecoder().decode(TrainReport.self, from: Data($0.utf8)) }),
      versions: try database.modelVersions(name: name).filter { $0.status == "ready" }.map(\.version))
  }

  /// Every stored epoch of a version (the latest ready one unless `version`; a version still
  /// training shows the epochs so far).
  public func metrics(name: String, version: Int? = nil) throws -> ModelMetrics {
    let chosen: ModelVersionRecord
    if version == nil, let training = try database.modelVersions(name: name).last, training.status == "training",
      (try? database.readyModelVersion(name: name)) == nil
    {
      chosen = training
    } else {
      chosen = try self.version(name, version)
    }
    let epochs = try database.trainingMetrics(versionID: chosen.id).map { row in
      EpochRecord(fold: row.fold, epoch: row.epoch, figures: try JSONDecoder().decode(EpochFigures.self, from: Data(row.figures.utf8)))
    }
    let best = try database.modelFolds(versionID: chosen.id).map(\.bestEpoch)
    return ModelMetrics(model: name, version: chosen.version, status: chosen.status, bestEpochs: best, epochs: epochs)
  }

  /// The model's predictions on `dataset`'s bars in `[from, to)`, the features warmed up on the
  /// stored bars before `from`.
  public func predict(_ request: PredictRequest) throws -> PredictionReport {
    let predictor = try ModelPredictor.load(name: request.model, version: request.version, database: database, allowInSample: true)
    let dataset = try database.dataset(named: request.dataset)
    let warmup = predictor.compiled.featureLookback + 1
    let (bars, before): (BarSeries, Int) =
      if let from = request.from {
        try database.bars(datasetID: dataset.id, from: from, to: request.to ?? .max, withBarsBefore: warmup)
      } else {
        (try database.bars(datasetID: dataset.id, to: request.to ?? .max), 0)
      }
    let (values, inSample) = try predictor.predict(bars, symbol: dataset.symbol, includeInSample: true)
    let rows = (before..<bars.count).map { PredictionReport.Row(timestamp: bars.timestamps[$0], prediction: values[$0], inSample: inSample[$0]) }
    return PredictionReport(
      model: request.model, version: predictor.version, dataset: dataset.name, labelKind: predictor.compiled.kind.rawValue, rows: rows)
  }

  /// Deletes a model with all its versions, or one version.
  public func delete(name: String, version: Int? = nil) throws -> [Int] {
    let versions = try database.modelVersions(name: name)
    if let active = versions.first(where: { $0.status == "training" }), let job = active.jobID,
      (try? database.job(id: job).status) == "running"
    {
      throw OperationError(
        .conflict, code: "model_training", "model \(name) is being trained by job \(job)", details: ["job": .string(job)],
        hint: "cancel it with `qtool jobs cancel \(job)`, or wait for it")
    }
    if let version {
      guard let found = versions.first(where: { $0.version == version }) else {
        throw ModelStoreError.versionNotFound(name, version: version, ready: versions.map(\.version))
      }
      try database.deleteModelVersion(id: found.id)
      return [version]
    }
    try database.deleteModel(name: name)
    return versions.map(\.version)
  }

  public func export(name: String, version: Int? = nil) throws -> ModelExport {
    let chosen = try self.version(name, version)
    guard chosen.status == "ready" else { throw ModelStoreError.notTrained(name) }
    let folds = try database.modelFolds(versionID: chosen.id).map { fold in
      ModelExport.Fold(
        fold: fold.fold, blocks: try JSONDecoder().decode(FoldBlocks.self, from: Data(fold.blocks.utf8)), bestEpoch: fold.bestEpoch,
        rows: try JSONDecoder().decode(BlockRows.self, from: Data(fold.rows.utf8)), model: fold.model.base64EncodedString())
    }
    let metrics = try self.metrics(name: name, version: chosen.version).epochs
    let predictions = try database.modelPredictions(versionID: chosen.id).map {
      ModelExport.Predictions(symbol: $0.symbol, timestamps: $0.timestamps, predictions: $0.predictions.map { $0.isFinite ? $0 : nil })
    }
    return ModelExport(
      format: ModelExport.currentFormat, name: name, version: chosen.version, spec: chosen.specText, params: chosen.params, family: chosen.family,
      labelKind: chosen.labelKind, features: try JSONDecoder().decode([String].self, from: Data(chosen.features.utf8)), plan: chosen.plan,
      datasets: chosen.datasets, dataHash: chosen.dataHash, libraryVersion: chosen.libraryVersion, bestEpoch: chosen.bestEpoch,
      epochs: chosen.epochs, summary: chosen.summary, folds: folds, metrics: metrics, predictions: predictions)
  }

  /// Imports an exported version as the next version of its model (or of `name`), after
  /// checking that its spec parses and every fold's model loads with the spec's features.
  public func importModel(_ text: String, name: String? = nil) throws -> ModelVersionRecord {
    func invalid(_ message: String) -> OperationError { .invalidInput(message, code: "invalid_model_export") }
    let document: ModelExport
    do {
      document = try JSONDecoder().decode(ModelExport.self, from: Data(text.utf8))
    } catch {
      throw invalid("not a qtool model export: \(error)")
    }
    guard document.format == ModelExport.currentFormat else {
      throw invalid("unknown format '\(document.format)'; this qtool reads \(ModelExport.currentFormat)")
    }
    var specText = document.spec
    var loaded = try ModelLoader.parse(specText, origin: "the imported spec")
    if let name, name != loaded.spec.name {
      try Identifier.check(name, as: .model)
      specText = specText.replacingOccurrences(of: "name: \(loaded.spec.name)", with: "name: \(name)")
      loaded = try ModelLoader.parse(specText, origin: "the imported spec")
      guard loaded.spec.name == name else { throw invalid("cannot rename the model: write name: \(loaded.spec.name) on one line of its spec") }
    }
    let stored = try JSONDecoder().decode(StoredTrainingParameters.self, from: Data(document.params.utf8))
    let compiled = try CompiledModel(loaded.spec, overrides: stored.overrides, walkForward: stored.walkForward, origin: loaded.origin)
    guard document.features == compiled.featureNames, document.family == compiled.family.rawValue, !document.folds.isEmpty else {
      throw invalid("the export's features, family or folds do not match its spec")
    }
    var folds: [ModelFoldRecord] = []
    for fold in document.folds {
      guard let data = Data(base64Encoded: fold.model) else { throw invalid("fold \(fold.fold): the model is not base64") }
      let model: FoldModel
      do {
        model = try FoldModel(family: compiled.family, data: data, bestEpoch: fold.bestEpoch)
      } catch {
        throw invalid("fold \(fold.fold): the model does not load: \(error)")
      }
      if case .gbt(let trees) = model, trees.featureCount != compiled.features.count {
        throw invalid("fold \(fold.fold): the model reads \(trees.featureCount) features, the spec has \(compiled.features.count)")
      }
      if case .linear(let linear) = model, linear.coefficients.count != compiled.features.count {
        throw invalid("fold \(fold.fold): the model has \(linear.coefficients.count) coefficients, the spec \(compiled.features.count) features")
      }
      folds.append(
        ModelFoldRecord(
          fold: fold.fold, blocks: String(decoding: try JSONCoding.encoder.encode(fold.blocks), as: UTF8.self), bestEpoch: fold.bestEpoch,
          rows: String(decoding: try JSONCoding.encoder.encode(fold.rows), as: UTF8.self), model: data))
    }
    let (id, version) = try database.startModelVersion(
      name: loaded.spec.name, path: nil, specText: specText, specHash: loaded.hash, family: document.family, labelKind: document.labelKind,
      features: String(decoding: try JSONCoding.encoder.encode(document.features), as: UTF8.self), params: document.params, plan: document.plan,
      jobID: nil, at: context.clock.now())
    do {
      for record in document.metrics {
        try database.recordEpoch(
          versionID: id, fold: record.fold, epoch: record.epoch,
          figures: String(decoding: try JSONCoding.encoder.encode(record.figures), as: UTF8.self))
      }
      var summary = document.summary
      if var report = summary.flatMap({ try? JSONDecoder().decode(TrainReport.self, from: Data($0.utf8)) }) {
        report.model = loaded.spec.name
        report.version = version
        report.jobID = nil
        summary = String(decoding: try JSONCoding.encoder.encode(report), as: UTF8.self)
      }
      try database.completeModelVersion(
        id: id, folds: folds,
        predictions: document.predictions.map {
          ModelPredictionSeries(symbol: $0.symbol, timestamps: $0.timestamps, predictions: $0.predictions.map { $0 ?? .nan })
        },
        completion: ModelCompletion(
          datasets: document.datasets, dataHash: document.dataHash ?? "", libraryVersion: document.libraryVersion ?? "",
          bestEpoch: document.bestEpoch ?? 0, epochs: document.epochs ?? 0, summary: summary ?? "{}"),
        at: context.clock.now())
    } catch {
      try? database.deleteModelVersion(id: id)
      throw error
    }
    return try database.readyModelVersion(name: loaded.spec.name, version: version)
  }
}

/// A training job as `GET /api/v1/training/jobs/{id}` shows it: the job, the model version it
/// trains (once known; none after a failed or cancelled training, which keeps no version) and
/// every epoch stored so far.
public struct TrainingJob: Codable, Sendable, Equatable {
  public var job: JobInfo
  public var model: String?
  public var version: Int?
  public var epochs: [EpochRecord]
  /// The best epoch of each fold (once trained).
  public var bestEpochs: [Int]

  enum CodingKeys: String, CodingKey { case job, model, version, epochs, bestEpochs = "best_epochs" }

  /// Every key always present (model and version null when there is none).
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(job, forKey: .job)
    try container.encode(model, forKey: .model)
    try container.encode(version, forKey: .version)
    try container.encode(epochs, forKey: .epochs)
    try container.encode(bestEpochs, forKey: .bestEpochs)
  }
}

extension TrainOperations {
  /// Training jobs, newest first, a page of them.
  public func jobs(statuses: [String] = [], page: Int, size: Int) throws -> (items: [JobInfo], total: Int) {
    try JobOperations(context).page(statuses: statuses, kinds: [JobKind.train.rawValue], page: page, size: size)
  }

  /// One training job with its version's per-epoch metrics (refused for a job of another kind).
  public func job(id: String) throws -> TrainingJob {
    let job = try JobOperations(context).show(id: id)
    guard job.kind == JobKind.train.rawValue else {
      throw OperationError.notFound(
        "job \(id) is a \(job.kind) job, not a training job", code: "not_a_training_job", details: ["job": .string(id), "kind": .string(job.kind)],
        hint: "see it with `qtool jobs show \(id)`")
    }
    var name: String?
    if let request = try? JSONDecoder().decode(TrainRequest.self, from: JSONCoding.encoder.encode(job.request)) {
      switch request.model {
      case .registered(let registered): name = registered
      case .inline(let text, let origin): name = try? ModelLoader.parse(text, origin: origin ?? "the inline spec").spec.name
      }
    }
    if case .string(let linked)? = job.result?["model"] { name = linked }
    guard let name, let record = try? database.modelVersions(name: name).first(where: { $0.jobID == job.id }) else {
      return TrainingJob(job: job, model: name, version: nil, epochs: [], bestEpochs: [])
    }
    let epochs = try database.trainingMetrics(versionID: record.id).map { row in
      EpochRecord(fold: row.fold, epoch: row.epoch, figures: try JSONDecoder().decode(EpochFigures.self, from: Data(row.figures.utf8)))
    }
    let best = try database.modelFolds(versionID: record.id).map(\.bestEpoch)
    return TrainingJob(job: job, model: name, version: record.version, epochs: epochs, bestEpochs: best)
  }
}
