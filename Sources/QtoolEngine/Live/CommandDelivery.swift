import Foundation
import QtoolCore

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a command channel's program: `/bin/sh -c COMMAND` with the event's JSON on stdin and
/// `QTOOL_SIGNAL_ID`, `QTOOL_SIGNAL_TYPE`, `QTOOL_SIGNAL_SYMBOL`, `QTOOL_STRATEGY` in its
/// environment, in a process group of its own so that a timeout kills it and its children.
/// Exit 0 is delivered; another exit status or the timeout is tried again.
enum CommandDelivery {
  static func run(command: String, input: Data, signal: SignalInfo, timeoutMilliseconds: Int, clock: any WallClock) -> DeliveryResult {
    let started = clock.now()
    // stdin is a socket, not a pipe: a program that exits without reading it makes `send`
    // fail with EPIPE (MSG_NOSIGNAL) instead of raising SIGPIPE in this process.
    var stdinPipe: [Int32] = [-1, -1]
    var stderrPipe: [Int32] = [-1, -1]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &stdinPipe) == 0 else {
      return failure("cannot make a socket pair: \(String(cString: strerror(errno)))", started: started, clock: clock)
    }
    guard pipe(&stderrPipe) == 0 else {
      close(stdinPipe[0])
      close(stdinPipe[1])
      return failure("cannot make a pipe: \(String(cString: strerror(errno)))", started: started, clock: clock)
    }
    // The parent's ends stay out of the child; the child gets its ends as 0 and 2.
    _ = fcntl(stdinPipe[1], F_SETFD, FD_CLOEXEC)
    _ = fcntl(stderrPipe[0], F_SETFD, FD_CLOEXEC)

    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)
    ChildProcesses.closeDescriptors(from: 3, in: &actions)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
    posix_spawnattr_setpgroup(&attributes, 0)

    var environment = ProcessInfo.processInfo.environment
    environment["QTOOL_SIGNAL_ID"] = signal.id
    environment["QTOOL_SIGNAL_TYPE"] = signal.type
    environment["QTOOL_SIGNAL_SYMBOL"] = signal.symbol
    environment["QTOOL_STRATEGY"] = signal.strategy
    let arguments: [String] = ["/bin/sh", "-c", command]
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, "/bin/sh", &actions, &attributes, argv, envp)
    close(stdinPipe[0])
    close(stderrPipe[1])
    guard spawned == 0 else {
      close(stdinPipe[1])
      close(stderrPipe[0])
      return failure("cannot run /bin/sh: \(String(cString: strerror(spawned)))", started: started, clock: clock)
    }
    // Events are a few kilobytes, well under a socket's buffer: this does not wait on the
    // program. One that exits without reading is fine (EPIPE, no signal).
    input.withUnsafeBytes { bytes in
      var offset = 0
      while offset < bytes.count {
        let written = send(stdinPipe[1], bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
        if written < 0 {
          if errno == EINTR { continue }
          break
        }
        offset += written
      }
    }
    shutdown(stdinPipe[1], Int32(SHUT_WR))
    close(stdinPipe[1])
    _ = fcntl(stderrPipe[0], F_SETFL, fcntl(stderrPipe[0], F_GETFL) | O_NONBLOCK)
    var stderrTail = Data()
    func drain() {
      var buffer = [UInt8](repeating: 0, count: 4096)
      while true {
        let count = read(stderrPipe[0], &buffer, buffer.count)
        guard count > 0 else { return }
        stderrTail.append(buffer, count: count)
        if stderrTail.count > 2048 { stderrTail = stderrTail.suffix(1024) }
      }
    }
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(1, timeoutMilliseconds)) * 1_000_000
    var status: Int32 = 0
    var timedOut = false
    while true {
      let result = waitpid(pid, &status, WNOHANG)
      if result == pid { break }
      if result < 0, errno != EINTR { break }
      drain()
      if DispatchTime.now().uptimeNanoseconds >= deadline {
        // Ours and not yet reaped: the pid cannot have been reused.
        kill(-pid, SIGKILL)
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        timedOut = true
        break
      }
      usleep(2_000)
    }
    drain()
    close(stderrPipe[0])
    let latency = clock.now() - started
    let said = String(decoding: stderrTail.suffix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      .replacingOccurrences(of: "\n", with: " ")
    if timedOut {
      return DeliveryResult(
        outcome: .retry, status: nil, latencyMilliseconds: latency, error: "the command did not finish within \(timeoutMilliseconds) ms; killed")
    }
    let exited = (status & 0x7f) == 0
    let code = exited ? Int((status >> 8) & 0xff) : nil
    if code == 0 { return DeliveryResult(outcome: .delivered, status: 0, latencyMilliseconds: latency) }
    let what = code.map { "the command exited with status \($0)" } ?? "the command was killed by signal \(status & 0x7f)"
    return DeliveryResult(outcome: .retry, status: code, latencyMilliseconds: latency, error: what + (said.isEmpty ? "" : ": \(said)"))
  }

  private static func failure(_ message: String, started: Int64, clock: any WallClock) -> DeliveryResult {
    DeliveryResult(outcome: .dead, status: nil, latencyMilliseconds: clock.now() - started, error: message)
  }
}
