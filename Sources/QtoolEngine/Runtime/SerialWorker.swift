import Dispatch

/// Runs work items one after another on a thread of their own, at most `limit` queued: the
/// caller blocks while the worker is that far behind. A download hands it each finished
/// transfer, so verifying, unpacking and storing one file overlaps the transfers of the next.
///
/// Whatever the items touch must be touched by nothing else until `drain()` returns.
final class SerialWorker: @unchecked Sendable {
  private let queue = DispatchQueue(label: "qtool.serial-worker")
  private let slots: DispatchSemaphore

  init(limit: Int) { slots = DispatchSemaphore(value: max(1, limit)) }

  func submit(_ work: @escaping () -> Void) {
    slots.wait()
    nonisolated(unsafe) let work = work
    queue.async { [slots] in
      work()
      slots.signal()
    }
  }

  /// Returns once every submitted item has run.
  func drain() { queue.sync {} }
}
