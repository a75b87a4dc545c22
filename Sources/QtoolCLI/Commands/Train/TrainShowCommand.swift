import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Show a model version: spec, folds, best epoch, test metrics",
    options: [CommonOptions.json], positionals: [TrainArgument.model],
    examples: [Example("qtool train show goog-up@2", "Version 2 of goog-up")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let (name, version) = try TrainArgument.nameAndVersion(context.arguments.string("model")!, context: context)
    let detail = try TrainOperations(try context.operations()).show(name: name, version: version)
    if context.json {
      try context.printJSON(detail)
      return .success
    }
    let out = context.stdout
    let v = detail.version
    out.line("\(detail.name) v\(v.version) (\(v.status))  created \(v.created)" + (v.jobID.map { "  job \($0)" } ?? ""))
    out.line("versions: \(detail.versions.map { "v\($0)" }.joined(separator: ", "))" + (detail.path.map { "  file: \($0)" } ?? ""))
    if let report = v.report {
      out.line("family \(report.family), label \(report.labelKind), \(report.plan); features: \(report.features.joined(separator: ", "))")
      out.line("data \(report.datasets.joined(separator: ", ")) sha256:\(report.dataHash.prefix(16)) · \(report.libraryVersion)")
      out.write(
        Table(
          columns: [
            .init("FOLD", .right), .init("TRAIN"), .init("VALID"), .init("TEST"), .init("ROWS", .right), .init("BEST", .right),
            .init("VAL_LOSS", .right), .init("TEST_LOSS", .right), .init("TEST_ACC", .right),
          ],
          rows: report.folds.map { f in
            [
              "\(f.fold)", f.train, f.valid ?? "-", f.test ?? "-", "\(f.rows.train)/\(f.rows.valid)/\(f.rows.test)", "\(f.bestEpoch)/\(f.epochs)",
              TrainArgument.figure(f.best["val_loss"]), TrainArgument.figure(f.test_["loss"]), TrainArgument.figure(f.test_["accuracy"]),
            ]
          }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
