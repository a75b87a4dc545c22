import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainRunCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "run", abstract: "Train a model and store it as a new version",
    discussion: """
      Builds the features and the label on every bar, drops rows with a missing feature \
      (warm-up) or label (the last bars), cuts the rows by the spec's split (or walk_forward \
      windows with --walk-forward) and purges `purge` bars before each boundary so no training \
      label reads a later block. The test block is never seen by training or early stopping.

      One boosting round (gbt) or Newton step (logistic) is one epoch: loss, accuracy, val_loss \
      and val_accuracy (rmse and mae for regression, from the library's own evaluation) show \
      live and are stored per epoch (qtool train metrics). With a valid block the best epoch \
      (lowest val_loss) is the model's; early_stopping: N stops after N epochs without a better \
      one. A run is a job: Ctrl-C or `qtool jobs cancel` stops it between epochs and leaves no \
      version behind. The same data, spec and seed give the same model bit for bit.
      """,
    options: [
      .value("param", valueName: "name=value", help: "Override a param of the spec.", list: true),
      .flag("walk-forward", help: "Train on the spec's walk_forward windows instead of its split."),
      CommonOptions.json,
    ],
    positionals: [
      PositionalSpec("model", .path(.file(extensions: ["yaml", "yml", "json"])), help: "A model spec file or a registered model's name.")
    ],
    examples: [
      Example("qtool train run goog-up.yaml", "Train the spec's split and store version 1"),
      Example("qtool train run goog-up --walk-forward --param h=10", "Walk-forward folds with another horizon"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let request = TrainRequest(
      model: try TrainArgument.reference(arguments.string("model")!, context: context), params: try BacktestOptions.parameters(arguments),
      walkForward: arguments.flag("walk-forward"))
    let report = try TrainOperations(try context.operations()).run(request)
    if context.json {
      try context.printJSON(report)
      return .success
    }
    let out = context.stdout
    out.line("trained \(report.model) v\(report.version) (\(report.family), \(report.labelKind), \(report.plan), job \(report.jobID ?? "-"))")
    out.line("  features  \(report.features.joined(separator: ", "))")
    out.line("  rows      train \(report.rows.train), valid \(report.rows.valid), test \(report.rows.test), purged \(report.rows.purged)")
    if report.folds.count > 1 { out.line("  folds     \(report.folds.count)") }
    out.line("  epochs    \(report.epochs), best \(report.bestEpoch)" + (report.folds.last?.stoppedEarly == true ? " (stopped early)" : ""))
    let best = report.best.keys.sorted().map { "\($0) \(TrainArgument.figure(report.best[$0]))" }.joined(separator: "  ")
    out.line("  best      \(best)")
    if !report.test.isEmpty {
      out.line(
        "  test      "
          + report.test.keys.sorted().filter { $0 != "rows" }.map { "\($0) \(TrainArgument.figure(report.test[$0]))" }.joined(separator: "  "))
    }
    out.line("  data      \(report.datasets.joined(separator: ", ")) sha256:\(report.dataHash.prefix(16)) · \(report.libraryVersion)")
    for message in report.messages { context.note("\(report.libraryVersion): \(message)") }
    return .success
  }
}
