import Foundation
import QtoolCore
import QtoolData
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// Who holds a lease: written into the lease file so a refused writer can name it.
public struct LeaseHolder: Codable, Sendable, Equatable {
  public var pid: Int
  public var host: String
  public var jobID: String?
  public var purpose: String
  /// Epoch milliseconds.
  public var since: Int64

  public init(pid: Int, host: String, jobID: String?, purpose: String, since: Int64) {
    self.pid = pid
    self.host = host
    self.jobID = jobID
    self.purpose = purpose
    self.since = since
  }

  enum CodingKeys: String, CodingKey { case pid, host, jobID = "job_id", purpose, since }

  /// This process, now.
  public static func current(jobID: String?, purpose: String, at time: Int64) -> LeaseHolder {
    LeaseHolder(pid: Int(getpid()), host: ProcessIdentity.host, jobID: jobID, purpose: purpose, since: time)
  }
}

/// The host name recorded with jobs and leases.
public enum ProcessIdentity {
  public static let host: String = {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }()
}

/// Leases on named things of a store — a dataset being written, a job being run — so that
/// writers of different datasets run side by side while two writers of one dataset cannot.
///
/// A lease is an exclusive `flock` on a file in the store's lease directory (`qtool.db.leases/`).
/// The kernel releases it when its holder dies, however it dies, so a dead holder's lease is
/// free at once and a job whose lease is free has no process behind it. Every acquisition opens
/// its own file description, so two tasks of one process exclude each other too. The file
/// holds the holder's description (JSON), read by those it refuses.
public struct LeaseManager: Sendable {
  public let directory: String

  public init(directory: String) { self.directory = directory }

  /// The lease directory of `database`: beside its file, or a directory of this process for an
  /// in-memory store.
  public init(for database: QtoolDatabase) {
    if database.isInMemory {
      directory = NSTemporaryDirectory() + "qtool-leases-\(getpid())"
    } else {
      directory = database.path + ".leases"
    }
  }

  /// The file of the lease `key` (e.g. `dataset:GOOG-1d`): key characters outside
  /// `[A-Za-z0-9._-]` are escaped, so any dataset name gives one safe file name.
  func path(_ key: String) -> String {
    var name = ""
    for byte in key.utf8 {
      switch byte {
      case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
        UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
        name.append(Character(UnicodeScalar(byte)))
      default:
        name += String(format: "%%%02X", byte)
      }
    }
    // File names stop at 255 bytes: a long key keeps its start and gets its hash.
    if name.utf8.count > 180 { name = String(name.utf8.prefix(100))! + "~" + ContentHash.sha256Hex(Data(key.utf8)).prefix(32) }
    return directory + "/" + name + ".lease"
  }

  /// Takes the lease `key`. Held by someone else: with `wait`, waits (checking `cancellation`);
  /// without, throws `LeaseError.held` naming the holder.
  public func acquire(
    _ key: String, holder: LeaseHolder, wait: Bool, cancellation: CancellationToken = .never, clock: any WallClock = SystemClock()
  ) throws -> Lease {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw LeaseError.cannotOpen(path: directory, reason: "cannot create the lease directory")
    }
    let file = path(key)
    let descriptor = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw LeaseError.cannotOpen(path: file, reason: String(cString: strerror(errno))) }
    while flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
      guard errno == EWOULDBLOCK || errno == EINTR else {
        let reason = String(cString: strerror(errno))
        close(descriptor)
        throw LeaseError.cannotOpen(path: file, reason: reason)
      }
      guard wait else {
        // The holder writes its description just after it takes the lock: a refusal in between
        // read an empty file and named nobody. Give it a moment (a lock never stays held without
        // one: a holder that dies releases it).
        var current = Self.readHolder(descriptor)
        var tries = 0
        while current == nil, tries < 40 {
          usleep(5_000)
          current = Self.readHolder(descriptor)
          tries += 1
        }
        close(descriptor)
        throw LeaseError.held(key: key, holder: current)
      }
      do {
        try clock.sleep(milliseconds: 50, cancellation: cancellation)
      } catch {
        close(descriptor)
        throw error
      }
    }
    if let data = try? JSONEncoder().encode(holder) {
      ftruncate(descriptor, 0)
      _ = data.withUnsafeBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }
    return Lease(key: key, descriptor: descriptor)
  }

  /// Takes the leases of `keys` in a fixed order (so two writers of overlapping sets cannot
  /// deadlock); all or none.
  public func acquireAll(
    _ keys: [String], holder: LeaseHolder, wait: Bool, cancellation: CancellationToken = .never, clock: any WallClock = SystemClock()
  ) throws -> [Lease] {
    var leases: [Lease] = []
    for key in Set(keys).sorted() {
      leases.append(try acquire(key, holder: holder, wait: wait, cancellation: cancellation, clock: clock))
    }
    return leases
  }

  /// Whether `key` is held now, and by whom. A free lease whose file names a holder means that
  /// holder is gone.
  public func state(of key: String) -> LeaseState {
    let descriptor = open(path(key), O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return .free }
    defer { close(descriptor) }
    if flock(descriptor, LOCK_SH | LOCK_NB) == 0 {
      flock(descriptor, LOCK_UN)
      return .free
    }
    return .held(Self.readHolder(descriptor))
  }

  static func readHolder(_ descriptor: Int32) -> LeaseHolder? {
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = pread(descriptor, &buffer, buffer.count, 0)
    guard count > 0 else { return nil }
    return try? JSONDecoder().decode(LeaseHolder.self, from: Data(buffer[0..<count]))
  }

  /// Deletes the file of a lease nobody will take again (a finished job's). Only for keys that
  /// are never contended: a waiter on the deleted file and a newcomer on a new one would both win.
  func removeFile(of key: String) { unlink(path(key)) }

  public static func datasetKey(_ name: String) -> String { "dataset:" + name }
  public static func jobKey(_ id: String) -> String { "job:" + id }
}

public enum LeaseState: Sendable, Equatable {
  case free
  /// Held, by the holder its file names (nil while the holder is still writing its name).
  case held(LeaseHolder?)
}

/// A held lease; released when released or deinitialised (and by the kernel if the process dies).
public final class Lease: @unchecked Sendable {
  public let key: String
  private var descriptor: Int32

  init(key: String, descriptor: Int32) {
    self.key = key
    self.descriptor = descriptor
  }

  public func release() {
    guard descriptor >= 0 else { return }
    flock(descriptor, LOCK_UN)
    close(descriptor)
    descriptor = -1
  }

  deinit { release() }
}

public enum LeaseError: QtoolError, Equatable {
  case held(key: String, holder: LeaseHolder?)
  case cannotOpen(path: String, reason: String)

  public var category: ErrorCategory {
    switch self {
    case .held: return .conflict
    case .cannotOpen: return .cannotWrite
    }
  }

  public var code: String {
    switch self {
    case .held: return "lease_held"
    case .cannotOpen: return "lease_unavailable"
    }
  }

  public var message: String {
    switch self {
    case .held(let key, let holder) where key.hasPrefix("runner:"):
      let name = key.dropFirst("runner:".count)
      guard let holder else { return "strategy \(name) is already running in another process" }
      return
        "strategy \(name) is already running (pid \(holder.pid) on \(holder.host), \(holder.purpose), since \(UTCCalendar.format(holder.since, alwaysTime: true)))"
    case .held(let key, let holder):
      let what = key.hasPrefix("dataset:") ? "dataset \(key.dropFirst("dataset:".count))" : key
      guard let holder else { return "\(what) is being written by another process" }
      return "\(what) is being written by another process (pid \(holder.pid) on \(holder.host)"
        + (holder.jobID.map { ", job \($0)" } ?? "") + ", \(holder.purpose), since \(UTCCalendar.format(holder.since, alwaysTime: true)))"
    case .cannotOpen(let path, let reason): return "cannot open the lease file \(path): \(reason)"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .held(let key, let holder):
      var details: [String: JSONValue] = ["lease": .string(key)]
      if let holder {
        details["holder"] = .object([
          "pid": JSONValue(holder.pid), "host": .string(holder.host), "job_id": JSONValue(holder.jobID), "purpose": .string(holder.purpose),
          "since": .string(UTCCalendar.format(holder.since, alwaysTime: true)),
        ])
      }
      return details
    case .cannotOpen(let path, _): return ["path": .string(path)]
    }
  }

  public var hint: ErrorHint? {
    switch self {
    case .held(let key, _) where key.hasPrefix("runner:"):
      let name = key.dropFirst("runner:".count)
      return "see it with `qtool strategy status \(name)`, or stop it with `qtool strategy stop \(name)`"
    case .held: return "retry when it finishes, or wait for it with {wait}"
    case .cannotOpen: return nil
    }
  }
}
