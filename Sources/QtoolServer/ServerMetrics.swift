import Foundation
import Prometheus
import QtoolStore
import Synchronization

/// The server's Prometheus metrics: requests by route and status, latencies by route, jobs by
/// status (read from the store at each scrape), stream subscribers and WebSocket connections.
/// Its own registry, so two servers in one process (tests) keep their counts apart.
final class ServerMetrics: Sendable {
  let registry = PrometheusCollectorRegistry()
  private let counters = Mutex<[String: Counter]>([:])
  private let histograms = Mutex<[String: DurationHistogram]>([:])
  private let jobGauges: [String: Gauge]
  let streamSubscribers: Gauge
  let webSocketConnections: Gauge
  let jobsStarted: Counter
  /// Live runners hosted by this server, signals seen committed (by any runner), and each
  /// running strategy's lag: how long ago its last processed bar's successor closed.
  let runnersHosted: Gauge
  let signalsEmitted: Counter
  private let lagGauges = Mutex<[String: Gauge]>([:])
  static let buckets: [Duration] = [
    .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
    .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
  ]

  init() {
    var gauges: [String: Gauge] = [:]
    for status in JobStatus.allCases {
      gauges[status.rawValue] = registry.makeGauge(
        name: "qtool_jobs", labels: [("status", status.rawValue)], help: "Jobs in the store by status")
    }
    jobGauges = gauges
    streamSubscribers = registry.makeGauge(name: "qtool_stream_subscribers", help: "Open Server-Sent Events streams and WebSocket subscriptions")
    webSocketConnections = registry.makeGauge(name: "qtool_websocket_connections", help: "Open WebSocket connections")
    jobsStarted = registry.makeCounter(name: "qtool_api_jobs_started_total", help: "Jobs started through the API")
    runnersHosted = registry.makeGauge(name: "qtool_runners_hosted", help: "Live runners running in this server's process")
    signalsEmitted = registry.makeCounter(
      name: "qtool_signals_emitted_total", help: "Signals committed to the store since the server started (by any runner)")
  }

  /// Counts one answered request of `route` (its pattern, not the path: ids stay out of labels).
  func record(route: String, method: String, status: Int, duration: Duration) {
    let key = "\(method) \(route) \(status)"
    let counter = counters.withLock { counters in
      if let existing = counters[key] { return existing }
      let made = registry.makeCounter(
        name: "qtool_http_requests_total", labels: [("method", method), ("route", route), ("status", String(status))],
        help: "HTTP requests answered, by route and status")
      counters[key] = made
      return made
    }
    counter.increment()
    let histogramKey = "\(method) \(route)"
    let histogram = histograms.withLock { histograms in
      if let existing = histograms[histogramKey] { return existing }
      let made = registry.makeDurationHistogram(
        name: "qtool_http_request_duration_seconds", labels: [("method", method), ("route", route)], buckets: Self.buckets,
        help: "Time to answer a request (for streams: to start answering)")
      histograms[histogramKey] = made
      return made
    }
    histogram.record(duration)
  }

  /// Sets each running strategy's lag; strategies no longer running read 0.
  func setRunnerLags(_ lags: [String: Double]) {
    lagGauges.withLock { gauges in
      for name in Set(gauges.keys).union(lags.keys) {
        let gauge =
          gauges[name]
          ?? registry.makeGauge(
            name: "qtool_runner_lag_seconds", labels: [("strategy", name)],
            help: "Seconds since the bar after a running strategy's last processed bar closed")
        gauges[name] = gauge
        gauge.set(max(0, lags[name] ?? 0))
      }
    }
  }

  /// The text exposition, with the job gauges read now.
  func exposition(database: QtoolDatabase) -> String {
    if let counts = try? database.jobCounts() {
      for (status, gauge) in jobGauges { gauge.set(Double(counts[status] ?? 0)) }
    }
    return registry.emitToString()
  }
}
