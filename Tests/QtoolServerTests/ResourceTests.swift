import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore
import Testing

@testable import QtoolServer

/// Every resource through its routes: what the engine returns, in the envelope.
@Suite(.timeLimit(.minutes(3))) struct ResourceTests {
  @Test func dataCatalogInfoExportVerifyDelete() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let sources = try #require(try await client.get("/api/v1/data/sources", token: token).data as? [[String: Any]])
      #expect(sources.map { $0["name"] as? String }.contains("binance"))
      let symbols = try await client.get("/api/v1/data/sources/csv/symbols", token: token).dataObject
      #expect((symbols["items"] as? [[String: Any]])?.first?["symbol"] as? String == "GOOG")
      #expect(try await client.get("/api/v1/data/sources/nowhere/symbols", token: token).errorCode == "source_not_found")

      let list = try await client.get("/api/v1/data/datasets", token: token).dataObject
      #expect(list["total"] as? Int == 1)
      let info = try await client.get("/api/v1/data/datasets/GOOG-1d?sample_rows=2", token: token).dataObject
      #expect((info["dataset"] as? [String: Any])?["dataset"] as? String == "GOOG-1d")
      #expect((info["sample"] as? [Any])?.count == 4)
      let sample = try #require(try await client.get("/api/v1/data/datasets/GOOG-1d/sample?rows=3", token: token).data as? [[String: Any]])
      #expect(sample.count == 6)

      let csv = try await client.get("/api/v1/data/datasets/GOOG-1d/export?from=2010-01-01&to=2010-02-01", token: token)
      #expect(csv.status == 200)
      #expect(csv.header("Content-Type")?.hasPrefix("text/csv") == true)
      let lines = csv.text.split(separator: "\n")
      #expect(lines.first == "timestamp,open,high,low,close,volume")
      #expect(lines.count == 20)  // 19 trading days in January 2010
      #expect(try await client.get("/api/v1/data/datasets/GOOG-1d/export?format=xml", token: token).status == 400)

      let verify = try #require(try await client.get("/api/v1/data/datasets/GOOG-1d/verify", token: token).data as? [[String: Any]])
      #expect(verify.first?["dataset"] as? String == "GOOG-1d")
      #expect(try await client.get("/api/v1/data/verify", token: token).status == 200)

      let deleted = try await client.request(.delete, "/api/v1/data/datasets/GOOG-1d", token: token)
      #expect(deleted.status == 200)
      #expect(try await client.get("/api/v1/data/datasets/GOOG-1d", token: token).status == 404)
    }
  }

  @Test func uploadImportsAsAJobAndPreprocessKeepsLineage() async throws {
    let fixture = try await ServerFixture.make(data: false)
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    let file = try Data(contentsOf: packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv"))
    try await fixture.withRouter { client in
      let started = try await client.request(
        .post, "/api/v1/data/import?symbol=GOOG&timeframe=1d&filename=../../goog.csv", token: token, body: file)
      #expect(started.status == 202)
      #expect(started.dataObject["kind"] as? String == "import")
      let id = try #require(started.dataObject["id"] as? String)
      #expect(started.header("Location") == "/api/v1/jobs/\(id)")
      let job = try await client.waitForJob(id, token: token)
      #expect(job["status"] as? String == "completed")
      #expect((job["result"] as? [String: Any])?["dataset"] as? String == "GOOG-1d")
      // The upload is gone once imported.
      let uploads = (try? FileManager.default.subpathsOfDirectory(atPath: fixture.service.uploadDirectory)) ?? []
      #expect(!uploads.contains { $0.hasSuffix(".csv") })

      let waited = try await client.request(.post, "/api/v1/data/import?symbol=GOOG&timeframe=1d&name=GOOG-copy&wait=true", token: token, body: file)
      #expect(waited.status == 200)
      #expect(waited.dataObject["dataset"] as? String == "GOOG-copy")
      #expect((waited.dataObject["files"] as? [[String: Any]])?.first?["path"] as? String == "upload.csv")
      #expect(try await client.request(.post, "/api/v1/data/import?symbol=GOOG", token: token, body: file).status == 400)
      let bad = try await client.request(.post, "/api/v1/data/import?symbol=GOOG&timeframe=1d&name=BAD&wait=true", token: token, body: Data("a,b\n1,2\n".utf8))
      #expect(bad.status == 422 || bad.status == 400)

      let preprocess = try await client.post(
        "/api/v1/data/preprocess?wait=true", token: token,
        json: #"{"dataset": "GOOG-1d", "operations": [{"type": "resample", "timeframe": "1w"}], "out": "GOOG-1w"}"#)
      #expect(preprocess.status == 200, "\(preprocess.text)")
      #expect(preprocess.dataObject["parent"] as? String == "GOOG-1d")
      let derived = try await client.get("/api/v1/data/datasets/GOOG-1w", token: token).dataObject
      #expect((derived["dataset"] as? [String: Any])?["parent"] as? String == "GOOG-1d")
    }
  }

  @Test func strategiesCRUDVersionsValidateClone() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    let spec = smaSpecText.replacingOccurrences(of: "goog-sma", with: "crud")
    @Sendable func body(_ text: String) -> String { String(decoding: try! JSONEncoder().encode(["spec": text]), as: UTF8.self) }
    try await fixture.withRouter { client in
      let created = try await client.post("/api/v1/strategies", token: token, json: body(spec))
      #expect(created.status == 201)
      #expect(created.dataObject["version"] as? Int == 1)
      #expect(try await client.post("/api/v1/strategies", token: token, json: body(spec)).errorCode == "strategy_exists")
      let updated = try await client.request(.put, "/api/v1/strategies/crud", token: token, json: body(spec.replacingOccurrences(of: "fast: 10", with: "fast: 12")))
      #expect(updated.dataObject["version"] as? Int == 2)
      let versions = try #require(try await client.get("/api/v1/strategies/crud/versions", token: token).data as? [[String: Any]])
      #expect(versions.count == 2)
      let one = try await client.get("/api/v1/strategies/crud/versions/1", token: token).dataObject
      #expect((one["spec"] as? [String: Any]).flatMap { $0["params"] as? [String: Any] }?["fast"] as? Int == 10)
      #expect(try await client.get("/api/v1/strategies/crud?version=2", token: token).dataObject["version"] as? Int == 2)
      #expect(try await client.get("/api/v1/strategies/crud/versions/9", token: token).status == 404)
      // A spec object is accepted too.
      let object = #"{"name": "as-object", "spec": {"name": "as-object", "universe": {"symbols": ["GOOG"], "timeframe": "1d"}, "rules": {"entry": "close > 1", "exit": "close < 1"}}}"#
      #expect(try await client.post("/api/v1/strategies", token: token, json: object).status == 201)
      let valid = try await client.post("/api/v1/strategies/validate", token: token, json: #"{"name": "crud"}"#)
      #expect(valid.dataObject["valid"] as? Bool == true)
      #expect(try await client.post("/api/v1/strategies/crud:clone", token: token, json: #"{"name": "crud"}"#).status == 409)
      #expect(try await client.request(.delete, "/api/v1/strategies/crud", token: token).status == 200)
      #expect(try await client.get("/api/v1/strategies/crud", token: token).errorCode == "strategy_not_found")
    }
  }

  @Test func backtestsAsJobsResultsCompareAndMore() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      let started = try await client.post("/api/v1/backtests", token: token, json: #"{"strategy": "goog-sma"}"#)
      #expect(started.status == 202)
      let job = try await client.waitForJob(try #require(started.dataObject["id"] as? String), token: token)
      let first = try #require((job["result"] as? [String: Any])?["run_id"] as? String)
      let second = try await client.post(
        "/api/v1/backtests?wait=true", token: token, json: #"{"strategy": "goog-sma", "params": {"fast": 20, "slow": 50}}"#)
      #expect(second.status == 200)
      let secondID = try #require(second.dataObject["id"] as? String)
      #expect((second.dataObject["metrics"] as? [String: Any])?["trades"] != nil)

      let list = try await client.get("/api/v1/backtests?strategy=goog-sma", token: token).dataObject
      #expect(list["total"] as? Int == 2)
      let show = try await client.get("/api/v1/backtests/\(first)", token: token).dataObject
      #expect((show["run"] as? [String: Any])?["id"] as? String == first)
      let results = try await client.get("/api/v1/backtests/\(first)/results", token: token).dataObject
      #expect((results["equity"] as? [[String: Any]])?.count == 2148)
      #expect((results["equity"] as? [[String: Any]])?.first?["benchmark"] != nil)
      #expect(!((results["monthly_returns"] as? [Any]) ?? []).isEmpty)
      #expect(results["drawdown_periods"] != nil)
      let trades = try await client.get("/api/v1/backtests/\(first)/results?format=csv&part=trades", token: token)
      #expect(trades.text.hasPrefix("symbol,side,size,entry_time"))
      #expect(try await client.get("/api/v1/backtests/\(first)/results?format=csv&part=nope", token: token).status == 400)
      let chart = try await client.get("/api/v1/backtests/\(first)/chart", token: token)
      #expect(chart.header("Content-Type") == "image/svg+xml")
      #expect(chart.text.hasPrefix("<svg"))

      let compare = try await client.get("/api/v1/backtests/compare?ids=\(first),\(secondID)", token: token).dataObject
      #expect(((compare["correlation"] as? [String: Any])?["matrix"] as? [[Any]])?.count == 2)
      #expect(try await client.get("/api/v1/backtests/compare?ids=\(first)", token: token).status == 400)
      // Sorted as `backtest compare --sort` sorts: both orders of the ids give the same order.
      for ids in ["\(first),\(secondID)", "\(secondID),\(first)"] {
        let sorted = try await client.get("/api/v1/backtests/compare?ids=\(ids)&sort=total_return", token: token).dataObject
        let order = (sorted["runs"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
        let returns = (sorted["runs"] as? [[String: Any]])?.compactMap { ($0["metrics"] as? [String: Any])?["total_return"] as? Double }
        #expect(order?.count == 2 && returns?.count == 2 && returns![0] >= returns![1], "\(sorted)")
      }
      #expect(try await client.get("/api/v1/backtests/compare?ids=\(first),\(secondID)&sort=nope", token: token).status == 400, "an unknown metric is refused as the CLI refuses it")
      let replay = try await client.post("/api/v1/backtests/\(first):replay", token: token)
      #expect(replay.dataObject["identical"] as? Bool == true)
      let bundle = try await client.get("/api/v1/backtests/\(first)/export", token: token)
      #expect(bundle.header("Content-Type") == "application/gzip", "\(bundle.text)")
      #expect(bundle.body.prefix(2) == Data([0x1f, 0x8b]))
      let check = try await client.post("/api/v1/backtests/check", token: token, json: #"{"strategy": "goog-sma"}"#)
      #expect(check.status == 200)
      #expect(check.dataObject["changes"] != nil)

      let grid = try await client.post(
        "/api/v1/backtests/grid?wait=true", token: token,
        json: #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [5, 10]}, {"name": "slow", "values": [30, 50]}], "top": 3}"#)
      #expect(grid.status == 200, "\(grid.text)")
      #expect(grid.dataObject["combinations"] as? Int == 4)
      #expect((grid.dataObject["results"] as? [Any])?.count == 3)
      let walk = try await client.post(
        "/api/v1/backtests/walk-forward?wait=true", token: token,
        json: #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [5, 10]}], "train": "2y", "test": "1y"}"#)
      #expect(walk.status == 200, "\(walk.text)")
      #expect(!((walk.dataObject["windows"] as? [Any]) ?? []).isEmpty)
      #expect(try await client.post("/api/v1/backtests/walk-forward", token: token, json: #"{"strategy": "goog-sma", "axes": [], "train": "x", "test": "1y"}"#).status == 400)

      #expect(try await client.request(.delete, "/api/v1/backtests/\(first)", token: token).dataObject["deleted"] as? String == first)
      #expect(try await client.get("/api/v1/backtests/\(first)", token: token).status == 404)
    }
  }

  @Test func jobsListShowCancel() async throws {
    let fixture = try await ServerFixture.make()
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    // A grid big enough to be running when it is cancelled.
    let values = (2...240).map(String.init).joined(separator: ",")
    let body = #"{"strategy": "goog-sma", "axes": [{"name": "fast", "values": [\#(values)]}, {"name": "slow", "values": [\#(values)]}], "jobs": 1}"#
    try await fixture.withRouter { client in
      let started = try await client.post("/api/v1/backtests/grid", token: token, json: body)
      #expect(started.status == 202)
      let id = try #require(started.dataObject["id"] as? String)
      let cancel = try await client.post("/api/v1/jobs/\(id):cancel", token: token)
      #expect(cancel.status == 200)
      #expect(cancel.dataObject["cancel_requested"] as? Bool == true || cancel.dataObject["status"] as? String == "cancelled", "\(cancel.text)")
      let job = try await client.waitForJob(id, token: token)
      #expect(job["status"] as? String == "cancelled")
      #expect((job["error"] as? [String: Any])?["code"] as? String == "cancelled")
      let list = try await client.get("/api/v1/jobs?kind=grid&status=cancelled", token: token).dataObject
      #expect((list["items"] as? [[String: Any]])?.first?["id"] as? String == id)
      #expect(try await client.get("/api/v1/jobs?status=sleeping", token: token).status == 400)
      #expect(try await client.get("/api/v1/jobs/\(id)", token: token).dataObject["kind"] as? String == "grid")
    }
  }

  @Test func downloadsAreTasksPerSymbol() async throws {
    let fixture = try await ServerFixture.make(data: false)
    defer { fixture.cleanUp() }
    let token = try fixture.token()
    try await fixture.withRouter { client in
      // Nothing listens on this port: each symbol's task fails on its own, and can be retried.
      let started = try await client.post(
        "/api/v1/data/downloads", token: token,
        json: #"{"source": "csv", "symbols": ["AAA", "BBB"], "timeframe": "1d", "from": "2024-01-01", "url": "http://127.0.0.1:9/{symbol}.csv", "retries": 1}"#)
      #expect(started.status == 202, "\(started.text)")
      let tasks = try #require(started.dataObject["tasks"] as? [[String: Any]])
      #expect(tasks.count == 2)
      let ids = tasks.compactMap { $0["id"] as? String }
      for id in ids { _ = try await client.waitForJob(id, token: token) }
      let list = try await client.get("/api/v1/data/downloads/tasks", token: token).dataObject
      #expect(list["total"] as? Int == 2)
      let one = try await client.get("/api/v1/data/downloads/tasks/\(ids[0])", token: token).dataObject
      #expect((one["job"] as? [String: Any])?["status"] as? String == "failed")
      let retried = try await client.post("/api/v1/data/downloads/tasks/\(ids[0]):retry", token: token)
      #expect(retried.status == 202)
      #expect((retried.dataObject["tasks"] as? [Any])?.count == 1)
      let cancelled = try await client.post("/api/v1/data/downloads/bulk:cancel", token: token, json: #"{"ids": ["\#(ids[1])"]}"#)
      #expect(cancelled.status == 200)
      #expect(try await client.get("/api/v1/data/downloads/tasks/jnothing", token: token).status == 404)
      // An unknown source or an option it does not take: refused before any task exists.
      let unknown = try await client.post(
        "/api/v1/data/downloads", token: token, json: #"{"source": "../../etc", "symbols": ["CCC"], "timeframe": "1d", "from": "2024-01-01"}"#)
      #expect(unknown.status == 400)
      #expect(unknown.errorCode == "unknown_source")
      let total = try await client.get("/api/v1/data/downloads/tasks", token: token).dataObject["total"] as? Int
      #expect(total == 3, "no task for the refused request")
    }
  }
}
