import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// What a process qtool starts (a detached runner, a command channel's program) inherits:
/// only the descriptors it is given. Descriptors this process inherited without close-on-exec
/// (its parent's pipes, say) would otherwise stay open in a child that outlives it, and whoever
/// waits for those pipes to close would wait for the child.
public enum ChildProcesses {
  private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

  /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np`, when the C library has it.
  private static let closeFrom: CloseFrom? = {
    // The process's own symbols and those of the libraries it loaded (RTLD_DEFAULT).
    guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
    return unsafeBitCast(symbol, to: CloseFrom.self)
  }()

  /// Adds to `actions` the closing of every descriptor from `first` on. Call it after the
  /// `adddup2` actions that set up the descriptors below `first`.
  public static func closeDescriptors(from first: Int32, in actions: inout posix_spawn_file_actions_t) {
    if let closeFrom {
      _ = closeFrom(&actions, first)
      return
    }
    // Without it: every descriptor open now, from /proc.
    let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
    for descriptor in open.sorted() where descriptor >= first {
      posix_spawn_file_actions_addclose(&actions, descriptor)
    }
  }
}

extension ChildProcesses {
  /// True once `pid` has exited: gone, or a zombie its parent has not reaped yet.
  static func hasExited(_ pid: Int32) -> Bool {
    if kill(pid, 0) != 0 { return errno == ESRCH }
    // /proc/PID/stat: "PID (name) S …"; the name may hold spaces and parentheses, so read after the last ')'.
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
    return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
  }
}
