import Foundation
import Synchronization

/// Files being written under a temporary name. If the process is interrupted (Ctrl-C), the
/// CLI's signal handler removes them so nothing half-written is left behind.
public enum TemporaryFiles {
  private static let paths = Mutex<Set<String>>([])

  public static func register(_ path: String) { paths.withLock { _ = $0.insert(path) } }
  public static func unregister(_ path: String) { paths.withLock { _ = $0.remove(path) } }
  public static func isRegistered(_ path: String) -> Bool { paths.withLock { $0.contains(path) } }

  /// Removes every registered file; safe to call from a signal-handling thread.
  public static func removeAll() {
    let current = paths.withLock { $0 }
    for path in current { unlink(path) }
  }
}
