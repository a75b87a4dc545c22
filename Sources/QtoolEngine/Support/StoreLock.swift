import Foundation
import QtoolCore

#if canImport(Glibc)
  import Glibc
#endif

/// An advisory lock per store (`qtool.db.lock`), so two overlapping cron runs never interleave.
/// flock(2) is released by the kernel when the holder dies, so a kill -9 never leaves it stuck.
public final class StoreLock {
  private let descriptor: Int32

  private init(descriptor: Int32) { self.descriptor = descriptor }

  deinit {
    flock(descriptor, LOCK_UN)
    close(descriptor)
  }

  /// Takes the lock of the store at `databasePath`; with `wait`, blocks until it is free.
  public static func acquire(databasePath: String, purpose: String, wait: Bool) throws -> StoreLock {
    let path = databasePath + ".lock"
    let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw LockError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
    if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
      guard errno == EWOULDBLOCK, wait else {
        let holder = Self.describeHolder(descriptor)
        close(descriptor)
        throw LockError.held(path: path, holder: holder)
      }
      while flock(descriptor, LOCK_EX) != 0 && errno == EINTR {}
    }
    let stamp = UTCCalendar.format(Int64(Date().timeIntervalSince1970) * 1000, alwaysTime: true)
    let text = "pid \(getpid()), started \(stamp), \(purpose)\n"
    ftruncate(descriptor, 0)
    _ = text.withCString { pwrite(descriptor, $0, strlen($0), 0) }
    return StoreLock(descriptor: descriptor)
  }

  private static func describeHolder(_ descriptor: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = pread(descriptor, &buffer, buffer.count, 0)
    let text = count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) : ""
    return text.isEmpty ? "another process" : text
  }
}

public enum LockError: QtoolError, Equatable {
  case held(path: String, holder: String)
  case cannotOpen(path: String, reason: String)

  public var exitStatus: ExitStatus {
    switch self {
    case .held: return .temporaryFailure
    case .cannotOpen: return .cannotCreate
    }
  }

  public var description: String {
    switch self {
    case .held(let path, let holder):
      return "another download holds the store's lock (\(holder)); retry later or pass --wait (\(path))"
    case .cannotOpen(let path, let reason):
      return "cannot open the lock file \(path): \(reason)"
    }
  }
}
