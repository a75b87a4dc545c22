import Synchronization

/// Why an operation was asked to stop.
public enum CancellationReason: Int, Sendable, Codable {
  /// Ctrl-C (SIGINT).
  case interrupt = 1
  /// SIGTERM: the process is being stopped.
  case terminate = 2
  /// `qtool jobs cancel`, or a client of the server.
  case requested = 3

  var category: ErrorCategory { self == .terminate ? .terminated : .cancelled }
}

/// A flag an operation checks at block boundaries (a batch of bars stored, a piece of a file
/// parsed, a batch of grid combinations, a finished transfer) to stop cooperatively: whatever it
/// has not committed is rolled back and it throws `OperationCancelled`. Setting it is all a
/// signal handler, another thread or another job does.
///
/// ```swift
/// let token = CancellationToken()
/// for batch in batches {
///   try token.check()
///   work(batch)
/// }
/// ```
public final class CancellationToken: Sendable {
  private let state = Atomic<Int>(0)
  private let parent: CancellationToken?

  public init(parent: CancellationToken? = nil) { self.parent = parent }

  /// A token nothing cancels (for callers that cannot stop anyway).
  public static let never = CancellationToken()

  /// Asks the operation to stop; the first reason given is kept.
  public func cancel(_ reason: CancellationReason = .requested) {
    guard self !== Self.never else { return }
    _ = state.compareExchange(expected: 0, desired: reason.rawValue, ordering: .relaxed)
  }

  public var reason: CancellationReason? {
    let value = state.load(ordering: .relaxed)
    if value != 0 { return CancellationReason(rawValue: value) }
    return parent?.reason
  }

  public var isCancelled: Bool { reason != nil }

  /// Throws `OperationCancelled` once the token is cancelled.
  @inline(__always)
  public func check() throws {
    if let reason { throw OperationCancelled(reason: reason) }
  }
}

/// The operation stopped because it was asked to: exit 130 (143 for SIGTERM).
public struct OperationCancelled: QtoolError, Equatable {
  public var reason: CancellationReason
  public init(reason: CancellationReason) { self.reason = reason }
  public var category: ErrorCategory { reason.category }
  public var code: String { "cancelled" }
  public var message: String {
    switch reason {
    case .interrupt: return "interrupted; nothing half-done was kept"
    case .terminate: return "terminated; nothing half-done was kept"
    case .requested: return "cancelled on request; nothing half-done was kept"
    }
  }
  public var details: [String: JSONValue] {
    ["reason": .string(reason == .interrupt ? "interrupt" : reason == .terminate ? "terminate" : "requested")]
  }
}
