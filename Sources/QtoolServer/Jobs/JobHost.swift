import Foundation
import Logging
import QtoolCore
import QtoolEngine
import QtoolStore
import Synchronization

/// Runs the long operations the API starts, in the server's process: each on the operation
/// threads (never the cooperative pool), with its own cancellation token, answered with its
/// job as soon as the job's row exists. SIGTERM cancels them all; `drain` waits for them.
final class JobHost: Sendable {
  private struct Running {
    var token: CancellationToken
    var key: Int
  }
  private let running = Mutex<[String: Running]>([:])
  private let pending = Mutex<[Int: Task<Void, Never>]>([:])
  private let counter = Atomic<Int>(0)
  let shutdown = CancellationToken()
  /// Called when an operation has ended (its job's row is final).
  private let onEnd: @Sendable () -> Void

  init(onEnd: @escaping @Sendable () -> Void = {}) { self.onEnd = onEnd }

  /// How a start ended before or when the job existed.
  enum Start<Result: Sendable>: Sendable {
    /// The job's row exists; the operation goes on in the background.
    case started(String)
    /// The operation finished (or failed) before making a job, or the caller waited for it.
    case finished(Swift.Result<Result, any Error>)
  }

  /// Starts `body` with a context of its own; returns once its job exists (or it has ended).
  /// With `wait`, returns only when the operation has ended.
  func start<Result: Sendable>(
    context base: OperationContext, wait: Bool, _ body: @escaping @Sendable (OperationContext) throws -> Result
  ) async -> Start<Result> {
    let token = CancellationToken(parent: shutdown)
    let (jobStream, jobContinuation) = AsyncStream<String>.makeStream()
    var context = base
    context.cancellation = token
    context.onJobStart = { id in
      jobContinuation.yield(id)
    }
    let key = counter.add(1, ordering: .relaxed).newValue
    let outcome = Mutex<Swift.Result<Result, any Error>?>(nil)
    let (doneStream, doneContinuation) = AsyncStream<Void>.makeStream()
    let finalContext = context
    let task = Task.detached { [weak self] in
      let result: Swift.Result<Result, any Error>
      do {
        result = .success(try await OperationAwait.run(cancellation: token) { try body(finalContext) })
      } catch {
        result = .failure(error)
      }
      outcome.withLock { $0 = result }
      self?.onEnd()
      jobContinuation.finish()
      doneContinuation.finish()
      self?.finished(key: key)
    }
    pending.withLock { $0[key] = task }
    if wait {
      for await _ in doneStream {}
      return .finished(outcome.withLock { $0 }!)
    }
    for await id in jobStream {
      running.withLock { $0[id] = Running(token: token, key: key) }
      return .started(id)
    }
    return .finished(outcome.withLock { $0 }!)
  }

  private func finished(key: Int) {
    pending.withLock { _ = $0.removeValue(forKey: key) }
    running.withLock { running in
      for (id, job) in running where job.key == key { running.removeValue(forKey: id) }
    }
  }

  /// Cancels a job this process runs, at once (others are cancelled through the store).
  func cancel(id: String) { running.withLock { $0[id] }?.token.cancel(.requested) }

  var activeCount: Int { pending.withLock { $0.count } }

  /// Cancels every operation (as SIGTERM does) and waits up to `seconds` for them to record
  /// their end. Returns how many were still running then.
  func drain(seconds: Double) async -> Int {
    shutdown.cancel(.terminate)
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while activeCount > 0, ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(10))
    }
    return activeCount
  }
}

/// Polls the jobs table and publishes each change of a job (status, progress, cancel request)
/// to the hub, for the jobs of every process using the store.
final class JobWatcher: Sendable {
  let database: QtoolDatabase
  let hub: EventHub
  private let seen = Mutex<[String: String]>([:])
  private let watermark = Atomic<Int64>(0)
  /// One poll at a time, so a job's events are published in the order they happened.
  private let polling = Mutex<Void>(())

  init(database: QtoolDatabase, hub: EventHub, since: Int64) {
    self.database = database
    self.hub = hub
    watermark.store(since, ordering: .relaxed)
  }

  /// One poll: publishes what changed since the last.
  func poll(now: Int64) {
    polling.withLock { _ in pollOnce(now: now) }
  }

  private func pollOnce(now: Int64) {
    let since = watermark.load(ordering: .relaxed)
    guard let changed = try? database.jobsChanged(since: since - 2000) else { return }
    var newest = since
    for record in changed {
      newest = max(newest, record.heartbeatAt ?? 0, record.finishedAt ?? 0, record.createdAt, record.cancelRequestedAt ?? 0)
      let fingerprint = [record.status, record.progress ?? "", String(record.cancelRequestedAt ?? 0), String(record.finishedAt ?? 0)]
        .joined(separator: "|")
      let isNew = seen.withLock { seen -> Bool in
        guard seen[record.id] != fingerprint else { return false }
        seen[record.id] = fingerprint
        return true
      }
      guard isNew, let data = try? APIJSON.encoder.encode(JobOperations.info(record, now: now)) else { continue }
      hub.publish(channel: "job:\(record.id)", type: "job", data: data)
    }
    watermark.store(newest, ordering: .relaxed)
    seen.withLock { seen in
      if seen.count > 10_000 { seen = seen.filter { !$0.value.hasPrefix("completed") && !$0.value.hasPrefix("failed") } }
    }
  }

  func run(interval: Duration) async {
    while !Task.isCancelled {
      poll(now: Int64(Date().timeIntervalSince1970 * 1000))
      try? await Task.sleep(for: interval)
    }
  }
}
