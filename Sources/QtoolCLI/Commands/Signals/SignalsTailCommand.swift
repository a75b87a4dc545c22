import Foundation
import QtoolArgs
import QtoolCore
import QtoolData
import QtoolEngine
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

enum SignalsTailCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "tail", abstract: "Print the latest signals, and follow new ones with -f",
    discussion: """
      One line per signal, oldest first: bar time, strategy, symbol and timeframe, type, action, \
      reason, strength and level, price, and `late` or `suppressed` when so; with --json one \
      JSON object per line (NDJSON). -f keeps following: signals stored by any process appear \
      within half a second. A closed pipe (`| head`) ends it with status 0, as do Ctrl-C and SIGTERM.

      --server URL follows a `qtool serve` instead of the local store, over its Server-Sent \
      Events stream (/api/v1/stream/signals), printing the same lines or JSON; the token comes \
      from --token or QTOOL_TOKEN (an API token with signals:read). A dropped connection is \
      resumed after the last signal printed (Last-Event-ID): none is missed or printed twice.
      """,
    options: [
      .flag("follow", short: "f", help: "Keep printing new signals as they are stored."),
      .value("lines", short: "n", .int, valueName: "n", help: "How many of the latest signals to print first.", defaultValue: "10"),
    ] + SignalFilterOptions.options + [
      SignalFilterOptions.since,
      .value("server", valueName: "url", help: "Follow a qtool serve at this URL (http or https) instead of the local store."),
      .value("token", valueName: "token", help: "The server's API token (default: $QTOOL_TOKEN)."),
      CommonOptions.json,
    ],
    examples: [
      Example("qtool signals tail -f", "Watch signals as runners emit them"),
      Example("qtool signals tail -f --server https://qtool.example.com --token $T", "Watch a remote server's signals"),
      Example("qtool signals tail -f --json --type buy --min-strength 80 | jq .price", "Strong buys, for a script"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let count = arguments.int("lines"), count >= 0 else { throw UsageError("--lines: expected 0 or more", commandPath: arguments.commandPath) }
    if let server = arguments.string("server") { return try remote(context, server: server, count: count) }
    if arguments.isGiven("token") { throw UsageError("--token applies only with --server", commandPath: arguments.commandPath) }
    var operations = LiveOperations(try context.operations())
    let filter = try SignalFilterOptions.filter(context, now: operations.context.clock.now())
    func show(_ signal: SignalInfo) throws {
      if context.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        context.stdout.write(String(decoding: try encoder.encode(signal), as: UTF8.self) + "\n")
      } else {
        context.stdout.line(SignalLine.render(signal))
      }
    }
    let database = operations.context.database
    var last: Int64 = 0
    // The newest insertion number first, then the rows up to it: signals are numbered in commit
    // order (one writer at a time), so a row committed meanwhile comes in the next batch.
    if database.exists {
      last = try operations.lastSignalSeq()
      for signal in try operations.tail(filter, count: count, through: last) { try show(signal) }
    }
    guard arguments.flag("follow") else { return .success }
    // A store that does not exist yet: wait for it to be made.
    var watcher: StoreChangeWatcher?
    while watcher == nil {
      if Signals.cancellation.isCancelled || stdoutClosed() { return .success }
      if FileManager.default.fileExists(atPath: database.path) {
        if !database.exists {
          operations = LiveOperations(
            OperationContext(
              database: try QtoolDatabase.open(path: database.path, readOnly: true), clock: operations.context.clock,
              cancellation: operations.context.cancellation, logger: operations.context.logger))
        }
        watcher = try StoreChangeWatcher(path: database.path)
      } else {
        usleep(250_000)
      }
    }
    var changed = true
    while !Signals.cancellation.isCancelled {
      if changed {
        let newest = try operations.lastSignalSeq()
        while last < newest {
          let batch = try operations.signals(after: last, through: newest, filter, limit: 1000)
          for signal in batch { try show(signal) }
          last = batch.count == 1000 ? batch[batch.count - 1].seq : newest
        }
      }
      if stdoutClosed() { return .success }
      usleep(100_000)
      changed = try watcher!.changed()
    }
    return .success
  }

  static func show(_ signal: SignalInfo, context: CommandContext) throws {
    if context.json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
      context.stdout.write(String(decoding: try encoder.encode(signal), as: UTF8.self) + "\n")
    } else {
      context.stdout.line(SignalLine.render(signal))
    }
  }

  /// `--server URL`: the server's signal stream, resumed after the last signal printed when the
  /// connection drops (waits of 1 s doubling to 30 s); without -f, the latest signals and done.
  static func remote(_ context: CommandContext, server: String, count: Int) throws -> ExitStatus {
    let arguments = context.arguments
    guard let base = URL(string: server), let scheme = base.scheme?.lowercased(), ["http", "https"].contains(scheme), base.host != nil else {
      throw UsageError("--server: expected an http(s) URL like http://127.0.0.1:8080, got '\(server)'", commandPath: arguments.commandPath)
    }
    if arguments.isGiven("since") { throw UsageError("--since applies to the local store only", commandPath: arguments.commandPath) }
    guard let token = arguments.string("token") ?? context.environment["QTOOL_TOKEN"].flatMap({ $0.isEmpty ? nil : $0 }) else {
      throw UsageError("--server needs an API token: --token T or QTOOL_TOKEN (`qtool auth token create NAME --scopes signals:read`)",
        commandPath: arguments.commandPath)
    }
    let filter = try SignalFilterOptions.filter(context, now: 0)
    func encode(_ text: String) -> String { text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? text }
    var query: [String] = []
    for (name, values) in [("strategy", filter.strategies), ("symbol", filter.symbols), ("type", filter.types), ("level", filter.levels)] where !values.isEmpty {
      query.append("\(name)=" + encode(values.joined(separator: ",")))
    }
    if let minimum = filter.minStrength { query.append("min_strength=\(minimum)") }
    var root = server
    while root.hasSuffix("/") { root.removeLast() }
    let follow = arguments.flag("follow")
    var lastID: String?
    var connected = false
    var caughtUp = false
    var wait: UInt32 = 1
    while true {
      var parts = query
      // The first connection (and one made before any signal existed) starts with the tail.
      if lastID == nil { parts.append("tail=\(connected ? 10_000 : count)") }
      let url = root + "/api/v1/stream/signals" + "?" + parts.joined(separator: "&")
      var headers = ["Authorization: Bearer \(token)"]
      if let lastID { headers.append("Last-Event-ID: \(lastID)") }
      var received = false
      let end = try EventStream.read(
        url: url, headers: headers, userAgent: "qtool/\(VersionInfo.version)",
        shouldStop: { Signals.cancellation.isCancelled || stdoutClosed() }
      ) { event in
        received = true
        switch event.type {
        case "signal":
          guard let signal = try? JSONDecoder().decode(SignalInfo.self, from: Data(event.data.utf8)) else {
            throw OperationError(
              .unavailable, code: "server_protocol", "\(server) sent a signal event qtool cannot read: \(event.data.prefix(200))",
              details: ["server": .string(server)], hint: "check that the server runs the same qtool version (`qtool version`)")
          }
          try show(signal, context: context)
          lastID = event.id ?? signal.id
        case "caught-up":
          if let id = event.id { lastID = id }
          caughtUp = true
          return follow
        default:
          break
        }
        return true
      }
      if received {
        connected = true
        wait = 1
      }
      switch end {
      case .stopped:
        return .success
      case .closed:
        if !follow, caughtUp { return .success }
        // A server (or a proxy before it) that ends the stream is followed again, and said so:
        // a follower that reconnects in silence looks like one that receives nothing.
        if follow { context.note("qtool: \(server) ended the signal stream; reconnecting in \(wait) s") }
      case .status(let status, let body):
        struct Envelope: Decodable {
          struct Body: Decodable {
            var code: String
            var message: String
            var type: String
            var hint: String?
          }
          var error: Body
        }
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body.utf8)) {
          throw ReportedError(
            ErrorReport(
              code: envelope.error.code, category: ErrorCategory(rawValue: envelope.error.type) ?? .failure,
              message: "\(server) answered \(status): \(envelope.error.message)", details: ["status": JSONValue(status)], hint: envelope.error.hint))
        }
        throw OperationError(.unavailable, code: "server_error", "\(server) answered \(status) to the signal stream", details: ["status": JSONValue(status)])
      case .failed(let reason):
        guard connected, follow else {
          throw OperationError(
            .unavailable, code: "server_unreachable", "cannot follow \(server): \(reason)", details: ["server": .string(server)],
            hint: "check the URL, and that `qtool serve` runs there")
        }
        context.note("qtool: the connection to \(server) dropped (\(reason)); reconnecting in \(wait) s")
      }
      if !follow {
        // Without -f the answer is complete only once the server said it caught up.
        guard caughtUp else {
          throw OperationError(
            .unavailable, code: "stream_incomplete", "\(server) ended the signal stream before it had sent the latest signals",
            details: ["server": .string(server)], hint: "run it again; `qtool signals tail -f` reconnects by itself")
        }
        return .success
      }
      for _ in 0..<(wait * 10) {
        if Signals.cancellation.isCancelled || stdoutClosed() { return .success }
        usleep(100_000)
      }
      wait = min(30, wait * 2)
    }
  }

  /// True when whoever read stdout has gone (`| head` exited): a pipe's write end reports it.
  static func stdoutClosed() -> Bool {
    var descriptor = pollfd(fd: 1, events: 0, revents: 0)
    guard poll(&descriptor, 1, 0) > 0 else { return false }
    return descriptor.revents & Int16(POLLERR | POLLHUP) != 0
  }
}
