import Foundation
import Synchronization

/// The time operations see: epoch milliseconds, UTC. Operations never read the system clock
/// themselves, so a test can drive time with a `ManualClock`.
public protocol WallClock: Sendable {
  /// Now, in epoch milliseconds.
  func now() -> Int64
  /// Sleeps `milliseconds`, waking early (and throwing) when `cancellation` is cancelled.
  func sleep(milliseconds: Int64, cancellation: CancellationToken) throws
}

extension WallClock {
  /// Seconds since `start` (epoch milliseconds), for durations in reports.
  public func seconds(since start: Int64) -> Double { Double(now() - start) / 1000 }
}

/// The system's real-time clock.
public struct SystemClock: WallClock {
  public init() {}
  public func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

  public func sleep(milliseconds: Int64, cancellation: CancellationToken) throws {
    var left = milliseconds
    // In slices, so a cancelled operation stops sleeping within 50 ms.
    while left > 0 {
      try cancellation.check()
      let slice = min(left, 50)
      usleep(useconds_t(slice * 1000))
      left -= slice
    }
    try cancellation.check()
  }
}

/// A clock that moves only when told to: `advance(by:)` or `set(_:)`. A sleeper wakes once
/// the clock has been moved past its deadline.
public final class ManualClock: WallClock {
  private let time: Mutex<Int64>

  public init(_ start: Int64 = 1_700_000_000_000) { time = Mutex(start) }

  public func now() -> Int64 { time.withLock { $0 } }

  public func advance(by milliseconds: Int64) { time.withLock { $0 += milliseconds } }

  public func set(_ milliseconds: Int64) { time.withLock { $0 = milliseconds } }

  public func sleep(milliseconds: Int64, cancellation: CancellationToken) throws {
    let deadline = now() + milliseconds
    while now() < deadline {
      try cancellation.check()
      usleep(1000)
    }
  }
}
