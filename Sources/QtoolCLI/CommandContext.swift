import Foundation
import Logging
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

/// What a leaf command receives: its parsed arguments, the resolved settings, output streams,
/// and the store, opened on first use (so `--help`, `version` and `completions` never touch it).
final class CommandContext {
  let arguments: ParsedArguments
  let environment: [String: String]
  /// Where results go: standard output, until a file argument `-` takes it (claimStdout).
  private(set) var stdout = OutputStream.standardOutput
  let stderr = OutputStream.standardError
  let terminal: Terminal
  let logger: Logger
  let quiet: Bool
  private var openedDatabase: QtoolDatabase?
  private var resolvedSettings: Settings?
  private lazy var bar = ProgressBar(stream: stderr, enabled: terminal.animateStderr)

  /// The command only reads the store.
  let readsOnly: Bool

  init(arguments: ParsedArguments, environment: [String: String], readsOnly: Bool = false) {
    self.arguments = arguments
    self.readsOnly = readsOnly
    self.environment = environment
    quiet = arguments.flag("quiet")
    terminal = Terminal(color: arguments.string("color") ?? "auto", quiet: quiet, environment: environment)
    var logger = Logger(label: "qtool")
    let verbosity = arguments.count("verbose")
    logger.logLevel = quiet ? .error : verbosity >= 2 ? .debug : verbosity == 1 ? .info : .warning
    self.logger = logger
  }

  var json: Bool { arguments.flag("json") }

  /// Settings by precedence flag > env > file > default.
  func settings() throws -> Settings {
    if let resolvedSettings { return resolvedSettings }
    var flags: [String: (value: String, origin: SettingOrigin)] = [:]
    for key in ["db", "home"] {
      if let value = arguments.string(key), let origin = arguments.origin(key) {
        flags[key] = (value, origin == .environment ? .env : .flag)
      }
    }
    let settings = try Settings.resolve(
      flags: flags, configFile: arguments.string("config"), environment: environment)
    resolvedSettings = settings
    return settings
  }

  /// The store, opened once per process; migrations run on open unless `migrate` is false.
  func database(migrate: Bool = true) throws -> QtoolDatabase {
    if let openedDatabase { return openedDatabase }
    let path = try settings().databasePath
    logger.debug("opening store", metadata: ["path": "\(path)"])
    let database = try QtoolDatabase.open(path: path, migrate: migrate, readOnly: readsOnly)
    openedDatabase = database
    return database
  }

  /// Called once the command has returned: leaves a store this process wrote complete in its file.
  func finish() {
    openedDatabase?.checkpoint()
  }

  /// What an engine operation needs: the store, the system clock, the token Ctrl-C and SIGTERM
  /// cancel, the progress bar, the logger, and the test pause (`QTOOL_TEST_PAUSE=name:index`).
  func operations(migrate: Bool = true) throws -> OperationContext {
    OperationContext(
      database: try database(migrate: migrate), clock: SystemClock(), cancellation: Signals.cancellation, progress: bar, logger: logger,
      hooks: testHooks)
  }

  /// The test pause (`QTOOL_TEST_PAUSE=name:index`), announced on stderr.
  var testHooks: OperationHooks {
    let stderr = self.stderr
    return OperationHooks(environment: environment["QTOOL_TEST_PAUSE"]) { stderr.line("qtool-test: \($0)") }
  }

  /// Clears a half-drawn progress line before an error is printed.
  func clearProgress() { bar.clear() }

  /// Prints `value` as pretty, key-sorted JSON on stdout.
  func printJSON<T: Encodable>(_ value: T) throws {
    stdout.write(try JSONOutput.encode(value) + "\n")
  }

  /// Standard output for a file written to `-` (a report, a bundle); the command's other
  /// results go to stderr from then on (nowhere with --quiet), so stdout holds that file alone.
  func claimStdout() -> OutputStream {
    let taken = OutputStream.standardOutput
    stdout = quiet ? OutputStream(fd: open("/dev/null", O_WRONLY)) : stderr
    return taken
  }

  /// A remark for people (not for scripts): stderr, suppressed by --quiet.
  func note(_ text: String) {
    if !quiet { stderr.line(text) }
  }
}

enum JSONOutput {
  static func encode<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}
