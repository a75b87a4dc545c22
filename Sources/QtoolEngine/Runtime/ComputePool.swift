import Dispatch
import Foundation
import QtoolCore
import Synchronization

/// A slot per core for CPU-heavy work (backtests, grid batches, training rounds). Work takes a
/// slot for a batch and gives it back, so two grids at once share the cores instead of running
/// twice as many threads as there are cores.
public enum ComputePool {
  public static let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
  private static let slots = DispatchSemaphore(value: cores)
  private static let busy = Atomic<Int>(0)
  private static let peak = Atomic<Int>(0)

  /// Runs `body` holding a slot.
  public static func withSlot<T>(_ body: () throws -> T) rethrows -> T {
    slots.wait()
    let now = busy.add(1, ordering: .relaxed).newValue
    var seen = peak.load(ordering: .relaxed)
    while now > seen {
      let (exchanged, original) = peak.compareExchange(expected: seen, desired: now, ordering: .relaxed)
      if exchanged { break }
      seen = original
    }
    defer {
      busy.subtract(1, ordering: .relaxed)
      slots.signal()
    }
    return try body()
  }

  /// The most slots ever held at once (for tests and benchmarks).
  public static var peakBusy: Int { peak.load(ordering: .relaxed) }
  public static func resetPeak() { peak.store(0, ordering: .relaxed) }
}

/// Awaiting operations from async code (the server's handlers): the blocking work runs on
/// threads of its own, never on Swift's cooperative pool, and cancelling the awaiting task
/// cancels the operation.
public enum OperationAwait {
  private static let queue = DispatchQueue(label: "qtool.operations", attributes: .concurrent)

  public static func run<T: Sendable>(
    cancellation: CancellationToken, _ body: @escaping @Sendable () throws -> T
  ) async throws -> T {
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        queue.async { continuation.resume(with: Result { try body() }) }
      }
    } onCancel: {
      cancellation.cancel(.requested)
    }
  }
}
