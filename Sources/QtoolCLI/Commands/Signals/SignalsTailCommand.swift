import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

enum SignalsTailCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "tail", abstract: "Print the latest signals, and follow new ones with -f",
    discussion: """
      One line per signal, oldest first: bar time, strategy, symbol and timeframe, type, action, \
      reason, strength and level, price, and `late` or `suppressed` when so; with --json one \
      JSON object per line (NDJSON). -f keeps following: signals stored by any process appear \
      within half a second. A closed pipe (`| head`) ends it with status 0, as do Ctrl-C and SIGTERM.
      """,
    options: [
      .flag("follow", short: "f", help: "Keep printing new signals as they are stored."),
      .value("lines", short: "n", .int, valueName: "n", help: "How many of the latest signals to print first.", defaultValue: "10"),
    ] + SignalFilterOptions.options + [SignalFilterOptions.since, CommonOptions.json],
    examples: [
      Example("qtool signals tail -f", "Watch signals as runners emit them"),
      Example("qtool signals tail -f --json --type buy --min-strength 80 | jq .price", "Strong buys, for a script"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let count = arguments.int("lines"), count >= 0 else { throw UsageError("--lines: expected 0 or more", commandPath: arguments.commandPath) }
    var operations = LiveOperations(try context.operations())
    let filter = try SignalFilterOptions.filter(context, now: operations.context.clock.now())
    func show(_ signal: SignalInfo) throws {
      if context.json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        context.stdout.write(String(decoding: try encoder.encode(signal), as: UTF8.self) + "\n")
      } else {
        context.stdout.line(SignalLine.render(signal))
      }
    }
    let database = operations.context.database
    var last: Int64 = 0
    // The newest insertion number first, then the rows up to it: signals are numbered in commit
    // order (one writer at a time), so a row committed meanwhile comes in the next batch.
    if database.exists {
      last = try operations.lastSignalSeq()
      for signal in try operations.tail(filter, count: count, through: last) { try show(signal) }
    }
    guard arguments.flag("follow") else { return .success }
    // A store that does not exist yet: wait for it to be made.
    var watcher: StoreChangeWatcher?
    while watcher == nil {
      if Signals.cancellation.isCancelled || stdoutClosed() { return .success }
      if FileManager.default.fileExists(atPath: database.path) {
        if !database.exists {
          operations = LiveOperations(
            OperationContext(
              database: try QtoolDatabase.open(path: database.path, readOnly: true), clock: operations.context.clock,
              cancellation: operations.context.cancellation, logger: operations.context.logger))
        }
        watcher = try StoreChangeWatcher(path: database.path)
      } else {
        usleep(250_000)
      }
    }
    var changed = true
    while !Signals.cancellation.isCancelled {
      if changed {
        let newest = try operations.lastSignalSeq()
        while last < newest {
          let batch = try operations.signals(after: last, through: newest, filter, limit: 1000)
          for signal in batch { try show(signal) }
          last = batch.count == 1000 ? batch[batch.count - 1].seq : newest
        }
      }
      if stdoutClosed() { return .success }
      usleep(100_000)
      changed = try watcher!.changed()
    }
    return .success
  }

  /// True when whoever read stdout has gone (`| head` exited): a pipe's write end reports it.
  static func stdoutClosed() -> Bool {
    var descriptor = pollfd(fd: 1, events: 0, revents: 0)
    guard poll(&descriptor, 1, 0) > 0 else { return false }
    return descriptor.revents & Int16(POLLERR | POLLHUP) != 0
  }
}
