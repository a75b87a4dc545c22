import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

/// The live half: runners (`strategy status|start|stop|pause|resume|runs|logs`, a strategy's
/// positions and equity), signals (`signals
/// list|stats`, one signal, the SSE stream) and notification channels (`signals notify …`).
/// Every handler calls the `LiveOperations` function the CLI command calls; runners started
/// here run in this process (`RunnerHost`) under the same lease as a CLI runner.
enum LiveRoutes {
  /// `POST /strategies/{name}:start`: `strategy start`'s options (all optional).
  struct StartBody: Codable, Sendable {
    var version: Int?
    var feed: LiveFeed?
    var from: String?
    var speed: ReplaySpeed?
    var settleMilliseconds: Int64?
    var retries: Int?
    var lateAfterBars: Int?
    var notifyLate: Bool?
    var newAccount: Bool?
    var capital: Double?
    var params: [String: Double]?

    enum CodingKeys: String, CodingKey {
      case version, feed, from, speed, settleMilliseconds = "settle_ms", retries, lateAfterBars = "late_after_bars", notifyLate = "notify_late"
      case newAccount = "new_account", capital, params
    }

    func request(strategy name: String) throws -> LiveRunRequest {
      if let version, version < 1 { throw OperationError.invalidArgument("a version is 1 or more", field: "version") }
      let start = try from.map { text -> Int64 in
        guard let time = TimestampParser.parse(text) else {
          throw OperationError.invalidArgument("'\(text)' is not a date or time (UTC) like 2024-01-31 or 2024-01-31T12:00:00Z", field: "from")
        }
        return time
      }
      // No log_path: the API never names files on the server.
      return LiveRunRequest(
        strategy: .registered(name: name, version: version), feed: feed ?? .download, from: start, speed: speed?.barsPerSecond,
        settleMilliseconds: settleMilliseconds ?? 5_000, retries: retries ?? 5, lateAfterBars: lateAfterBars ?? 1, notifyLate: notifyLate ?? false,
        newAccount: newAccount ?? false, capital: capital, params: params ?? [:])
    }
  }

  /// A replay's speed as `strategy start --speed` takes it: bars per second, or "max" (as
  /// fast as they evaluate, as when it is left out).
  struct ReplaySpeed: Codable, Sendable {
    var barsPerSecond: Double?
    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if let text = try? container.decode(String.self) {
        guard text == "max" else {
          throw DecodingError.dataCorruptedError(in: container, debugDescription: "a number of bars per second, or \"max\"")
        }
        barsPerSecond = nil
      } else {
        barsPerSecond = try container.decode(Double.self)
      }
    }
    func encode(to encoder: any Encoder) throws {
      var container = encoder.singleValueContainer()
      if let barsPerSecond { try container.encode(barsPerSecond) } else { try container.encode("max") }
    }
  }

  /// What a start answers: `strategy start --json`'s fields, the process being the server's.
  struct Started: Codable, Sendable {
    var runID: String
    var accountID: String
    var strategy: String
    var version: Int
    var continued: Bool
    /// The account is paused (a stop does not end a pause): no new entries or notifications until resumed.
    var paused: Bool
    var pid: Int32
    var hosted: Bool
    enum CodingKeys: String, CodingKey { case runID = "run_id", accountID = "account_id", strategy, version, continued, paused, pid, hosted }
  }

  struct StopBody: Codable, Sendable {
    var closePositions: Bool?
    var timeoutMilliseconds: Int64?
    enum CodingKeys: String, CodingKey { case closePositions = "close_positions", timeoutMilliseconds = "timeout_ms" }
  }

  /// A body that may be left out (or empty) for its defaults.
  static func optionalBody<T: Decodable>(_ request: APIRequest, _ type: T.Type, empty: T) throws -> T {
    guard let body = request.body, body.readableBytes > 0 else { return empty }
    return try request.decode(type)
  }

  static func signalID(_ request: APIRequest) throws -> String {
    let id = request.parameter("id")
    guard !id.isEmpty, id.count <= 128, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
      throw ServerError.badParameter("id", "not a signal id: '\(String(id.prefix(80)))'")
    }
    return id
  }

  static func channelName(_ request: APIRequest) throws -> String {
    let name = request.parameter("name")
    guard !name.isEmpty, name.count <= 64, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
      throw ServerError.badParameter("name", "not a channel name: '\(String(name.prefix(80)))'")
    }
    return name
  }

  /// The filters of `signals list|tail|stats` from the query: `strategy`, `symbol`, `type`,
  /// `level` (comma-separated), `min_strength`, `since` (an age like 24h, or a time), `until`.
  static func filter(_ request: APIRequest, allowSince: Bool = true, now: Int64 = 0) throws -> SignalFilter {
    func list(_ name: String) -> [String] {
      request.string(name).map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty } } ?? []
    }
    let types = list("type").map { $0.uppercased() }
    for type in types where !["BUY", "SELL", "HOLD"].contains(type) {
      throw ServerError.badParameter("type", "buy, sell or hold, not '\(type.lowercased())'")
    }
    let levels = list("level")
    for level in levels where !["strong", "medium", "weak", "none"].contains(level) {
      throw ServerError.badParameter("level", "strong, medium, weak or none, not '\(level)'")
    }
    var minimum: Double?
    if let text = request.string("min_strength") {
      guard let value = Double(text), (0...100).contains(value) else { throw ServerError.badParameter("min_strength", "0 to 100, not '\(text)'") }
      minimum = value
    }
    func time(_ name: String, ageAllowed: Bool) throws -> Int64? {
      guard let text = request.string(name) else { return nil }
      if ageAllowed, let seconds = ValueParsing.durationSeconds(text) { return now - Int64(seconds) * 1000 }
      guard let time = TimestampParser.parse(text) else {
        throw ServerError.badParameter(name, (ageAllowed ? "an age like 24h or 7d, or " : "") + "a time like 2024-01-31T12:00:00Z, not '\(text)'")
      }
      return time
    }
    var filter = SignalFilter(strategies: list("strategy"), symbols: list("symbol"), types: types, levels: levels, minStrength: minimum)
    if allowSince {
      filter.since = try time("since", ageAllowed: true)
      filter.until = try time("until", ageAllowed: false)
    }
    return filter
  }

  /// A channel added over the API may not run a program or read a file on the server: those
  /// are added with `qtool signals notify add` on the server's machine.
  static func checkRemote(_ channel: ChannelRequest) throws {
    if channel.kind == .command {
      throw OperationError.invalidInput(
        "command channels run a program on the server: add them with `qtool signals notify add` on its machine", code: "channel_not_allowed",
        details: ["field": "kind"])
    }
    let config = channel.config
    for (field, value) in [("url_file", config.urlFile), ("secret_file", config.secretFile), ("token_file", config.tokenFile)] where value != nil {
      throw OperationError.invalidInput(
        "the API never reads files named by a client: give the secret's environment variable ({\(field.replacingOccurrences(of: "_file", with: "_env"))}) instead",
        code: "channel_not_allowed", details: ["field": .string(field)])
    }
  }

  static var routes: [Route] {
    [
      // MARK: Runners
      Route("GET", "/api/v1/runners", "listRunners", scope: .strategiesRead) { service, request in
        let (page, size) = try request.paging()
        let settings = service.settings
        var statuses = try await service.run { try LiveOperations($0).status(settings: settings) }
        if let status = request.string("status") { statuses = statuses.filter { $0.status == status } }
        return .ok(Page(statuses, page: page, size: size))
      },
      Route("GET", "/api/v1/runners/{name}", "getRunner", scope: .strategiesRead) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let settings = service.settings
        return .ok(try await service.run { try LiveOperations($0).status(strategy: name, settings: settings)[0] })
      },
      Route("POST", "/api/v1/strategies/{name}:start", "startStrategy", scope: .strategiesExecute) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let body = try optionalBody(request, StartBody.self, empty: StartBody())
        let live = try body.request(strategy: name)
        let started = try await service.runners.start(live, name: name, settings: service.settings, context: service.operationContext())
        return .created(
          Started(
            runID: started.runID, accountID: started.accountID, strategy: started.strategy, version: started.version, continued: started.continued,
            paused: started.paused, pid: getpid(), hosted: true), location: "/api/v1/runners/\(started.strategy)", message: "started")
      },
      Route("POST", "/api/v1/strategies/{name}:stop", "stopStrategy", scope: .strategiesExecute) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let body = try optionalBody(request, StopBody.self, empty: StopBody())
        let timeout = body.timeoutMilliseconds ?? 30_000
        guard (0...600_000).contains(timeout) else { throw OperationError.invalidArgument("timeout_ms is 0 to 600000", field: "timeout_ms") }
        await service.runners.waitForStart(name)
        let report = try await service.run {
          try LiveOperations($0).stop(strategy: name, closePositions: body.closePositions ?? false, timeoutMilliseconds: timeout)
        }
        return .ok(report, message: report.was == "running" ? "stopped" : "not running")
      },
      Route("POST", "/api/v1/strategies/{name}:pause", "pauseStrategy", scope: .strategiesExecute) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let settings = service.settings
        return .ok(try await service.run { try LiveOperations($0).pause(strategy: name, settings: settings) }, message: "paused")
      },
      Route("POST", "/api/v1/strategies/{name}:resume", "resumeStrategy", scope: .strategiesExecute) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let settings = service.settings
        return .ok(try await service.run { try LiveOperations($0).resume(strategy: name, settings: settings) }, message: "resumed")
      },
      Route("GET", "/api/v1/strategies/{name}/runs", "listStrategyRuns", scope: .strategiesRead) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let (page, size) = try request.paging()
        return .ok(Page(try await service.run { try LiveOperations($0).runs(strategy: name) }, page: page, size: size))
      },
      Route("GET", "/api/v1/strategies/{name}/positions", "listStrategyPositions", scope: .strategiesRead) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let (page, size) = try request.paging()
        return .ok(Page(try await service.run { try LiveOperations($0).positions(strategy: name) }, page: page, size: size))
      },
      Route("GET", "/api/v1/strategies/{name}/equity", "listStrategyEquity", scope: .strategiesRead) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let (page, size) = try request.paging()
        let (points, total) = try await service.run { try LiveOperations($0).equity(strategy: name, offset: (page - 1) * size, limit: size) }
        return .ok(Page(items: points, total: total, page: page, size: size))
      },
      Route("GET", "/api/v1/strategies/{name}/logs", "getStrategyLogs", scope: .strategiesRead) { service, request in
        let name = try StrategyRoutes.strategyName(request)
        let lines = try request.int("lines", default: 100, in: 1...10_000)
        let settings = service.settings
        return .ok(try await service.run { try LiveOperations($0).log(strategy: name, lines: lines, settings: settings) })
      },

      // MARK: Signals
      Route("GET", "/api/v1/signals", "listSignals", scope: .signalsRead) { service, request in
        let (page, size) = try request.paging()
        let filter = try filter(request, now: service.clock.now())
        // A page stands until a signal is stored (signals are only ever added): the same query
        // is answered from the watcher's cache instead of reading and encoding 100 rows again.
        let key = "\(page) \(size) " + String(decoding: try APIJSON.encoder.encode(filter), as: UTF8.self)
        let data = try await service.run { context in
          try service.signals.page(key, newest: try LiveOperations(context).lastSignalSeq()) {
            try APIJSON.encoder.encode(try LiveOperations(context).signals(filter, page: page, size: size))
          }
        }
        return .encoded(status: 200, data: data, message: "ok")
      },
      Route("GET", "/api/v1/signals/stats", "signalStats", scope: .signalsRead) { service, request in
        let all = try request.bool("all")
        if all, request.query["since"] != nil { throw ServerError.badParameter("since", "give since or all, not both") }
        let now = service.clock.now()
        var window = try filter(request, now: now)
        if window.since == nil, !all { window.since = now - 86_400_000 }
        let counted = window
        return .ok(try await service.run { try LiveOperations($0).stats(counted) })
      },
      Route("GET", "/api/v1/signals/{id}", "getSignal", scope: .signalsRead) { service, request in
        let id = try signalID(request)
        return .ok(try await service.run { try LiveOperations($0).signal(id: id) })
      },
      Route("GET", "/api/v1/stream/signals", "streamSignals", scope: .signalsRead) { service, request in
        try await SignalStream.stream(service, request)
      },

      // MARK: Notification channels
      Route("GET", "/api/v1/signals/channels", "listChannels", scope: .signalsRead) { service, request in
        let (page, size) = try request.paging()
        return .ok(Page(try await service.run { try LiveOperations($0).channels() }, page: page, size: size))
      },
      Route("POST", "/api/v1/signals/channels", "addChannel", scope: .signalsWrite) { service, request in
        let channel = try request.decode(ChannelRequest.self)
        try checkRemote(channel)
        let added = try await service.run { try LiveOperations($0).addChannel(channel) }
        return .created(added, location: "/api/v1/signals/channels/\(added.name)")
      },
      Route("DELETE", "/api/v1/signals/channels/{name}", "removeChannel", scope: .signalsWrite) { service, request in
        let name = try channelName(request)
        return .ok(try await service.run { try LiveOperations($0).removeChannel(named: name) }, message: "removed")
      },
      Route("POST", "/api/v1/signals/channels/{name}:test", "testChannel", scope: .signalsWrite) { service, request in
        let name = try channelName(request)
        let settings = service.settings
        return .ok(try await service.run { try LiveOperations($0).testChannel(named: name, settings: settings) })
      },
      Route("GET", "/api/v1/signals/notifications", "listNotifications", scope: .signalsRead) { service, request in
        let (page, size) = try request.paging()
        let channel = request.string("channel")
        if let channel, channel.count > 64 || !channel.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
          throw ServerError.badParameter("channel", "not a channel name: '\(String(channel.prefix(80)))'")
        }
        let status = request.string("status")
        if let status, !["pending", "delivered", "dead"].contains(status) {
          throw ServerError.badParameter("status", "pending, delivered or dead, not '\(status)'")
        }
        let (items, total) = try await service.run {
          try LiveOperations($0).historyPage(channel: channel, status: status, offset: (page - 1) * size, limit: size)
        }
        return .ok(Page(items: items, total: total, page: page, size: size))
      },
    ]
  }
}
