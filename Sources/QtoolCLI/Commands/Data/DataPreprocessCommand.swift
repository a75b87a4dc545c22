import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataPreprocessCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "preprocess", abstract: "Derive a dataset by a pipeline of operations, with lineage",
    discussion: """
      Operations, applied in order (--op 'TYPE key=value …' or a --pipeline JSON file of \
      {"operations":[{"type":…}, …]}):

        fill_missing   method=forward_fill|backward_fill|interpolate|drop|zero_volume_candle columns=… holidays=false max_bars=2000000
        resample       timeframe=4h   (open first, high max, low min, close last, volume sum; UTC-aligned)
        normalize      method=min_max|zscore columns=…   (fitted parameters are stored)
        dedupe
        clip_outliers  method=zscore threshold=3 | method=percentile lower=0.01 upper=0.99 columns=…
        features       NAME=EXPRESSION; NAME=EXPRESSION …   (the rules language, qtool help rules)

      The result is a new dataset (origin derived) that records its parent, the operations as \
      applied and its content hash; `data info` shows them. Features become extra columns, one \
      per name, computed by the rules language strategies and models use (sma, rsi, macd, \
      arithmetic, conditions as 1/0), e.g. --op 'features rsi14=rsi(close, 14); trend=close / \
      sma(close, 50) - 1'. Look-ahead (forward_return, future) is refused there.

      fill_missing follows the dataset's calendar, as `data verify` judges gaps: on 24x7 it \
      fills every bar of the timeframe's grid; on weekdays never a Saturday or Sunday, and a run \
      of 1 or 2 weekdays without bars is a market holiday, left alone unless holidays=true (3 or \
      more are a gap and are filled). Intraday bars on weekdays are filled inside a day's session \
      and, for a missing weekday, at the times of day of the last day before it; never overnight. \
      It refuses to insert more than max_bars bars (2,000,000 unless set): a gap that large is \
      almost always a wrong timestamp, which `data verify` shows.
      """,
    options: [
      .repeatable("op", valueName: "operation", help: "An operation, e.g. 'resample timeframe=4h'."),
      .value("pipeline", .path(.file(extensions: ["json"])), valueName: "file", help: "A JSON pipeline file (- for stdin)."),
      .value("out", valueName: "dataset", help: "Name of the derived dataset.", required: true),
      CommonOptions.force,
      .flag("replace-original", help: "Replace --out even when it holds downloaded or imported bars (they cannot be derived again)."),
      DataOptions.wait, CommonOptions.json,
    ],
    positionals: [DataOptions.dataset],
    examples: [
      Example("qtool data preprocess BTCUSDT-1h --op 'resample timeframe=4h' --out BTCUSDT-4h", "Hourly bars to 4-hour bars"),
      Example(
        "qtool data preprocess GOOG-1d --op 'fill_missing method=forward_fill' --op 'features rsi14=rsi(close, 14); macd=macd(close)' --out goog-features",
        "Fill gaps, then add features"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    var operations: [PreprocessOperation] = try arguments.string("pipeline").map { path -> [PreprocessOperation] in
      guard FileArgument.isStandard(path) else { return try DataOperations.readPipeline(path: path) }
      // `-`: the pipeline from standard input.
      let file = try FileArgument.standardInputAsFile()
      defer { try? FileManager.default.removeItem(at: file.deletingLastPathComponent()) }
      return try DataOperations.readPipeline(path: file.path)
    } ?? []
    operations += try arguments.strings("op").map { try PreprocessOperation.parse($0) }
    let report = try DataOperations(try context.operations()).preprocess(
      PreprocessRequest(
        dataset: arguments.string("dataset")!, operations: operations, output: arguments.string("out")!, replace: arguments.flag("force"),
        replaceOriginal: arguments.flag("replace-original"), wait: arguments.flag("wait")))
    if context.json {
      try context.printJSON(report)
      return .success
    }
    for step in report.steps { context.stdout.line("\(step.type): \(step.summary)") }
    context.note("wrote \(report.dataset) (\(report.barsOut) \(report.timeframe) \(report.barsOut == 1 ? "bar" : "bars") from \(report.barsIn) of \(report.parent))")
    return .success
  }
}
