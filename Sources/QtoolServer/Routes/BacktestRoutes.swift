import Foundation
import HTTPTypes
import NIOCore
import QtoolCore
import QtoolData
import QtoolEngine
import QtoolStore

/// `/api/v1/backtests/*`: runs as jobs, recorded runs and their results, compare, grids,
/// walk-forward, replay, the export bundle, the look-ahead check.
enum BacktestRoutes {
  struct Deleted: Codable, Sendable {
    var deleted: String
  }

  /// The walk-forward windows, beside the grid's fields.
  struct Windows: Codable, Sendable {
    var train: String
    var test: String
  }

  static func runID(_ request: APIRequest) throws -> String {
    let id = request.parameter("id")
    guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
      throw ServerError.badParameter("id", "not a run id: '\(String(id.prefix(80)))'")
    }
    return id
  }

  static var routes: [Route] {
    [
      Route("POST", "/api/v1/backtests", "startBacktest", scope: .backtestCreate) { service, request in
        let body = try request.decode(BacktestRequest.self)
        return try await service.startJob(request) { try BacktestOperations($0).run(body) }
      },
      Route("GET", "/api/v1/backtests", "listBacktests", scope: .backtestRead) { service, request in
        let (page, size) = try request.paging()
        var runs = try await service.run { try BacktestOperations($0).summaries() }
        if let strategy = request.string("strategy") { runs = runs.filter { $0.strategy == strategy } }
        return .ok(Page(runs, page: page, size: size))
      },
      Route("GET", "/api/v1/backtests/compare", "compareBacktests", scope: .backtestRead) { service, request in
        let ids = (request.string("ids") ?? "").split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        guard ids.count >= 2, ids.count <= 20 else { throw ServerError.badParameter("ids", "2 to 20 run ids, comma-separated") }
        let sort = request.string("sort")
        return .ok(try await service.run { try BacktestOperations($0).compare(ids: ids, sort: sort) })
      },
      Route("POST", "/api/v1/backtests/grid", "startGrid", scope: .backtestCreate) { service, request in
        var body = try request.decode(GridRequest.self)
        body.jobs = min(max(1, body.jobs), ComputePool.cores)
        let grid = body
        return try await service.startJob(request) { try BacktestOperations($0).grid(grid) }
      },
      Route("POST", "/api/v1/backtests/walk-forward", "startWalkForward", scope: .backtestCreate) { service, request in
        var body = try request.decode(GridRequest.self)
        body.jobs = min(max(1, body.jobs), ComputePool.cores)
        let windows = try request.decode(Windows.self)
        guard let train = PeriodLength(windows.train) else { throw ServerError.badParameter("train", "a period like 2y, 6m or 180d") }
        guard let test = PeriodLength(windows.test) else { throw ServerError.badParameter("test", "a period like 6m or 30d") }
        let grid = body
        return try await service.startJob(request) { try BacktestOperations($0).walkForward(grid, train: train, test: test) }
      },
      Route("POST", "/api/v1/backtests/check", "checkBacktest", scope: .backtestRead) { service, request in
        let body = try request.decode(BacktestRequest.self)
        return .ok(try await service.run { try BacktestOperations($0).check(body) })
      },
      Route("GET", "/api/v1/backtests/{id}", "getBacktest", scope: .backtestRead) { service, request in
        let id = try runID(request)
        return .ok(try await service.run { try BacktestOperations($0).show(id: id) })
      },
      Route("DELETE", "/api/v1/backtests/{id}", "deleteBacktest", scope: .backtestDelete) { service, request in
        let id = try runID(request)
        let run = try await service.run { try BacktestOperations($0).delete(id: id) }
        return .ok(Deleted(deleted: run.id), message: "deleted")
      },
      Route("GET", "/api/v1/backtests/{id}/results", "getBacktestResults", scope: .backtestRead) { service, request in
        let id = try runID(request)
        let results = try await service.run { try BacktestOperations($0).results(id: id) }
        switch request.string("format") ?? "json" {
        case "json": return .ok(results)
        case "csv": return try csv(results, part: request.string("part") ?? "equity", id: id)
        case let other: throw ServerError.badParameter("format", "json or csv, not '\(other)'")
        }
      },
      Route("GET", "/api/v1/backtests/{id}/chart", "getBacktestChart", scope: .backtestRead) { service, request in
        let id = try runID(request)
        return .text(try await service.run { try BacktestOperations($0).equityChart(id: id) }, contentType: "image/svg+xml")
      },
      Route("GET", "/api/v1/backtests/{id}/export", "exportBacktest", scope: .backtestRead) { service, request in
        let id = try runID(request)
        let directory = service.uploadDirectory
        let data = try await service.run { context -> Data in
          let (run, files) = try BacktestOperations(context).bundleFiles(id: id)
          try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
          let path = directory + "/bundle-" + AuthOperations.randomHex(12) + ".tar.gz"
          defer { try? FileManager.default.removeItem(atPath: path) }
          try ArchiveWriter.writeTarGz(files.map { ("\(run.id)/\($0.name)", $0.data) }, to: path)
          return try Data(contentsOf: URL(fileURLWithPath: path))
        }
        var headers = HTTPFields()
        headers[.contentDisposition] = "attachment; filename=\"\(id).tar.gz\""
        return .raw(status: 200, contentType: "application/gzip", body: ByteBuffer(data: data), headers: headers)
      },
      Route("POST", "/api/v1/backtests/{id}:replay", "replayBacktest", scope: .backtestRead) { service, request in
        let id = try runID(request)
        return .ok(try await service.run { try BacktestOperations($0).replay(id: id) })
      },
    ]
  }

  /// One part of a run's results as CSV: equity, trades, monthly or drawdowns.
  static func csv(_ results: RunResults, part: String, id: String) throws -> APIResult {
    func number(_ value: Double?) -> String { value.map { $0.isFinite ? "\($0)" : "" } ?? "" }
    var text: String
    switch part {
    case "equity":
      text = "time,equity,benchmark\n" + results.equity.map { "\($0.time),\(number($0.equity)),\(number($0.benchmark))\n" }.joined()
    case "trades":
      text = "symbol,side,size,entry_time,entry_price,exit_time,exit_price,pnl,return,commission,reason\n"
      for t in results.trades {
        text +=
          "\(t.symbol ?? ""),\(t.side),\(t.size),\(UTCCalendar.format(t.entryTime, alwaysTime: true)),\(t.entryPrice),\(UTCCalendar.format(t.exitTime, alwaysTime: true)),\(t.exitPrice),\(t.pnl),\(t.returnPct),\(t.commission),\(t.reason.rawValue)\n"
      }
    case "monthly":
      text = "month,return\n" + results.monthlyReturns.map { "\($0.month),\(number($0.value))\n" }.joined()
    case "drawdowns":
      text = "start,trough,end,depth,days\n" + results.drawdownPeriods.map { "\($0.start),\($0.trough),\($0.end ?? ""),\(number($0.depth)),\(number($0.days))\n" }.joined()
    default:
      throw ServerError.badParameter("part", "equity, trades, monthly or drawdowns, not '\(part)'")
    }
    var headers = HTTPFields()
    headers[.contentDisposition] = "attachment; filename=\"\(id)-\(part).csv\""
    return .raw(status: 200, contentType: "text/csv; charset=utf-8", body: ByteBuffer(string: text), headers: headers)
  }
}
