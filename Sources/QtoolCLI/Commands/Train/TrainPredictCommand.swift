import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainPredictCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "predict", abstract: "Predict a dataset's bars with a trained model",
    discussion: """
      One prediction per bar (the probability of a binary label, the value of a regression, \
      the class of a multi-class label); empty (null) where a feature is still warming up. \
      in_sample marks bars the model trained on. A walk-forward model predicts each bar with \
      the fold trained before it. --from warms the features up on the stored bars before it.
      """,
    options: [
      .value("dataset", valueName: "dataset", help: "The dataset to predict.", completion: .dynamic("datasets")),
      BacktestOptions.from, DataOptions.to, CommonOptions.json, .flag("csv", help: "Print CSV: timestamp,prediction,in_sample."),
    ],
    positionals: [TrainArgument.model],
    examples: [Example("qtool train predict goog-up --dataset GOOG-1d --from 2012-01-01 --csv", "Predictions since 2012")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let (name, version) = try TrainArgument.nameAndVersion(arguments.string("model")!, context: context)
    guard let dataset = arguments.string("dataset") else {
      throw UsageError("train predict needs --dataset, the bars to predict", commandPath: arguments.commandPath)
    }
    let report = try TrainOperations(try context.operations()).predict(
      PredictRequest(
        model: name, version: version, dataset: dataset, from: DataOptions.milliseconds(arguments, "from"),
        to: DataOptions.milliseconds(arguments, "to")))
    if context.json {
      try context.printJSON(report)
    } else if arguments.flag("csv") {
      context.stdout.line("timestamp,prediction,in_sample")
      for row in report.rows {
        context.stdout.line(
          "\(UTCCalendar.format(row.timestamp, alwaysTime: true)),\(row.prediction.isFinite ? "\(row.prediction)" : ""),\(row.inSample)")
      }
    } else {
      context.stdout.write(
        Table(
          columns: [.init("TIME"), .init("PREDICTION", .right), .init("IN_SAMPLE")],
          rows: report.rows.map {
            [UTCCalendar.format($0.timestamp), TrainArgument.figure($0.prediction.isFinite ? $0.prediction : nil), $0.inSample ? "yes" : ""]
          }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
