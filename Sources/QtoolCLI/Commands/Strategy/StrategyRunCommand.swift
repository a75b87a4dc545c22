import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

enum StrategyRunCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "run", abstract: "Run a strategy live on paper in the foreground",
    discussion: """
      Feeds the strategy's paper account every bar once it is final (its close has passed and it \
      is stored) and logs each signal and fill on stderr. Each decision is the one `backtest run` \
      makes on the same stored bars with the same spec and settings (with close_at_end off: the \
      account holds on): the backtest engine runs over the stored history at every new bar. \
      Signals, fills, positions, equity and the notification outbox of a bar are committed in one \
      transaction, so a restart (even after kill -9) continues the same account, catches up every \
      bar it missed, in order, and never stores a signal twice; signals processed more than \
      --late-after bars after their close are marked late and not notified.

      --feed download (the default) fetches the new bars itself at each close plus --settle, \
      asking again with doubling waits (--retries) while a bar is not there, then logging stale \
      data and catching it up on the next round; the spec's source must serve live bars (binance, \
      yahoo, stooq). --feed store processes the bars another process stores (a cron `data \
      download`, `data import`), noticed within half a second. --feed replay feeds the stored bars \
      one by one from the first (or --from) at --speed bars a second, and exits 0 when they run \
      out, the account kept.

      A registered name or a spec file (a changed file registers a new version); the runner is \
      known by the spec's name, and a second runner of it exits 75 naming the first. It stops at \
      the next bar boundary on SIGTERM, Ctrl-C or `qtool strategy stop`, and exits 0; --once \
      processes what is final and exits. An account opened with one version (params, capital, \
      --from) continues only with the same; --new-account opens a new one.

      Strategies may read trained models: model("name") predicts each bar with the latest ready \
      version when the runner starts (pinned for the run, as `backtest run` would load it), and \
      each signal records the versions it read (signals list --json: models). A split model \
      whose train or valid dates the account would trade on is refused (exit 65, \
      model_in_sample): start after them with --from (and --new-account), or train it \
      walk-forward.
      """,
    options: LiveOptions.run + [
      .flag("once", help: "Process the bars that are final now, then exit."),
      .value("log-file", .path(.namedFile(extensions: ["log"])), valueName: "file", help: "Where the log goes (recorded for status).", isHidden: true),
      CommonOptions.json,
    ],
    positionals: [LiveOptions.strategy],
    examples: [
      Example("qtool strategy run goog-sma --feed replay", "Replay the stored GOOG bars through the strategy, as fast as they evaluate"),
      Example("qtool strategy run btc-sma.yaml", "Download BTCUSDT bars as they close and trade them on paper"),
      Example("qtool strategy run btc-sma --feed store", "Trade the bars a cron `qtool data download` stores"),
      Example(
        "qtool strategy run goog-model --feed replay --from 2011-07-01",
        "Replay a strategy that reads model(\"goog-up\") after the model's valid dates"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let ready = ReadyChannel(environment: context.environment)
    do {
      let reference = try StrategyArgument.reference(context.arguments.string("strategy")!, context: context)
      let request = try LiveOptions.request(context, strategy: reference)
      let started = Mutex<LiveRunner.Started?>(nil)
      // Events arrive on the thread that called `run()`: this one.
      nonisolated(unsafe) let log = context
      let runner = LiveRunner(request, settings: try context.settings(), context: try context.operations()) { event in
        LiveOptions.log(event, context: log)
        if case .running = event, let value = started.withLock({ $0 }) { ready.send(value) }
      }
      let start = try runner.start()
      started.withLock { $0 = start }
      let summary = try runner.run()
      context.note(
        "qtool: \(summary.strategy) \(summary.status): \(DisplayFormat.plural(summary.barsProcessed, "bar")), \(DisplayFormat.plural(summary.signals, "signal")), \(DisplayFormat.plural(summary.fills, "fill")); equity \(Format.decimal(summary.equity, places: 2))"
          + (summary.lastBar.map { " after \($0)" } ?? "")
          + (summary.paused ? "; its paper account is paused (`qtool strategy resume \(summary.strategy)`)" : ""))
      if context.json { try context.printJSON(summary) }
      return .success
    } catch let error as any QtoolError {
      ready.fail(ErrorOutput.report(error))
      throw error
    } catch let error as UsageError {
      ready.fail(ErrorOutput.usageReport(error))
      throw error
    }
  }
}

/// The pipe `strategy start` reads to learn that its detached runner runs (a line
/// `{"ready": …}`) or why it did not (`{"error": …}`): the descriptor in `QTOOL_READY_FD`.
final class ReadyChannel: Sendable {
  private let descriptor = Mutex<Int32?>(nil)

  init(environment: [String: String]) {
    if let text = environment["QTOOL_READY_FD"], let fd = Int32(text), fd > 2, fcntl(fd, F_GETFD) != -1 {
      _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
      descriptor.withLock { $0 = fd }
    }
  }

  func send(_ started: LiveRunner.Started) {
    struct Ready: Encodable { var ready: LiveRunner.Started }
    write(Ready(ready: started))
  }

  func fail(_ report: ErrorReport) {
    struct Failed: Encodable { var error: ErrorReport }
    write(Failed(error: report))
  }

  private func write<T: Encodable>(_ value: T) {
    guard
      let fd = descriptor.withLock({ state -> Int32? in
        defer { state = nil }
        return state
      })
    else { return }
    var line = (try? JSONEncoder().encode(value)) ?? Data()
    line.append(10)
    line.withUnsafeBytes { _ = Glibc.write(fd, $0.baseAddress, $0.count) }
    close(fd)
  }
}
