import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import Logging
import NIOCore
import NIOSSL
import QtoolCore
import QtoolEngine
import QtoolStore
import ServiceLifecycle

/// Runs the API over HTTP (or HTTPS) with WebSocket upgrades on `/api/v1/ws`.
///
/// ```swift
/// let service = await APIService(database: db, settings: settings, configuration: configuration)
/// try await APIServer(service: service).run(host: "127.0.0.1", port: 8080, stop: token) { port in print(port) }
/// ```
public struct APIServer: Sendable {
  public let service: APIService
  public init(service: APIService) { self.service = service }

  /// The application, for `run` and for tests (`app.test(.router)` answers without a socket).
  public func application(host: String = "127.0.0.1", port: Int = 0, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws
    -> some ApplicationProtocol
  {
    let service = self.service
    let responder = CallbackResponder<APIRequestContext> { request, context in await service.respond(to: request, context: context) }
    let webSocket = HTTPServerBuilder.http1WebSocketUpgrade { request, _, logger in
      await Self.upgrade(request, service: service, logger: logger)
    }
    let server: HTTPServerBuilder
    if let certificate = service.configuration.tlsCertificate, let key = service.configuration.tlsKey {
      let tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
      server = try .tls(webSocket, tlsConfiguration: tls)
    } else {
      server = webSocket
    }
    var logger = Logger(label: "qtool.serve")
    logger.logLevel = service.logger.logLevel
    return Application(
      responder: responder, server: server,
      configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: nil),
      onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger)
  }

  /// Refuses a certificate or key that does not load, or a key that is not the certificate's,
  /// before anything listens.
  public static func checkTLS(certificate: String, key: String) throws {
    let chain: [NIOSSLCertificate]
    do {
      chain = try NIOSSLCertificate.fromPEMFile(certificate)
    } catch {
      chain = []
    }
    guard !chain.isEmpty else {
      throw OperationError(
        .invalidInput, code: "invalid_certificate", "\(certificate) is not a PEM certificate chain", details: ["path": .string(certificate)])
    }
    let privateKey: NIOSSLPrivateKey
    do {
      privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
    } catch {
      throw OperationError(.invalidInput, code: "invalid_private_key", "\(key) is not a PEM private key", details: ["path": .string(key)])
    }
    do {
      _ = try NIOSSLContext(
        configuration: TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey)))
    } catch {
      throw OperationError(
        .invalidInput, code: "tls_key_mismatch", "the key \(key) does not belong to the certificate \(certificate)",
        details: ["certificate": .string(certificate), "key": .string(key)])
    }
  }

  /// Whether to upgrade a request to a WebSocket: only `/api/v1/ws` with valid credentials;
  /// anything else goes on to the routes (which answer 401, 403 or 400 in the envelope).
  static func upgrade(_ request: HTTPRequest, service: APIService, logger: Logger) async -> ShouldUpgradeResult<
    WebSocketDataHandler<HTTP1WebSocketUpgradeChannel.Context>
  > {
    let path = request.path ?? ""
    let (route, query) = path.split(separator: "?", maxSplits: 1).map(String.init).splitPair
    guard route == "/api/v1/ws" else { return .dontUpgrade }
    guard let bearer = APIService.bearer(request.headerFields[.authorization], query: APIService.parseQuery(query)),
      let principal = try? await service.authenticator.authenticate(bearer: bearer),
      principal.has(.jobsRead) || principal.has(.signalsRead) || principal.has(.strategiesRead)
    else { return .dontUpgrade }
    return .upgrade([:]) { inbound, outbound, context in
      await WebSocketSession.run(service: service, principal: principal, inbound: inbound, outbound: outbound, logger: context.logger)
    }
  }

  /// Serves until `stop` is cancelled, then drains: new connections are refused, running jobs
  /// are cancelled (they record themselves as cancelled by SIGTERM), streams end, requests in
  /// flight finish — bounded by `drainSeconds`.
  public func run(
    host: String, port: Int, stop: CancellationToken, drainSeconds: Double = 1.5, onRunning: @escaping @Sendable (Int) async -> Void
  ) async throws {
    let service = self.service
    await service.prepare()
    let app = try application(host: host, port: port, onRunning: onRunning)
    let background = BackgroundTasks(service: service)
    let group = ServiceGroup(
      configuration: .init(
        services: [.init(service: app), .init(service: background, successTerminationBehavior: .ignore)], gracefulShutdownSignals: [],
        logger: service.logger))
    // true: the server has ended; false: a stop was asked for (or the grace period is over).
    try await withThrowingTaskGroup(of: Bool.self) { tasks in
      tasks.addTask {
        try await group.run()
        return true
      }
      tasks.addTask {
        while !stop.isCancelled { try await Task.sleep(for: .milliseconds(20)) }
        service.logger.info("stopping: draining requests and jobs")
        service.hub.close()
        // Hosted runners stop at their next bar boundary, meanwhile jobs are cancelled.
        async let runnersLeft = service.runners.stopAll(seconds: drainSeconds)
        let left = await service.jobs.drain(seconds: drainSeconds)
        if left > 0 { service.logger.warning("\(left) job(s) did not stop in time; they are marked interrupted by the next reader") }
        let runners = await runnersLeft
        if runners > 0 { service.logger.warning("\(runners) runner(s) did not stop in time; their runs are marked failed by the next reader") }
        await group.triggerGracefulShutdown()
        return false
      }
      if try await tasks.next() == false {
        // The server closes its connections by itself; cancelled if that takes too long (the
        // whole stop stays within 2 s: 1.5 s for jobs, 0.4 s for connections).
        tasks.addTask {
          try await Task.sleep(for: .milliseconds(400))
          return false
        }
        _ = try await tasks.next()
      }
      tasks.cancelAll()
    }
    try? FileManager.default.removeItem(atPath: service.uploadDirectory)
  }
}

/// The server's background work: the job watcher feeding the streams and the heartbeats.
struct BackgroundTasks: Service {
  let service: APIService
  func run() async throws {
    await withTaskGroup(of: Void.self) { group in
      group.addTask { await service.watcher.run(interval: .milliseconds(100)) }
      group.addTask { await service.signals.run(interval: .milliseconds(20)) }
      group.addTask { await service.runs.run(interval: .milliseconds(200)) }
      group.addTask {
        while !Task.isCancelled {
          try? await Task.sleep(for: .seconds(15))
          service.hub.heartbeat()
        }
      }
      group.addTask { try? await gracefulShutdown() }
      await group.next()
      group.cancelAll()
    }
  }
}

extension APIService {
  /// Before serving: jobs this host's dead servers left running are marked interrupted.
  public func prepare() async {
    _ = try? await run { try JobOperations($0).list(JobFilter(limit: 1)) }
  }
}

extension Array where Element == String {
  fileprivate var splitPair: (String, String?) { (self.first ?? "", self.count > 1 ? self[1] : nil) }
}
