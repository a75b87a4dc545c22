import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QtoolCore
import QtoolData
import QtoolEngine
import QtoolStore

/// `/api/v1/data/*`: sources and symbols, the catalog, dataset info, sample, export, verify,
/// delete, upload → import, preprocess with lineage, and downloads as per-symbol tasks.
enum DataRoutes {
  struct Source: Codable, Sendable {
    var name: String
    var baseURL: String?
    enum CodingKeys: String, CodingKey { case name, baseURL = "base_url" }
  }

  struct SymbolEntry: Codable, Sendable {
    var symbol: String
    var datasets: [String]
  }

  /// A download task: one symbol's download job, with the requests it made.
  struct DownloadTask: Encodable, Sendable {
    var job: JobInfo
    var requests: [DownloadTaskRecord]
  }

  struct Tasks: Encodable, Sendable {
    var tasks: [JobInfo]
  }

  struct BulkRequest: Codable, Sendable {
    var ids: [String]
  }

  /// A name from a path or query: an identifier, never a file path.
  static func name(_ text: String, _ kind: Identifier.Kind) throws -> String {
    try Identifier.check(text, as: kind)
    return text
  }

  static var routes: [Route] {
    [
      Route("GET", "/api/v1/data/sources", "listSources", scope: .dataRead) { service, _ in
        .ok(SourceFactory.names.map { Source(name: $0, baseURL: $0 == "csv" ? nil : service.settings.baseURL(for: $0)) })
      },
      Route("GET", "/api/v1/data/sources/{source}/symbols", "listSourceSymbols", scope: .dataRead) { service, request in
        let source = request.parameter("source")
        let datasets = try await service.run { try DataOperations($0).list() }.filter { $0.source == source }
        guard SourceFactory.names.contains(source) || !datasets.isEmpty else {
          throw OperationError.notFound(
            "no source '\(source)'", code: "source_not_found", details: ["source": .string(source)],
            hint: ErrorHint("sources: \(SourceFactory.names.joined(separator: ", "))"))
        }
        let symbols = Dictionary(grouping: datasets, by: \.symbol).map { SymbolEntry(symbol: $0.key, datasets: $0.value.map(\.name).sorted()) }
        let (page, size) = try request.paging()
        return .ok(Page(symbols.sorted { $0.symbol < $1.symbol }, page: page, size: size))
      },
      Route("GET", "/api/v1/data/datasets", "listDatasets", scope: .dataRead) { service, request in
        let (page, size) = try request.paging()
        var datasets = try await service.run { try DataOperations($0).list() }
        if let source = request.string("source") { datasets = datasets.filter { $0.source == source } }
        if let symbol = request.string("symbol") { datasets = datasets.filter { $0.symbol == symbol } }
        return .ok(Page(datasets, page: page, size: size))
      },
      Route("GET", "/api/v1/data/datasets/{name}", "getDataset", scope: .dataRead) { service, request in
        let dataset = try name(request.parameter("name"), .dataset)
        let rows = try request.int("sample_rows", default: 5, in: 0...1000)
        return .ok(try await service.run { try DataOperations($0).info(name: dataset, sampleRows: rows) })
      },
      Route("GET", "/api/v1/data/datasets/{name}/sample", "sampleDataset", scope: .dataRead) { service, request in
        let dataset = try name(request.parameter("name"), .dataset)
        let rows = try request.int("rows", default: 5, in: 1...1000)
        return .ok(try await service.run { try DataOperations($0).info(name: dataset, sampleRows: rows).sample })
      },
      Route("GET", "/api/v1/data/datasets/{name}/export", "exportDataset", scope: .dataRead) { service, request in
        try export(service, request)
      },
      Route("GET", "/api/v1/data/datasets/{name}/verify", "verifyDataset", scope: .dataRead) { service, request in
        let dataset = try name(request.parameter("name"), .dataset)
        return .ok(try await service.run { try DataOperations($0).verify(name: dataset) })
      },
      Route("GET", "/api/v1/data/verify", "verifyAll", scope: .dataRead) { service, _ in
        .ok(try await service.run { try DataOperations($0).verify(name: nil) })
      },
      Route("DELETE", "/api/v1/data/datasets/{name}", "deleteDataset", scope: .dataWrite) { service, request in
        let dataset = try name(request.parameter("name"), .dataset)
        return .ok(try await service.run { try DataOperations($0).delete(name: dataset) }, message: "deleted")
      },
      Route("POST", "/api/v1/data/import", "importDataset", scope: .dataWrite) { service, request in
        try await upload(service, request)
      },
      Route("POST", "/api/v1/data/preprocess", "preprocessDataset", scope: .dataWrite) { service, request in
        var body = try request.decode(PreprocessRequest.self)
        body.wait = false  // a server never waits on a lease: 409 at once
        let preprocess = body
        return try await service.startJob(request) { try DataOperations($0).preprocess(preprocess) }
      },
      Route("POST", "/api/v1/data/downloads", "startDownload", scope: .dataWrite) { service, request in
        try await startDownloads(service, request, try checkedSource(try checked(try request.decode(DownloadRequest.self)), settings: service.settings))
      },
      Route("GET", "/api/v1/data/downloads/tasks", "listDownloadTasks", scope: .dataRead) { service, request in
        let (page, size) = try request.paging()
        let statuses = request.string("status").map { $0.split(separator: ",").map(String.init) } ?? []
        let (items, total) = try await service.run { try JobOperations($0).page(statuses: statuses, kinds: ["download"], page: page, size: size) }
        return .ok(Page(items: items, total: total, page: page, size: size))
      },
      Route("GET", "/api/v1/data/downloads/tasks/{id}", "getDownloadTask", scope: .dataRead) { service, request in
        let id = request.parameter("id")
        return .ok(
          try await service.run { context in
            let job = try JobOperations(context).show(id: id)
            guard job.kind == "download" else { throw JobError.notFound(id) }
            return DownloadTask(job: job, requests: try context.database.downloadTasks(jobID: job.id))
          })
      },
      Route("POST", "/api/v1/data/downloads/tasks/{id}:cancel", "cancelDownloadTask", scope: .dataWrite) { service, request in
        .ok(try await cancelDownload(service, request.parameter("id")), message: "cancel requested")
      },
      Route("POST", "/api/v1/data/downloads/tasks/{id}:retry", "retryDownloadTask", scope: .dataWrite) { service, request in
        try await startDownloads(service, request, try await retryRequest(service, request.parameter("id")))
      },
      Route("POST", "/api/v1/data/downloads/bulk:cancel", "cancelDownloadTasks", scope: .dataWrite) { service, request in
        var jobs: [JobInfo] = []
        for id in try bulkIDs(request) { jobs.append(try await cancelDownload(service, id)) }
        return .ok(Tasks(tasks: jobs), message: "cancel requested")
      },
      Route("POST", "/api/v1/data/downloads/bulk:retry", "retryDownloadTasks", scope: .dataWrite) { service, request in
        var started: [JobInfo] = []
        for id in try bulkIDs(request) {
          let retry = try await retryRequest(service, id)
          guard case .data(_, let payload, _, _) = try await startDownloads(service, request, retry), let tasks = payload as? Tasks else { continue }
          started += tasks.tasks
        }
        return .data(status: 202, payload: Tasks(tasks: started), message: "accepted", headers: [:])
      },
    ]
  }

  static func bulkIDs(_ request: APIRequest) throws -> [String] {
    let ids = try request.decode(BulkRequest.self).ids
    guard !ids.isEmpty, ids.count <= 100 else { throw ServerError.badParameter("ids", "1 to 100 task ids") }
    return ids
  }

  /// Refuses what would make the server read a file: the csv source's location must be a URL.
  static func checked(_ request: DownloadRequest) throws -> DownloadRequest {
    var request = request
    guard !request.symbols.isEmpty, request.symbols.count <= 200 else {
      throw OperationError.invalidArgument("give 1 to 200 symbols", field: "symbols")
    }
    if let location = request.location {
      let lower = location.lowercased()
      guard lower.hasPrefix("http://") || lower.hasPrefix("https://") else {
        throw ServerError(
          .usage, code: "file_access_refused", "url must be an http(s) URL: the server never reads files named by a client",
          details: ["field": "url"], hint: "upload the file to POST /api/v1/data/import instead")
      }
    } else if request.source == "csv" {
      throw OperationError.invalidArgument("the csv source needs a url", field: "url")
    }
    request.wait = false
    return request
  }

  /// The source and its options are checked before any task is created: an unknown source is a
  /// 400, not a 202 with tasks that fail.
  static func checkedSource(_ request: DownloadRequest, settings: Settings) throws -> DownloadRequest {
    _ = try SourceFactory.make(request, settings: settings)
    return request
  }

  /// One job per symbol, so each can be cancelled and retried on its own.
  static func startDownloads(_ service: APIService, _ request: APIRequest, _ download: DownloadRequest) async throws -> APIResult {
    let wait = try request.bool("wait")
    var started: [JobInfo] = []
    var reports: [DownloadReport] = []
    for symbol in download.symbols {
      var one = download
      one.symbols = [symbol]
      let single = one
      let settings = service.settings
      switch await service.jobs.start(context: service.operationContext(), wait: wait, { try DataOperations($0).download(single, settings: settings) }) {
      case .started(let id):
        service.metrics.jobsStarted.increment()
        started.append(try await service.run { try JobOperations($0).show(id: id) })
      case .finished(let result):
        reports.append(try result.get())
      }
    }
    if wait { return .ok(reports) }
    return .data(status: 202, payload: Tasks(tasks: started), message: "accepted: \(started.count) download task(s)", headers: [:])
  }

  static func cancelDownload(_ service: APIService, _ id: String) async throws -> JobInfo {
    let job = try await service.run { try JobOperations($0).show(id: id) }
    guard job.kind == "download" else { throw JobError.notFound(id) }
    service.jobs.cancel(id: job.id)
    return try await service.run { try JobOperations($0).cancel(id: job.id) }
  }

  /// The request of a finished download task, to run again (it fetches only what is missing).
  static func retryRequest(_ service: APIService, _ id: String) async throws -> DownloadRequest {
    let job = try await service.run { try JobOperations($0).show(id: id) }
    guard job.kind == "download" else { throw JobError.notFound(id) }
    guard job.status.isFinished else {
      throw ServerError(
        .conflict, code: "task_running", "task \(job.id) is still \(job.status.rawValue)", details: ["task": .string(job.id)],
        hint: "cancel it first, or wait for it")
    }
    let data = try APIJSON.encoder.encode(job.request)
    do {
      return try checked(try APIJSON.decoder.decode(DownloadRequest.self, from: data))
    } catch let error as DecodingError {
      throw ServerError(
        .invalidInput, code: "task_not_retryable", "task \(job.id) was recorded in a form that cannot be run again: \(error)",
        details: ["task": .string(job.id)])
    }
  }

  /// `GET …/export?format=csv|jsonl&from=&to=`: the bars, streamed as they are read.
  static func export(_ service: APIService, _ request: APIRequest) throws -> APIResult {
    let dataset = try name(request.parameter("name"), .dataset)
    let formatName = request.string("format") ?? "csv"
    guard let format = ExportFormat(rawValue: formatName) else { throw ServerError.badParameter("format", "csv or jsonl, not '\(formatName)'") }
    func time(_ key: String) throws -> Int64? {
      guard let text = request.string(key) else { return nil }
      guard let value = TimestampParser.parse(text) else { throw ServerError.badParameter(key, "an ISO-8601 date or time, not '\(text)'") }
      return value
    }
    let (from, to) = (try time("from"), try time("to"))
    let context = service.operationContext()
    _ = try context.database.dataset(named: dataset)  // 404 before any byte is sent
    let (stream, continuation) = AsyncThrowingStream<ByteBuffer, any Error>.makeStream(bufferingPolicy: .bufferingOldest(16))
    DispatchQueue.global().async {
      do {
        _ = try DataOperations(context).export(name: dataset, format: format, from: from, to: to) { chunk in
          continuation.yield(ByteBuffer(string: chunk))
        }
        continuation.finish()
      } catch {
        continuation.finish(throwing: error)
      }
    }
    var headers = HTTPFields()
    headers[.contentType] = format == .csv ? "text/csv; charset=utf-8" : "application/x-ndjson"
    headers[.contentDisposition] = "attachment; filename=\"\(dataset).\(format.rawValue)\""
    return .response(Response(status: .ok, headers: headers, body: ResponseBody(asyncSequence: stream)))
  }

  /// `POST /data/import?symbol=&timeframe=[&name=&source=&calendar=&filename=]` with the
  /// file as the body (CSV, .gz, .zip, .tar.gz): kept in a private directory while it is
  /// imported, then removed.
  static func upload(_ service: APIService, _ request: APIRequest) async throws -> APIResult {
    guard let body = request.body, body.readableBytes > 0 else {
      throw ServerError(.usage, code: "missing_body", "send the file as the request body", hint: "curl --data-binary @GOOG.csv …")
    }
    guard let symbol = request.string("symbol") else { throw ServerError.badParameter("symbol", "required") }
    guard let timeframeText = request.string("timeframe") else { throw ServerError.badParameter("timeframe", "required") }
    guard let timeframe = Timeframe(timeframeText) else { throw ServerError.badParameter("timeframe", "not a timeframe: '\(timeframeText)'") }
    try Identifier.check(symbol, as: .symbol)
    if let name = request.string("name") { try Identifier.check(name, as: .dataset) }
    var calendar: TradingCalendar?
    if let text = request.string("calendar") {
      guard let parsed = TradingCalendar(rawValue: text) else { throw ServerError.badParameter("calendar", "24x7 or weekdays, not '\(text)'") }
      calendar = parsed
    }
    // Only a base name, and only of identifier characters: nothing reaches outside the directory.
    let given = request.string("filename").map { String($0.split(separator: "/").last ?? "") } ?? "upload.csv"
    let fileName = String(given.filter { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }.prefix(100))
    let safeName = fileName.isEmpty || fileName.hasPrefix(".") ? "upload.csv" : fileName
    let directory = service.uploadDirectory + "/" + AuthOperations.randomHex(16)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let path = directory + "/" + safeName
    guard FileManager.default.createFile(atPath: path, contents: Data(buffer: body), attributes: [.posixPermissions: 0o600]) else {
      throw OperationError.cannotWrite("cannot keep the upload", path: nil)
    }
    let importRequest = ImportRequest(
      files: [path], symbol: symbol, timeframe: timeframe, name: request.string("name"), sourceName: request.string("source") ?? "csv",
      calendar: calendar, wait: false, forceTimeframe: try request.bool("force_timeframe"), allowNonPositive: try request.bool("allow_nonpositive"),
      displayNames: [safeName])
    return try await service.startJob(request) { context in
      defer { try? FileManager.default.removeItem(atPath: directory) }
      var report = try DataOperations(context).importFiles(importRequest)
      for index in report.files.indices { report.files[index].path = safeName }
      return report
    }
  }
}

extension APIService {
  /// Runs blocking engine work on the operation threads, never on the cooperative pool.
  func run<T: Sendable>(_ body: @escaping @Sendable (OperationContext) throws -> T) async throws -> T {
    let context = operationContext()
    return try await OperationAwait.run(cancellation: context.cancellation) { try body(context) }
  }

  /// Starts an operation as a job: 202 with the job (and a Location), or with `?wait=true`
  /// 200 with the operation's result — what the CLI prints with `--json`.
  func startJob<Result: Encodable & Sendable>(_ request: APIRequest, _ body: @escaping @Sendable (OperationContext) throws -> Result)
    async throws -> APIResult
  {
    switch await jobs.start(context: operationContext(), wait: try request.bool("wait"), body) {
    case .started(let id):
      metrics.jobsStarted.increment()
      let info = try await run { try JobOperations($0).show(id: id) }
      var headers = HTTPFields()
      headers[.location] = "/api/v1/jobs/\(id)"
      return .data(status: 202, payload: info, message: "accepted: job \(id)", headers: headers)
    case .finished(let result):
      return .ok(try result.get())
    }
  }
}
