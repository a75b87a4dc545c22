import Dispatch
import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolServer
import QtoolStore

enum ServeCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "serve", abstract: "Serve the REST API (/api/v1) and the dashboard (/)",
    discussion: """
      Every operation of the CLI over HTTP, with the same request fields and error codes: \
      data, strategies, backtests (as jobs: 202 and a job to follow), grids, walk-forward, jobs, \
      live runners (started in the server's process under the same lease as `strategy start`) \
      and signals, Server-Sent Events and a WebSocket for progress and signals, /healthz, \
      /readyz, /info, /metrics (Prometheus) and the OpenAPI document at /api/v1/openapi.json.

      Listens on 127.0.0.1 unless told otherwise; another address is refused (exit 64) while no \
      user or API token exists (qtool auth). Limits and the signing key are settings \
      (serve.*; qtool config show). SIGTERM or Ctrl-C drains: no new connections, running jobs \
      are cancelled and recorded as such, runners stop at their next bar boundary, streams end, \
      and the server exits 0.
      """,
    options: [
      .value("host", valueName: "address", help: "The address to listen on.", defaultValue: "127.0.0.1"),
      .value("port", .int, valueName: "port", help: "The port; 0 picks a free one (see --port-file).", defaultValue: "8080"),
      .value("port-file", .path(.file(extensions: [])), valueName: "file", help: "Write the port listened on to this file once listening (- for stdout)."),
      .value("tls-cert", .path(.namedFile(extensions: ["pem", "crt"])), valueName: "file", help: "Serve HTTPS with this PEM certificate chain."),
      .value("tls-key", .path(.namedFile(extensions: ["pem", "key"])), valueName: "file", help: "The PEM private key of --tls-cert."),
      CommonOptions.json,
    ],
    examples: [
      Example("qtool serve", "The API and dashboard on http://127.0.0.1:8080"),
      Example("qtool serve --host 0.0.0.0 --port 9000", "On every address (needs a user or token first)"),
      Example("qtool serve --port 0 --port-file /run/qtool.port", "A free port, written to a file for scripts"),
      Example("qtool serve --port 0 --json", "Once listening, print {url, host, port, pid} as JSON on stdout"),
    ])

  static func isLoopback(_ host: String) -> Bool {
    host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
  }

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let host = arguments.string("host") ?? "127.0.0.1"
    let port = arguments.int("port") ?? 8080
    guard (0...65535).contains(port) else { throw OperationError.invalidArgument("the port must be 0 to 65535", field: "port") }
    let settings = try context.settings()
    var configuration = try ServerConfiguration.resolve(settings: settings)
    switch (arguments.string("tls-cert"), arguments.string("tls-key")) {
    case (let cert?, let key?):
      for path in [cert, key] where !FileManager.default.isReadableFile(atPath: path) {
        throw OperationError.notFound("cannot read \(path)", code: "file_not_found", details: ["path": .string(path)])
      }
      try APIServer.checkTLS(certificate: cert, key: key)
      configuration.tlsCertificate = cert
      configuration.tlsKey = key
    case (nil, nil): break
    default: throw OperationError.invalidArgument("give both a certificate and its key", field: "tls_cert", hint: "{tls_cert} FILE {tls_key} FILE")
    }
    let database = try context.database()
    if !isLoopback(host), try !database.hasCredentials(at: SystemClock().now()) {
      throw OperationError(
        .usage, code: "no_credentials",
        "refusing to listen on \(host): no user or API token exists, so anyone who reaches it could use the API",
        details: ["host": .string(host)], hint: "add one with `qtool auth user add NAME --role admin`, or listen on 127.0.0.1")
    }
    let portFile = arguments.string("port-file")
    if let portFile, !FileArgument.isStandard(portFile) {
      // Checked before listening: a script waiting for the file would otherwise wait forever.
      let directory = URL(fileURLWithPath: portFile).deletingLastPathComponent().path
      guard FileManager.default.isWritableFile(atPath: directory) else {
        throw OperationError.cannotWrite("cannot write the port file \(portFile): \(directory) does not exist or is not writable", path: portFile)
      }
    }
    let stderr = context.stderr
    let stdout = context.stdout
    let json = context.json
    let scheme = configuration.tlsCertificate == nil ? "http" : "https"
    let outcome = BlockingResult()
    let finalConfiguration = configuration
    let logger = context.logger
    Task.detached {
      do {
        let service = await APIService(database: database, settings: settings, configuration: finalConfiguration, logger: logger)
        try await APIServer(service: service).run(host: host, port: port, stop: Signals.cancellation) { bound in
          if let portFile {
            if FileArgument.isStandard(portFile) {
              stdout.write("\(bound)\n")
            } else {
              try? AtomicFile.write(Data("\(bound)\n".utf8), to: portFile, overwrite: true)
            }
          }
          let url = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host):\(bound)"
          stderr.line("qtool serve: listening on \(url)")
          if json, let text = try? JSONOutput.encode(Listening(url: url, host: host, port: bound, pid: getpid())) { stdout.write(text + "\n") }
        }
        outcome.finish(nil)
      } catch {
        outcome.finish(error)
      }
    }
    if let error = outcome.wait() {
      if let error = error as? any QtoolError { throw error }
      throw OperationError(.unavailable, code: "cannot_listen", "cannot serve on \(host):\(port): \(error)", details: ["host": .string(host)])
    }
    stderr.line("qtool serve: stopped")
    return .success
  }
}

/// What `serve --json` prints once it listens.
struct Listening: Encodable {
  var url: String
  var host: String
  var port: Int
  var pid: Int32
}

/// Waits on a thread that is not the cooperative pool's for an async task to end.
final class BlockingResult: @unchecked Sendable {
  private let semaphore = DispatchSemaphore(value: 0)
  private var error: (any Error)?
  func finish(_ error: (any Error)?) {
    self.error = error
    semaphore.signal()
  }
  func wait() -> (any Error)? {
    semaphore.wait()
    return error
  }
}
