import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

enum StrategyStartCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "start", abstract: "Start a strategy live on paper, detached",
    discussion: """
      Runs `qtool strategy run` in a session of its own (it outlives the terminal), its log in \
      $QTOOL_HOME/logs/NAME.log, waits until it reports running and prints its run id. A strategy \
      that is already running exits 75 naming its process; a runner that fails to start (an \
      unknown strategy, a source that cannot serve live bars, one that cannot be reached) exits \
      with its error. `qtool strategy status` shows it, `qtool strategy stop` stops it. A strategy \
      that reads model("name") runs with the model's latest ready version (see strategy run).
      """,
    options: LiveOptions.run + [
      .value("wait", valueName: "time", help: "How long to wait for it to report running, e.g. 30s.", defaultValue: "60s"),
      CommonOptions.json,
    ],
    positionals: [LiveOptions.strategy],
    examples: [
      Example("qtool strategy start btc-sma", "Trade BTCUSDT on paper in the background"),
      Example("qtool strategy start goog-sma --feed replay --speed 20", "A demo: replay the stored bars at 20 a second"),
    ])

  struct Output: Encodable {
    var runID: String
    var accountID: String
    var strategy: String
    var version: Int
    var continued: Bool
    var paused: Bool
    var pid: Int32
    var log: String
    enum CodingKeys: String, CodingKey { case runID = "run_id", accountID = "account_id", strategy, version, continued, paused, pid, log }
  }

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let settings = try context.settings()
    var reference = try StrategyArgument.reference(arguments.string("strategy")!, context: context)
    // Checked here, before a process is started for it.
    _ = try LiveOptions.request(context, strategy: reference)
    let wait = try LiveOptions.milliseconds(arguments.string("wait") ?? "60s", option: "wait", arguments)
    let operations = try context.operations()
    var name: String
    var pinned: String
    switch reference {
    case .registered(let registered, let version):
      name = registered
      _ = try operations.database.strategyVersions(name: registered)
      pinned = version.map { "\(registered)@\($0)" } ?? registered
    case .inline(let text, let origin):
      let loaded = try StrategyLoader.parse(text, origin: origin ?? "the spec")
      name = loaded.spec.name
      let path = origin.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
      let known = (try? operations.database.strategyVersions(name: name)) ?? []
      let created = try StrategyOperations(operations).register(name: name, path: path, text: text)
      if !known.contains(where: { $0.hash == loaded.hash }) {
        context.note("registered \(name) v\(created.version)\(path.map { " from \($0)" } ?? "")")
      }
      pinned = "\(name)@\(created.version)"
      reference = .registered(name: name, version: created.version)
    }
    if case .held(let holder) = operations.leases.state(of: "runner:" + name) {
      throw LeaseError.held(key: "runner:" + name, holder: holder)
    }
    let log = try RunnerLog.path(strategy: name, settings: settings)
    var child = ["strategy", "run", pinned, "--db", settings.databasePath, "--color", "never", "--log-file", log]
    if let config = arguments.string("config") { child += ["--config", config] }
    for option in ["feed", "speed", "settle", "retries", "late-after", "capital"] where arguments.isGiven(option) {
      if let value = arguments.string(option) ?? arguments.int(option).map(String.init) ?? arguments.double(option).map({ "\($0)" }) {
        child += ["--\(option)", value]
      }
    }
    if let from = DataOptions.milliseconds(arguments, "from") { child += ["--from", UTCCalendar.format(from, alwaysTime: true)] }
    for pair in arguments.strings("param") { child += ["--param", pair] }
    for flag in ["notify-late", "new-account"] where arguments.flag(flag) { child.append("--\(flag)") }
    for _ in 0..<arguments.count("verbose") { child.append("-v") }

    let started = try DetachedRunner.spawn(arguments: child, log: log, wait: wait)
    if context.json {
      try context.printJSON(
        Output(
          runID: started.ready.runID, accountID: started.ready.accountID, strategy: started.ready.strategy, version: started.ready.version,
          continued: started.ready.continued, paused: started.ready.paused, pid: started.pid, log: log))
    } else {
      context.stdout.line(started.ready.runID)
      context.note(
        "started \(name) v\(started.ready.version) (pid \(started.pid), \(started.ready.continued ? "continuing" : "new") paper account \(started.ready.accountID)); log: \(log)"
      )
      if started.ready.paused {
        context.stderr.line(
          "qtool: warning: paper account \(started.ready.accountID) is paused: no new entries and no notifications until "
            + "`qtool strategy resume \(name)`")
      }
    }
    return .success
  }
}

/// Starts `qtool ARGUMENTS` in a session of its own, stdin from /dev/null, stdout and stderr
/// appended to `log`, and waits for the line it writes on the ready pipe (descriptor 3): the
/// runner's start, or its error.
enum DetachedRunner {
  struct Spawned {
    var pid: Int32
    var ready: LiveRunner.Started
  }

  static func spawn(arguments: [String], log: String, wait milliseconds: Int64) throws -> Spawned {
    var pipe: [Int32] = [-1, -1]
    guard Glibc.pipe(&pipe) == 0 else { throw OperationError.cannotWrite("cannot make a pipe: \(String(cString: strerror(errno)))") }
    _ = fcntl(pipe[0], F_SETFD, FD_CLOEXEC)
    defer { close(pipe[0]) }
    let logFD: Int32
    do {
      logFD = try RunnerLog.open(log)
    } catch {
      close(pipe[1])
      throw error
    }
    defer { close(logFD) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, logFD, 1)
    posix_spawn_file_actions_adddup2(&actions, logFD, 2)
    posix_spawn_file_actions_adddup2(&actions, pipe[1], 3)
    ChildProcesses.closeDescriptors(from: 4, in: &actions)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    // POSIX_SPAWN_SETSID (glibc ≥ 2.26): a session of its own, so the terminal's hang-up and
    // Ctrl-C do not reach it.
    posix_spawnattr_setflags(&attributes, Int16(0x80))
    var environment = ProcessInfo.processInfo.environment
    environment["QTOOL_READY_FD"] = "3"
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      argv.forEach { free($0) }
      envp.forEach { free($0) }
    }
    var pid = pid_t()
    let spawned = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
    close(pipe[1])
    guard spawned == 0 else {
      throw OperationError(.failure, code: "spawn_failed", "cannot start \(executable): \(String(cString: strerror(spawned)))")
    }
    // Read the one line; the pipe closes when the runner has written it or has died.
    var received = Data()
    let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(max(0, milliseconds)) * 1_000_000
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      var descriptor = pollfd(fd: pipe[0], events: Int16(POLLIN), revents: 0)
      let left = Int64(deadline) - Int64(DispatchTime.now().uptimeNanoseconds)
      guard left > 0 else {
        throw OperationError(
          .temporary, code: "start_timeout",
          "the runner (pid \(pid)) has not reported running within \(Format.duration(Double(milliseconds) / 1000)); it may still be starting",
          details: ["pid": JSONValue(Int(pid)), "log": .string(log)],
          hint: ErrorHint("see `qtool strategy status` and its log \(log); wait longer with {wait}"))
      }
      let ready = poll(&descriptor, 1, Int32(min(left / 1_000_000 + 1, 200)))
      if ready < 0, errno == EINTR { continue }
      guard ready > 0 else { continue }
      let count = read(pipe[0], &buffer, buffer.count)
      if count > 0 {
        received.append(buffer, count: count)
        if received.contains(10) { break }
        continue
      }
      break
    }
    if let line = received.split(separator: 10).first,
      let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any]
    {
      if object["ready"] != nil, let started = try? JSONDecoder().decode([String: LiveRunner.Started].self, from: Data(line))["ready"] {
        return Spawned(pid: pid, ready: started)
      }
      if object["error"] != nil, let report = try? JSONDecoder().decode([String: ErrorReport].self, from: Data(line))["error"] {
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        throw ReportedError(report)
      }
    }
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let exit = (status & 0x7f) == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
    throw OperationError(
      .failure, code: "runner_failed", "the runner (pid \(pid)) \(exit) before it reported running", details: ["log": .string(log)],
      hint: ErrorHint("see its log: \(log)"))
  }
}
