import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QtoolCore
import QtoolEngine
import QtoolStore

/// `/healthz`, `/readyz`, `/info`, `/metrics` and the OpenAPI document.
enum SystemRoutes {
  struct Health: Codable, Sendable { var status: String }

  struct Info: Codable, Sendable {
    var name = "qtool"
    var version: String
    var engineVersion: String
    var apiVersion = "v1"
    var startedAt: String
    var uptimeSeconds: Double
    var jobsRunning: Int
    var streamSubscribers: Int
    enum CodingKeys: String, CodingKey {
      case name, version, engineVersion = "engine_version", apiVersion = "api_version", startedAt = "started_at"
      case uptimeSeconds = "uptime_seconds", jobsRunning = "jobs_running", streamSubscribers = "stream_subscribers"
    }
  }

  static let healthz: Handler = { _, _ in .ok(Health(status: "ok")) }

  /// Ready when the store answers a read.
  static let readyz: Handler = { service, _ in
    do {
      _ = try service.database.jobCounts()
      return .ok(Health(status: "ready"))
    } catch {
      throw ServerError(.temporary, code: "not_ready", "the store cannot be read: \(error)", retryAfter: 1)
    }
  }

  static let info: Handler = { service, _ in
    .ok(
      Info(
        version: VersionInfo.version, engineVersion: BacktestOperations.engineVersion, startedAt: APIJSON.timestamp(service.startedAt),
        uptimeSeconds: service.clock.seconds(since: service.startedAt), jobsRunning: service.jobs.activeCount,
        streamSubscribers: service.hub.subscriberCount))
  }

  static var routes: [Route] {
    [
      Route("GET", "/healthz", "healthz", scope: nil, rate: .unlimited, handler: healthz),
      Route("GET", "/readyz", "readyz", scope: nil, rate: .unlimited, handler: readyz),
      Route("GET", "/info", "info", scope: nil, rate: .unlimited, handler: info),
      Route("GET", "/api/v1/healthz", "apiHealthz", scope: nil, rate: .unlimited, handler: healthz),
      Route("GET", "/api/v1/readyz", "apiReadyz", scope: nil, rate: .unlimited, handler: readyz),
      Route("GET", "/api/v1/info", "apiInfo", scope: nil, rate: .unlimited, handler: info),
      Route("GET", "/metrics", "metrics", scope: nil, rate: .unlimited) { service, _ in
        service.metrics.runnersHosted.set(Double(service.runners.hosted.count))
        let settings = service.settings
        if let statuses = try? await service.run({ try LiveOperations($0).status(settings: settings) }) {
          var lags: [String: Double] = [:]
          for status in statuses where status.status == "running" || status.status == "paused" { lags[status.strategy] = status.lagSeconds ?? 0 }
          service.metrics.setRunnerLags(lags)
        }
        return .text(service.metrics.exposition(database: service.database), contentType: "text/plain; version=0.0.4; charset=utf-8")
      },
      Route("GET", "/api/v1/openapi.json", "openapi", scope: nil, rate: .unlimited) { _, _ in
        .text(OpenAPIDocument.json, contentType: "application/json; charset=utf-8")
      },
    ]
  }
}
