import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import QtoolCore
import QtoolEngine
import QtoolStore

/// `/api/v1/jobs/*` and the job streams: list, one, cancel, Server-Sent Events.
enum JobRoutes {
  static func jobID(_ request: APIRequest) throws -> String {
    let id = request.parameter("id")
    guard !id.isEmpty, id.count <= 64, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber) }) else {
      throw ServerError.badParameter("id", "not a job id: '\(String(id.prefix(80)))'")
    }
    return id
  }

  static var routes: [Route] {
    [
      Route("GET", "/api/v1/jobs", "listJobs", scope: .jobsRead) { service, request in
        let (page, size) = try request.paging()
        let statuses = request.string("status").map { $0.split(separator: ",").map(String.init) } ?? []
        let kinds = request.string("kind").map { $0.split(separator: ",").map(String.init) } ?? []
        for status in statuses where JobStatus(rawValue: status) == nil {
          throw ServerError.badParameter("status", "one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", ")), not '\(status)'")
        }
        let (items, total) = try await service.run { try JobOperations($0).page(statuses: statuses, kinds: kinds, page: page, size: size) }
        return .ok(Page(items: items, total: total, page: page, size: size))
      },
      Route("GET", "/api/v1/jobs/{id}", "getJob", scope: .jobsRead) { service, request in
        let id = try jobID(request)
        return .ok(try await service.run { try JobOperations($0).show(id: id) })
      },
      Route("POST", "/api/v1/jobs/{id}:cancel", "cancelJob", scope: .jobsCancel) { service, request in
        let id = try jobID(request)
        let job = try await service.run { try JobOperations($0).show(id: id) }
        service.jobs.cancel(id: job.id)
        let info = try await service.run { try JobOperations($0).cancel(id: job.id) }
        return .ok(info, message: info.status.isFinished ? "the job had finished already" : "cancel requested")
      },
      Route("GET", "/api/v1/jobs/{id}/events", "streamJob", scope: .jobsRead) { service, request in
        let id = try jobID(request)
        let job = try await service.run { try JobOperations($0).show(id: id) }
        return try stream(service, request, channel: "job:\(job.id)", snapshot: job)
      },
      Route("GET", "/api/v1/stream/jobs", "streamJobs", scope: .jobsRead) { service, request in
        try stream(service, request, channel: "jobs", snapshot: nil)
      },
      Route("GET", "/api/v1/ws", "webSocket", scope: .jobsRead) { _, _ in
        throw ServerError(
          .usage, code: "websocket_upgrade_required", "this route is a WebSocket: connect with an Upgrade: websocket request",
          hint: "ws://HOST/api/v1/ws?token=TOKEN, then send {\"type\": \"subscribe\", \"channel\": \"jobs\"}")
      },
    ]
  }

  struct Status: Decodable { var status: JobStatus }

  /// Server-Sent Events of `channel`: with `Last-Event-ID` (or `last_event_id`), first the
  /// events missed since then, then new ones; without, the job as it is now (`snapshot`), then
  /// its changes. A job's stream ends after its last change; `reset` says events were lost
  /// (the client reloads the state).
  static func stream(_ service: APIService, _ request: APIRequest, channel: String, snapshot: JobInfo?) throws -> APIResult {
    let lastText = request.headers[.init("Last-Event-ID")!] ?? request.query["last_event_id"]
    let last = try lastText.map { text -> Int64 in
      guard let value = Int64(text.trimmingCharacters(in: .whitespaces)), value >= 0 else {
        throw ServerError.badParameter("Last-Event-ID", "an event id, not '\(text)'")
      }
      return value
    }
    let subscription = service.hub.subscribe(after: last) { StreamChannel.matches(subscribed: channel, published: $0) }
    let gauge = service.metrics.streamSubscribers
    let endsWithJob = snapshot != nil
    var headers = HTTPFields()
    headers[.contentType] = "text/event-stream"
    headers[.cacheControl] = "no-cache"
    headers[.init("X-Accel-Buffering")!] = "no"
    let body = ResponseBody { writer in
      gauge.increment()
      defer {
        gauge.decrement()
        subscription.close()
      }
      func finished(_ event: StreamEvent) -> Bool {
        endsWithJob && ((try? APIJSON.decoder.decode(Status.self, from: event.data))?.status.isFinished ?? false)
      }
      try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
      if last != nil, !subscription.complete {
        try await writer.write(ByteBuffer(string: "id: \(subscription.position)\nevent: reset\ndata: {}\n\n"))
      }
      if last == nil, let snapshot, let data = try? APIJSON.encoder.encode(snapshot) {
        let event = StreamEvent(id: subscription.position, channel: channel, type: "job", data: data)
        try await writer.write(ByteBuffer(string: event.sse))
        if snapshot.status.isFinished {
          try await writer.finish(nil)
          return
        }
      }
      for event in subscription.replay {
        try await writer.write(ByteBuffer(string: event.sse))
        if finished(event) {
          try await writer.finish(nil)
          return
        }
      }
      for await event in subscription.events {
        if event.type == "ping" {
          try await writer.write(ByteBuffer(string: ": ping\n\n"))
          continue
        }
        try await writer.write(ByteBuffer(string: event.sse))
        if finished(event) { break }
      }
      try await writer.finish(nil)
    }
    return .response(Response(status: .ok, headers: headers, body: body))
  }
}
