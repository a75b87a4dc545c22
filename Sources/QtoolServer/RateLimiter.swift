import QtoolCore
import Synchronization

/// The class of a route for rate limiting: `/auth` routes are limited harder than the rest;
/// health and metrics are not limited.
public enum RateClass: String, Sendable {
  case auth, `default`, unlimited
}

/// Fixed-window counters per client and route class, in memory.
final class RateLimiter: Sendable {
  struct Decision {
    var allowed: Bool
    var limit: RateLimit
    var remaining: Int
    /// Seconds until the window resets.
    var reset: Int
  }

  private struct Window {
    var start: Int64
    var count: Int
  }

  private let limits: [RateClass: RateLimit]
  private let clock: any WallClock
  private let windows = Mutex<[String: Window]>([:])

  init(auth: RateLimit, default: RateLimit, clock: any WallClock) {
    limits = [.auth: auth, .default: `default`]
    self.clock = clock
  }

  /// Counts one request of `client` to a route of `rateClass`.
  func check(client: String, rateClass: RateClass) -> Decision? {
    guard let limit = limits[rateClass] else { return nil }
    let now = clock.now()
    let length = Int64(limit.windowSeconds) * 1000
    let start = now - now % length
    let key = rateClass.rawValue + "|" + client
    let count = windows.withLock { windows -> Int in
      if windows.count > 50_000 { windows = windows.filter { $0.value.start >= start } }
      var window = windows[key] ?? Window(start: start, count: 0)
      if window.start != start { window = Window(start: start, count: 0) }
      window.count += 1
      windows[key] = window
      return window.count
    }
    let reset = Int((start + length - now + 999) / 1000)
    return Decision(allowed: count <= limit.requests, limit: limit, remaining: max(0, limit.requests - count), reset: max(1, reset))
  }
}
