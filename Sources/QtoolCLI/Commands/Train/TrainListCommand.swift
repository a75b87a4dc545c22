import QtoolArgs
import QtoolCore
import QtoolEngine

enum TrainListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List models and their latest trained version", aliases: ["ls"], options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let models = try TrainOperations(try context.operations()).list()
    if context.json {
      try context.printJSON(models)
    } else if models.isEmpty {
      context.note("no models yet; create one with `qtool train new NAME --dataset GOOG-1d`")
    } else {
      context.stdout.write(
        Table(
          columns: [
            .init("NAME"), .init("VERSION", .right), .init("FAMILY"), .init("LABEL"), .init("BEST", .right), .init("VAL_LOSS", .right),
            .init("TEST", .right), .init("UPDATED"),
          ],
          rows: models.map { m in
            [
              m.name, m.latest.map { "v\($0)" } ?? (m.training != nil ? "training" : "-"), m.family ?? "-", m.labelKind ?? "-",
              m.bestEpoch.map(String.init) ?? "-", TrainArgument.figure(m.best?["val_loss"]),
              TrainArgument.figure(m.test?["accuracy"] ?? m.test?["loss"]), m.updated,
            ]
          }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
