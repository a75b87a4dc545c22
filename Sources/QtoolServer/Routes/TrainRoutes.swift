import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

/// `/api/v1/training/jobs/*` and `/api/v1/models/*`: training as jobs (the request `train run`
/// makes), their per-epoch metrics, cancel; the model library, predictions, delete. Each handler
/// calls the one `TrainOperations` function the CLI's command calls.
enum TrainRoutes {
  /// `POST /api/v1/models/{name}:predict`: the bars to predict (`train predict`'s options).
  struct PredictBody: Codable, Sendable {
    var dataset: String
    var version: Int?
    @ISOTimestamp var from: Int64?
    @ISOTimestamp var to: Int64?
  }

  struct Deleted: Codable, Sendable {
    var model: String
    var deletedVersions: [Int]
    enum CodingKeys: String, CodingKey { case model, deletedVersions = "deleted_versions" }
  }

  static func modelName(_ request: APIRequest) throws -> String {
    let name = request.parameter("name")
    try Identifier.check(name, as: .model)
    return name
  }

  static func version(_ request: APIRequest) throws -> Int? {
    guard request.string("version") != nil else { return nil }
    return try request.int("version", default: 1, in: 1...1_000_000_000)
  }

  static func statuses(_ request: APIRequest) throws -> [String] {
    let statuses = request.string("status").map { $0.split(separator: ",").map(String.init) } ?? []
    for status in statuses where JobStatus(rawValue: status) == nil {
      throw ServerError.badParameter("status", "one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")), not '\(status)'")
    }
    return statuses
  }

  static var routes: [Route] {
    [
      Route("POST", "/api/v1/training/jobs", "startTraining", scope: .trainWrite) { service, request in
        let body = try request.decode(TrainRequest.self)
        return try await service.startJob(request) { try TrainOperations($0).run(body) }
      },
      Route("GET", "/api/v1/training/jobs", "listTrainingJobs", scope: .trainRead) { service, request in
        let (page, size) = try request.paging()
        let statuses = try statuses(request)
        let (items, total) = try await service.run { try TrainOperations($0).jobs(statuses: statuses, page: page, size: size) }
        return .ok(Page(items: items, total: total, page: page, size: size))
      },
      Route("GET", "/api/v1/training/jobs/{id}", "getTrainingJob", scope: .trainRead) { service, request in
        let id = try JobRoutes.jobID(request)
        return .ok(try await service.run { try TrainOperations($0).job(id: id) })
      },
      Route("POST", "/api/v1/training/jobs/{id}:cancel", "cancelTrainingJob", scope: .trainWrite) { service, request in
        let id = try JobRoutes.jobID(request)
        let job = try await service.run { try TrainOperations($0).job(id: id).job }
        service.jobs.cancel(id: job.id)
        let info = try await service.run { try JobOperations($0).cancel(id: job.id) }
        return .ok(info, message: info.status.isFinished ? "the job had finished already" : "cancel requested")
      },
      Route("GET", "/api/v1/models", "listModels", scope: .trainRead) { service, request in
        let (page, size) = try request.paging()
        return .ok(Page(try await service.run { try TrainOperations($0).list() }, page: page, size: size))
      },
      Route("GET", "/api/v1/models/{name}", "getModel", scope: .trainRead) { service, request in
        let name = try modelName(request)
        let version = try version(request)
        return .ok(try await service.run { try TrainOperations($0).show(name: name, version: version) })
      },
      Route("GET", "/api/v1/models/{name}/metrics", "getModelMetrics", scope: .trainRead) { service, request in
        let name = try modelName(request)
        let version = try version(request)
        return .ok(try await service.run { try TrainOperations($0).metrics(name: name, version: version) })
      },
      Route("POST", "/api/v1/models/{name}:predict", "predictModel", scope: .trainRead) { service, request in
        let name = try modelName(request)
        let body = try request.decode(PredictBody.self)
        let predict = PredictRequest(model: name, version: body.version, dataset: body.dataset, from: body.from, to: body.to)
        return .ok(try await service.run { try TrainOperations($0).predict(predict) })
      },
      Route("DELETE", "/api/v1/models/{name}", "deleteModel", scope: .trainWrite) { service, request in
        let name = try modelName(request)
        let version = try version(request)
        let deleted = try await service.run { try TrainOperations($0).delete(name: name, version: version) }
        return .ok(Deleted(model: name, deletedVersions: deleted), message: "deleted")
      },
    ]
  }
}
