import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainMetricsCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "metrics", abstract: "Per-epoch loss and accuracy of a model version",
    discussion:
      "Every epoch's figures as the library evaluated them on the train and valid rows; a version still training shows its epochs so far. The best epoch of each fold is marked *. --csv writes fold,epoch,loss,accuracy,mae,val_loss,val_accuracy,val_mae.",
    options: [CommonOptions.json, .flag("csv", help: "Print CSV instead of a table.")], positionals: [TrainArgument.model])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let (name, version) = try TrainArgument.nameAndVersion(context.arguments.string("model")!, context: context)
    let metrics = try TrainOperations(try context.operations()).metrics(name: name, version: version)
    if context.json {
      try context.printJSON(metrics)
      return .success
    }
    func cell(_ value: Double?) -> String { value.map { "\($0)" } ?? "" }
    if context.arguments.flag("csv") {
      context.stdout.line("fold,epoch,loss,accuracy,mae,val_loss,val_accuracy,val_mae")
      for e in metrics.epochs {
        let f = e.figures
        context.stdout.line(
          "\(e.fold),\(e.epoch + 1),\(f.trainLoss),\(cell(f.trainAccuracy)),\(cell(f.trainMAE)),\(cell(f.validLoss)),\(cell(f.validAccuracy)),\(cell(f.validMAE))"
        )
      }
      return .success
    }
    context.stdout.write(
      Table(
        columns: [
          .init("FOLD", .right), .init("EPOCH", .right), .init("LOSS", .right), .init("ACCURACY", .right), .init("VAL_LOSS", .right),
          .init("VAL_ACCURACY", .right),
        ],
        rows: metrics.epochs.map { e in
          let best = e.fold < metrics.bestEpochs.count && metrics.bestEpochs[e.fold] == e.epoch
          let f = e.figures
          return [
            "\(e.fold)", "\(e.epoch + 1)\(best ? "*" : "")", TrainArgument.figure(f.trainLoss), TrainArgument.figure(f.trainAccuracy ?? f.trainMAE),
            TrainArgument.figure(f.validLoss), TrainArgument.figure(f.validAccuracy ?? f.validMAE),
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
