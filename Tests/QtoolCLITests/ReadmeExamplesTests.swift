import Foundation
import QtoolTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Every ```sh example of README.md, run in order in a real bash with the built `qtool` on the
/// PATH, against bundled data: `Fixtures/` and `../shared/data`, the network sources pointed at
/// loopback servers serving those recordings, `qtool serve` examples as real servers on
/// 127.0.0.1 that curl talks to. A command that exits other than the README says fails the test
/// with its README line, so the README cannot drift from the tool.
///
/// What the test changes in a command, and why, is in `adapt` (paths outside the scratch
/// directory, fixed ports, placeholders such as RUN and JOB); `make demo` and `make test` are the
/// only examples not run (they build qtool and run this suite).
@Suite(.serialized, .timeLimit(.minutes(15)))
struct ReadmeExamplesTests {
  /// One command of the README: its line, and its text without a trailing comment.
  struct Command {
    var line: Int
    var text: String
    var comment: String
  }

  /// A ```sh block: its commands in order, or a whole script (a block starting with `#!`).
  struct Block {
    var line: Int
    var commands: [Command]
    var script: String?
  }

  // MARK: Reading the README

  static func blocks(_ readme: String) -> [Block] {
    var blocks: [Block] = []
    var current: [(Int, String)]?
    var start = 0
    for (index, raw) in readme.components(separatedBy: "\n").enumerated() {
      let number = index + 1
      if current == nil {
        if raw.hasPrefix("```sh") {
          current = []
          start = number
        }
        continue
      }
      if raw.hasPrefix("```") {
        blocks.append(block(current!, start: start))
        current = nil
        continue
      }
      current!.append((number, raw))
    }
    return blocks
  }

  /// ```yaml blocks: their first line and text.
  static func yamlBlocks(_ readme: String) -> [(Int, String)] {
    var blocks: [(Int, String)] = []
    var current: [String]?
    var start = 0
    for (index, line) in readme.components(separatedBy: "\n").enumerated() {
      if current == nil {
        if line.hasPrefix("```yaml") {
          current = []
          start = index + 2
        }
      } else if line.hasPrefix("```") {
        blocks.append((start, current!.joined(separator: "\n") + "\n"))
        current = nil
      } else {
        current!.append(line)
      }
    }
    return blocks
  }

  static func block(_ lines: [(Int, String)], start: Int) -> Block {
    if lines.first?.1.hasPrefix("#!") == true {
      return Block(line: lines[0].0, commands: [], script: lines.map(\.1).joined(separator: "\n") + "\n")
    }
    var logical: [(Int, String)] = []
    var pending: (Int, String)?
    for (number, text) in lines {
      if var open = pending {
        open.1 += " " + text.trimmingCharacters(in: .whitespaces)
        pending = open
      } else {
        pending = (number, text)
      }
      if pending!.1.hasSuffix("\\") {
        pending!.1.removeLast()
        while pending!.1.hasSuffix(" ") { pending!.1.removeLast() }
        continue
      }
      logical.append(pending!)
      pending = nil
    }
    if let pending { logical.append(pending) }
    var commands: [Command] = []
    for (number, text) in logical {
      let (code, comment) = splitComment(text)
      for part in splitCommands(code) where !part.isEmpty {
        commands.append(Command(line: number, text: part, comment: comment))
      }
    }
    return Block(line: start, commands: commands, script: nil)
  }

  /// The code of a line and its trailing comment (an unquoted `#` after a space, or at the start).
  static func splitComment(_ line: String) -> (String, String) {
    var quote: Character?
    var previous: Character = " "
    for index in line.indices {
      let character = line[index]
      if let open = quote {
        if character == open { quote = nil }
      } else if character == "'" || character == "\"" {
        quote = character
      } else if character == "#", previous == " " || previous == "\t" {
        return (line[..<index].trimmingCharacters(in: .whitespaces), String(line[line.index(after: index)...]).trimmingCharacters(in: .whitespaces))
      }
      previous = character
    }
    return (line.trimmingCharacters(in: .whitespaces), "")
  }

  /// Commands separated by an unquoted ` ; `.
  static func splitCommands(_ code: String) -> [String] {
    var parts: [String] = []
    var current = ""
    var quote: Character?
    for character in code {
      if let open = quote {
        if character == open { quote = nil }
      } else if character == "'" || character == "\"" {
        quote = character
      } else if character == ";", current.hasSuffix(" ") {
        parts.append(current.trimmingCharacters(in: .whitespaces))
        current = ""
        continue
      }
      current.append(character)
    }
    parts.append(current.trimmingCharacters(in: .whitespaces))
    return parts
  }

  @Test func theReadmeIsReadAsTheTestRunsIt() throws {
    let readme = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    let blocks = Self.blocks(readme)
    #expect(blocks.count >= 6)
    let commands = blocks.flatMap(\.commands)
    #expect(commands.contains { $0.text == "qtool help rules" }, "a line with ` ; ` is two commands")
    #expect(commands.contains { $0.text.hasPrefix("qtool backtest grid goog-sma --grid fast=5..50:1 --grid slow=20..200:5 --where 'fast < slow' --slurm") })
    #expect(
      commands.first { $0.text.hasPrefix("qtool signals notify add log") }?.text
        == "qtool signals notify add log --kind command --command 'cat >> signals.ndjson; echo >> signals.ndjson'",
      "a quoted ; is not a separator")
    #expect(blocks.contains { $0.script?.contains("case $? in") == true })
  }

  // MARK: Running it

  /// Where the examples run: a scratch home (QTOOL_HOME and the working directory), the bundled
  /// files the README names, `qtool` on the PATH, and the loopback sources.
  final class Session {
    var qtool: QtoolProcess
    let bin: URL
    let sources: [String: String]
    let password = "readme-example-password"
    var server: (process: Process, port: Int)?
    var background: [(command: Command, process: Process, output: URL)] = []
    var failures: [String] = []

    init(sources: [String: String]) throws {
      qtool = try QtoolProcess()
      bin = qtool.home.appendingPathComponent("bin")
      self.sources = sources
      try FileManager.default.createDirectory(at: bin, withIntermediateDirectories: true)
      try FileManager.default.createSymbolicLink(at: bin.appendingPathComponent("qtool"), withDestinationURL: QtoolProcess.binary)
      try prepareHome()
    }

    func prepareHome() throws {
      let home = qtool.home
      let fixtures = QtoolProcess.packageRoot.appendingPathComponent("Fixtures")
      try? FileManager.default.createSymbolicLink(at: home.appendingPathComponent("Fixtures"), withDestinationURL: fixtures)
      try? FileManager.default.copyItem(at: fixtures.appendingPathComponent("demo-GOOG-1d.csv"), to: home.appendingPathComponent("GOOG.csv"))
      try FileManager.default.createDirectory(at: home.appendingPathComponent("shared"), withIntermediateDirectories: true)
      try Self.ptyScript.write(to: home.appendingPathComponent("readme_pty.py"), atomically: true, encoding: .utf8)
      // A self-signed certificate for `serve --tls-cert cert.pem --tls-key key.pem`.
      _ = try shellRaw(
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 -subj /CN=127.0.0.1 >/dev/null 2>&1", timeout: 60)
    }

    var environment: [String: String] {
      var environment = qtool.environment(sources)
      environment["PATH"] = bin.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
      environment["HOME"] = qtool.home.path
      environment["QTOOL_SERVE_BCRYPT_COST"] = "4"
      environment["PAGER"] = "cat"
      environment["MANPAGER"] = "cat"
      return environment
    }

    struct Outcome {
      var status: Int32
      var stdout: String
      var stderr: String
    }

    /// Runs bash on `script` in the home; output to files (no pipe can fill), killed at `timeout`.
    func shellRaw(_ script: String, timeout: Double) throws -> Outcome {
      let id = UUID().uuidString
      let out = qtool.home.appendingPathComponent(".out-\(id)")
      let err = qtool.home.appendingPathComponent(".err-\(id)")
      FileManager.default.createFile(atPath: out.path, contents: nil)
      FileManager.default.createFile(atPath: err.path, contents: nil)
      defer {
        try? FileManager.default.removeItem(at: out)
        try? FileManager.default.removeItem(at: err)
      }
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/bin/bash")
      process.arguments = ["-c", script]
      process.environment = environment
      process.currentDirectoryURL = qtool.home
      process.standardInput = FileHandle.nullDevice
      process.standardOutput = try FileHandle(forWritingTo: out)
      process.standardError = try FileHandle(forWritingTo: err)
      try process.run()
      let deadline = Date().addingTimeInterval(timeout)
      while process.isRunning, Date() < deadline { usleep(20_000) }
      var timedOut = false
      if process.isRunning {
        timedOut = true
        kill(-process.processIdentifier, SIGKILL)
        process.terminate()
        process.waitUntilExit()
      }
      process.waitUntilExit()
      let stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
      var stderr = (try? String(contentsOf: err, encoding: .utf8)) ?? ""
      if timedOut { stderr += "\n(killed after \(Int(timeout)) s)" }
      return Outcome(status: timedOut ? -1 : process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    /// Runs one command as the README's shell would: variables it sets (`T=$(…)`) carry over.
    func shell(_ command: String, timeout: Double = 300) throws -> Outcome {
      let state = qtool.home.appendingPathComponent(".shell-state").path
      let script = """
        set -a; [ -f '\(state)' ] && . '\(state)'
        set -o pipefail
        \(command)
        __readme_status=$?
        { declare -p T 2>/dev/null | sed 's/^declare -[a-z-]* /export /'; } > '\(state).new' && mv '\(state).new' '\(state)'
        exit $__readme_status
        """
      return try shellRaw(script, timeout: timeout)
    }

    func record(_ command: Command, _ message: String) {
      failures.append("README.md:\(command.line): `\(command.text)` \(message)")
    }

    func ids(_ arguments: String) throws -> [String] {
      let listed = try shell("qtool \(arguments) --json")
      let regex = try NSRegularExpression(pattern: #""id"\s*:\s*"([^"]+)""#)
      let text = listed.stdout
      return regex.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range(at: 1), in: text).map { String(text[$0]) } }
    }

    /// A stored thing's id for a placeholder, or nil when the store has none.
    func placeholder(_ name: String) throws -> [String] {
      switch name {
      case "RUN": return try ids("backtest list")
      case "JOB": return try ids("jobs list")
      default: return []
      }
    }

    /// A Python pty for commands that ask for a password on the terminal: it answers each prompt.
    static let ptyScript = #"""
      import os, pty, sys
      pid, fd = pty.fork()
      if pid == 0:
          os.execvp("bash", ["bash", "-c", sys.argv[1]])
      buffer = b""
      def read():
          try:
              return os.read(fd, 4096)
          except OSError:
              return b""
      for prompt in (b"Password: ", b"Again: "):
          while prompt not in buffer:
              chunk = read()
              if not chunk:
                  break
              buffer += chunk
          if prompt in buffer:
              buffer = buffer.split(prompt, 1)[1]
              os.write(fd, (os.environ["README_PASSWORD"] + "\n").encode())
      output = buffer
      while True:
          chunk = read()
          if not chunk:
              break
          output += chunk
      sys.stdout.write(output.decode(errors="replace"))
      _, status = os.waitpid(pid, 0)
      sys.exit(os.waitstatus_to_exitcode(status))
      """#

    // MARK: Servers and background commands

    /// Starts `command` in the background (output to a file); the process.
    func startBackground(_ command: String) throws -> (Process, URL) {
      let output = qtool.home.appendingPathComponent(".bg-\(UUID().uuidString)")
      FileManager.default.createFile(atPath: output.path, contents: nil)
      let process = Process()
      process.executableURL = URL(fileURLWithPath: "/bin/bash")
      // Variables earlier commands set (`T=$(…)`) carry over, as in `shell`.
      let state = qtool.home.appendingPathComponent(".shell-state").path
      process.arguments = ["-c", "set -a; [ -f '\(state)' ] && . '\(state)'; set +a; exec \(command)"]
      process.environment = environment
      process.currentDirectoryURL = qtool.home
      process.standardInput = FileHandle.nullDevice
      let handle = try FileHandle(forWritingTo: output)
      process.standardOutput = handle
      process.standardError = handle
      try process.run()
      return (process, output)
    }

    func waitFor(_ text: String, in file: URL, while process: Process, seconds: Double) -> Bool {
      let deadline = Date().addingTimeInterval(seconds)
      while Date() < deadline {
        if ((try? String(contentsOf: file, encoding: .utf8)) ?? "").contains(text) { return true }
        if !process.isRunning { break }
        usleep(50_000)
      }
      return ((try? String(contentsOf: file, encoding: .utf8)) ?? "").contains(text)
    }

    /// SIGTERM, then the exit status (128 + signal when killed by one).
    func stop(_ process: Process) -> Int32 {
      if process.isRunning { kill(process.processIdentifier, SIGTERM) }
      let deadline = Date().addingTimeInterval(30)
      while process.isRunning, Date() < deadline { usleep(20_000) }
      if process.isRunning {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        return -1
      }
      return process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    }

    /// A `qtool serve` example: it must come up, answer /healthz, and drain on SIGTERM (exit 0).
    func serve(_ command: Command, _ text: String) throws {
      let portFile = qtool.home.appendingPathComponent("serve-\(UUID().uuidString).port").path
      var arguments = text
      if arguments.contains("--port-file") {
        arguments = arguments.replacingOccurrences(of: "/run/qtool.port", with: portFile)
      } else {
        arguments += " --port-file '\(portFile)'"
      }
      // Fixed ports may be taken on a shared machine: a free one instead.
      if let range = arguments.range(of: #"--port \d+"#, options: .regularExpression) {
        arguments.replaceSubrange(range, with: "--port 0")
      } else {
        arguments += " --port 0"
      }
      let (process, output) = try startBackground(arguments)
      guard waitFor("listening on", in: output, while: process, seconds: 60) else {
        _ = stop(process)
        record(command, "did not start listening: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        return
      }
      let port = Int(((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
      let scheme = text.contains("--tls-cert") ? "https" : "http"
      let health = try shell("curl -sk --max-time 20 -o /dev/null -w '%{http_code}' \(scheme)://127.0.0.1:\(port)/healthz")
      if health.stdout != "200" { record(command, "answered /healthz with \(health.stdout) \(health.stderr)") }
      let status = stop(process)
      if status != 0 { record(command, "exited \(status) on SIGTERM, not 0: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")") }
    }

    /// The server the curl examples talk to (`qtool serve` as the README starts it, on a free port).
    func ensureServer() throws -> Int {
      if let server, server.process.isRunning { return server.port }
      let portFile = qtool.home.appendingPathComponent("curl-serve.port").path
      let (process, output) = try startBackground("qtool serve --port 0 --port-file '\(portFile)'")
      _ = waitFor("listening on", in: output, while: process, seconds: 60)
      let port = Int(((try? String(contentsOfFile: portFile, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
      server = (process, port)
      return port
    }

    func stopAll() {
      for (command, process, output) in background {
        let status = stop(process)
        if ![0, 130, 143].contains(status) {
          record(command, "exited \(status) when stopped: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        }
      }
      background = []
      if let server { _ = stop(server.process) }
      server = nil
    }
  }

  /// The exit statuses a command may end with: 0, or those its README comment names.
  static func allowedStatuses(_ command: Command) -> Set<Int32> {
    var allowed: Set<Int32> = [0]
    let regex = try! NSRegularExpression(pattern: #"exit (\d+)"#)
    let comment = command.comment
    for match in regex.matches(in: comment, range: NSRange(comment.startIndex..., in: comment)) {
      if let range = Range(match.range(at: 1), in: comment), let status = Int32(comment[range]) { allowed.insert(status) }
    }
    // "beyond loopback only once a user or token exists (else exit 64)": a user exists by then.
    if command.text.hasPrefix("qtool serve") { allowed = [0] }
    return allowed
  }

  /// How the test runs a command, where it cannot run as written: paths outside the scratch
  /// directory, a Slurm submission (`--dry-run`: submitting needs a cluster, which
  /// SlurmGridTests starts), placeholders, and curl's host and password.
  static func adapt(_ text: String, previous: String?, session: Session) throws -> String {
    var text = text
    let home = session.qtool.home.path
    text = text.replacingOccurrences(of: "/etc/bash_completion.d/qtool", with: "\(home)/qtool.bash")
    text = text.replacingOccurrences(of: "/shared/grid1", with: "\(home)/shared/grid1")
    if text.contains(" … "), let previous, let axes = previous.range(of: #"--grid .*?(?= --slurm)"#, options: .regularExpression) {
      text = text.replacingOccurrences(of: " … ", with: " \(previous[axes]) ")
    }
    if text.contains("--slurm"), !text.contains("--dry-run") { text += " --dry-run" }
    for name in ["RUN", "JOB"] {
      guard text.range(of: "\\b\(name)\\b", options: .regularExpression) != nil else { continue }
      let ids = try session.placeholder(name)
      var index = 0
      while let range = text.range(of: "\\b\(name)\\b", options: .regularExpression) {
        text.replaceSubrange(range, with: ids.isEmpty ? name : ids[min(index, ids.count - 1)])
        index += 1
      }
    }
    if text.contains("curl ") || text.contains("--server http") {
      let port = try session.ensureServer()
      text = text.replacingOccurrences(of: "localhost:8080", with: "127.0.0.1:\(port)")
      text = text.replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:\(port)")
      text = text.replacingOccurrences(of: "\"password\":\"…\"", with: "\"password\":\"\(session.password)\"")
      // A stream stays open: read it for 5 s (curl then exits 28, which `run` expects).
      text = text.replacingOccurrences(of: "curl -s", with: "curl --max-time \(text.contains("/api/v1/stream/") ? 5 : 30) -s")
    }
    return text
  }

  static func run(_ command: Command, previous: String?, session: Session) throws {
    let text = try adapt(command.text, previous: previous, session: session)
    if text.hasPrefix("qtool serve") {
      try session.serve(command, text)
      return
    }
    // Commands that run until stopped: started here, stopped (SIGTERM) at the end of the block.
    if text.contains("/api/v1/stream/") {
      // The stream is read until curl's --max-time: its events must have arrived by then. (Not a
      // background command: this test process ignores SIGTERM for its servers, and curl inherits that.)
      let outcome = try session.shell(text)
      if outcome.status != 28 || !outcome.stdout.contains("\ndata: ") {
        session.record(command, "read no events in 5 s (\(outcome.status)); ran `\(text)`: \(outcome.stdout.prefix(500)) \(outcome.stderr.suffix(500))")
      }
      return
    }
    if text.hasPrefix("qtool signals tail -f") || text == "qtool strategy run btc-sma" {
      let (process, output) = try session.startBackground(text)
      usleep(1_500_000)
      if !process.isRunning {
        session.record(command, "ended at once (\(process.terminationStatus)): \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        return
      }
      session.background.append((command, process, output))
      return
    }
    var script = text
    if text.hasPrefix("qtool auth user add"), !text.contains("--password-stdin") {
      // It asks for the password on the terminal: a pty answers.
      script = "README_PASSWORD='\(session.password)' python3 readme_pty.py \(shellQuote(text))"
    }
    let outcome = try session.shell(script)
    let allowed = allowedStatuses(command)
    if !allowed.contains(outcome.status) {
      session.record(
        command,
        "exited \(outcome.status) (README: \(allowed.sorted().map(String.init).joined(separator: " or "))); ran `\(text)`; stderr: \(outcome.stderr.suffix(1500)); stdout: \(outcome.stdout.suffix(500))"
      )
    } else if text.contains("curl "), outcome.stdout.range(of: #""success"\s*:\s*false"#, options: .regularExpression) != nil {
      session.record(command, "answered an error: \(outcome.stdout.prefix(1500))")
    } else if text.hasPrefix("T=$(") {
      let token = try session.shell("printf %s \"$T\"").stdout
      if token.isEmpty || token == "null" { session.record(command, "set no token: \(outcome.stderr)") }
    }
  }

  static func shellQuote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }

  @Test func everyShellExampleInTheReadmeRuns() throws {
    let readme = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
    let binance = try LoopbackServer()
    defer { binance.stop() }
    binance.on("/api/v3/klines") { request, _ in .text(Self.klines(request)) }
    let bulk = try LoopbackServer(root: sharedData.appendingPathComponent("binance_vision"))
    defer { bulk.stop() }
    let yahoo = try LoopbackServer()
    defer { yahoo.stop() }
    let chart = try Data(contentsOf: sharedData.appendingPathComponent("yahoo/chart-AAPL-2020-08-31-to-2020-11-07.body.json"))
    yahoo.on("/v8/finance/chart/AAPL") { _, _ in LoopbackServer.Reply(body: chart) }
    let session = try Session(sources: [
      "QTOOL_SOURCE_BINANCE_URL": binance.baseURL, "QTOOL_SOURCE_BINANCE_BULK_URL": bulk.baseURL, "QTOOL_SOURCE_YAHOO_URL": yahoo.baseURL,
    ])
    defer {
      session.stopAll()
      session.qtool.cleanUp()
    }
    var ran = 0
    for block in Self.blocks(readme) {
      if let script = block.script {
        let outcome = try session.shell(script)
        if outcome.status != 0 {
          session.failures.append("README.md:\(block.line): the script exited \(outcome.status): \(outcome.stderr.suffix(1500))")
        }
        ran += 1
        continue
      }
      // A walkthrough that starts by importing the bundled data runs in a store of its own;
      // the blocks after it continue in the first one.
      let walkthrough = block.commands.first?.text.hasPrefix("qtool data import Fixtures/") == true
      let main = session.qtool
      if walkthrough {
        session.stopAll()
        session.qtool = try QtoolProcess()
        try session.prepareHome()
      }
      var previous: String?
      for command in block.commands {
        // `make demo` and `make test` build qtool and run this suite: not run from inside it.
        if command.text.hasPrefix("make ") { continue }
        try Self.run(command, previous: previous, session: session)
        previous = command.text
        ran += 1
      }
      for (command, process, output) in session.background {
        let status = session.stop(process)
        if ![0, 130, 143].contains(status) {
          session.record(command, "exited \(status) when stopped: \((try? String(contentsOf: output, encoding: .utf8)) ?? "")")
        }
      }
      session.background = []
      if walkthrough {
        session.stopAll()
        session.qtool.cleanUp()
        session.qtool = main
      }
    }
    // The strategy spec the README shows is one qtool accepts.
    for (line, spec) in Self.yamlBlocks(readme) where spec.contains("\nrules:") {
      let path = session.qtool.home.appendingPathComponent("readme-spec-\(line).yaml")
      try spec.write(to: path, atomically: true, encoding: .utf8)
      let validated = try session.shell("qtool strategy validate '\(path.path)'")
      if validated.status != 0 { session.failures.append("README.md:\(line): the spec does not validate: \(validated.stderr)") }
      ran += 1
    }
    // Runners started detached (strategy start) are stopped, whatever the examples did.
    _ = try session.shell("for name in $(qtool strategy list --json | sed -n 's/.*\"name\" *: *\"\\([^\"]*\\)\".*/\\1/p'); do qtool strategy stop \"$name\" --timeout 10s >/dev/null 2>&1; done")
    #expect(ran >= 60, "every example ran (\(ran))")
    for failure in session.failures { Issue.record(Comment(rawValue: failure)) }
  }

  /// Binance klines for the request's window, closed hours only, at most `limit`: a constant
  /// candle (the recorded one of the download tests) at every open time.
  static func klines(_ request: LoopbackServer.Request) -> String {
    let query = request.query
    let steps: [String: Int64] = ["1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": 3_600_000, "4h": 14_400_000, "1d": 86_400_000]
    let step = steps[query["interval"] ?? "1h"] ?? 3_600_000
    let now = Int64(Date().timeIntervalSince1970 * 1000)
    let start = Int64(query["startTime"] ?? "") ?? (now - 500 * step)
    let end = min(Int64(query["endTime"] ?? "") ?? now, now)
    let limit = Int(query["limit"] ?? "") ?? 500
    var opens: [Int64] = []
    var open = (start + step - 1) / step * step
    while open <= end, opens.count < limit {
      opens.append(open)
      open += step
    }
    return DownloadCommandTests.klines(opens, step: step)
  }
}
