import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum BacktestRunCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "run", abstract: "Backtest a strategy on stored data and record the run",
    discussion: """
      Decides on each bar's close and fills at the next bar's open (or at the close with \
      execution.fill: close). Prints a summary with an equity sparkline and the run's id; the \
      run, its trades and equity curve are stored with a fingerprint (spec hash, data hash, \
      params, engine version).

      --assert makes it a CI gate: 'sharpe > 1 and max_drawdown > -0.25' is checked against the \
      metrics (qtool help metrics) and the command exits 2 naming each clause that failed.

      Data with gaps (judged against the dataset's calendar) is refused before the run starts; \
      --allow-gaps runs anyway.

      --from sets when trading starts; the indicators are computed on the stored bars before it \
      too, as many as the rules look back (the longest period, nested calls and x[n] offsets \
      added up: the summary and the JSON's warmup say how many and for what), so a run from a \
      date decides as a run over all the data would. Too little history before it is an error \
      (exit 65) naming the bars missing; --no-warmup starts the indicators cold at --from instead. \
      Metrics, equity and trades cover the traded bars only. Rules that look back further than \
      the data reaches are an error too. Window indicators (sma, highest, …) then equal the \
      full-history run's; recursive ones (ema, rsi, macd, atr) depend on every earlier bar and \
      come close to them, not to the last digit.

      model("name") in the rules reads a trained model's predictions (qtool train), out of \
      sample only: a walk-forward model's predictions come from the fold trained before each \
      bar; a split model's train and valid blocks are refused (exit 65) unless \
      --allow-in-sample, and the features warm up like the indicators.

      Undefined metrics (sharpe of a run that never trades, win_rate with 0 trades) are n/a, \
      null in JSON, and a --assert clause on one fails saying why (qtool help metrics).
      """,
    options: [
      .value("dataset", valueName: "dataset", help: "Run on this dataset instead of SYMBOL-TIMEFRAME.", completion: .dynamic("datasets")),
      BacktestOptions.from, DataOptions.to, BacktestOptions.noWarmup,
      .value("capital", .double, valueName: "amount", help: "Starting capital (default: execution.capital or 10000)."),
      .value("param", valueName: "name=value", help: "Override a param of the spec.", list: true),
      .repeatable("assert", valueName: "condition", help: "Fail (exit 2) unless the metrics satisfy this, e.g. 'sharpe > 1'."),
      .flag("allow-gaps", help: "Run even when the data has gaps."),
      BacktestOptions.allowInSample,
      .value("report", .path(.file(extensions: ["html"])), valueName: "file", help: "Write a self-contained HTML report (- for stdout; the summary then goes to stderr)."),
      .value("export", .path(.directory), valueName: "dir", help: "Write spec, settings, metrics, trades.csv and equity.csv to this directory."),
      .flag("force", short: "f", help: "Replace the files of --report and --export when they exist."),
      CommonOptions.json,
    ],
    positionals: [
      PositionalSpec(
        "strategy", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A spec file (- for stdin) or a registered strategy's name.",
        completion: .dynamic("strategies"))
    ],
    examples: [
      Example("qtool backtest run goog-sma.yaml --report goog.html", "Run a spec file and write a report"),
      Example("qtool backtest run sma-cross --param fast=20 --param slow=50 --from 2022-01-01", "Override params on a registered strategy"),
      Example(
        "qtool backtest run ci.yaml --assert 'trades >= 20 and sharpe > 1 and max_drawdown > -0.25'",
        "Fail a CI job when the strategy stops meeting its bar"),
      Example("qtool backtest run goog-sma --from 2010-01-04", "Trade from 2010 on, the indicators warmed up on the bars before"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let parameters = try BacktestOptions.parameters(arguments)
    let request = BacktestRequest(
      strategy: try StrategyArgument.reference(arguments.string("strategy")!, context: context), dataset: arguments.string("dataset"),
      from: DataOptions.milliseconds(arguments, "from"), to: DataOptions.milliseconds(arguments, "to"), capital: try DataOptions.capital(arguments),
      params: parameters, allowGaps: arguments.flag("allow-gaps"), assertions: arguments.strings("assert"), noWarmup: arguments.flag("no-warmup"),
      allowInSample: arguments.flag("allow-in-sample"))
    // Before the run is recorded: a report or export that cannot be written fails the command
    // without leaving a run behind it.
    if let path = arguments.string("report") { try ReportWriter.checkWritable(path, overwrite: arguments.flag("force")) }
    if let directory = arguments.string("export") { try ReportWriter.checkDirectory(directory) }
    let operations = try BacktestOperations(try context.operations())
    let report = try operations.run(request)
    do {
      if let directory = arguments.string("export") {
        try operations.export(id: report.id, directory: directory, overwrite: arguments.flag("force"))
        context.note("wrote \(directory)/{spec.yaml,settings.json,metrics.json,trades.csv,equity.csv,…}")
      }
      if let path = arguments.string("report") {
        try ReportWriter.write(
          HTMLReport.render(report, cancellation: Signals.cancellation, hooks: context.testHooks), to: path, overwrite: arguments.flag("force"),
          context: context)
      }
    } catch let cancelled as OperationCancelled {
      // Ctrl-C while its files are written: "nothing half-done was kept" includes the run.
      _ = try? operations.delete(id: report.id)
      throw cancelled
    }
    if context.json {
      try context.printJSON(report)
    } else {
      context.stdout.write(BacktestSummary.render(report, color: context.terminal.colorOnStdout))
    }
    for failure in report.failedAssertions {
      // Undefined metrics are explained by the reason rather than shown as n/a.
      let values = failure.values.sorted { $0.key < $1.key }.filter { !$0.value.isNaN }.map {
        // Four places, to show how near the bar a ratio came; a count is a whole number.
        "\($0.key) = \(Metrics.isCount($0.key) ? DisplayFormat.metric($0.key, $0.value) : Format.metric($0.value, places: 4))"
      }
      let explained = (values + [failure.reason].compactMap { $0 }).joined(separator: "; ")
      context.stderr.line("qtool: assertion failed: \(failure.clause)" + (explained.isEmpty ? "" : " (\(explained))"))
    }
    return report.failedAssertions.isEmpty ? .success : .assertionFailed
  }
}

/// Writes a file atomically (temporary name, then rename), refusing to replace one unless asked;
/// `-` writes it to stdout (and the summary goes to stderr).
enum ReportWriter {
  /// Refuses a report path that cannot be written (an existing file without --force, something
  /// that is not a regular file, a directory that is missing or read-only).
  static func checkWritable(_ path: String, overwrite: Bool) throws {
    guard !FileArgument.isStandard(path) else { return }
    try AtomicFile.checkReplaceable(path, overwrite: overwrite)
    try checkDirectory(URL(fileURLWithPath: path).deletingLastPathComponent().path, create: false)
  }

  /// Refuses a directory that is a file, or that cannot be created or written.
  static func checkDirectory(_ directory: String, create: Bool = true) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
      guard isDirectory.boolValue, FileManager.default.isWritableFile(atPath: directory) else {
        throw OperationError.cannotWrite("cannot write into \(directory): it is not a writable directory", path: directory)
      }
      return
    }
    // A directory to create: its nearest existing ancestor must be writable.
    var ancestor = URL(fileURLWithPath: directory).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: ancestor.path), ancestor.path != "/" { ancestor.deleteLastPathComponent() }
    guard create, FileManager.default.isWritableFile(atPath: ancestor.path) else {
      throw OperationError.cannotWrite("cannot write into \(directory): it does not exist or cannot be created", path: directory)
    }
  }

  static func write(_ text: String, to path: String, overwrite: Bool, context: CommandContext) throws {
    if try FileArgument.write(Data(text.utf8), to: path, overwrite: overwrite, context: context) { context.note("wrote report \(path)") }
  }
}
