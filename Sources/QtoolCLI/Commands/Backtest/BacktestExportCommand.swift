import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum BacktestExportCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "export", abstract: "Write a run as a .tar.gz bundle: spec, settings, data fingerprints, metrics, trades, equity",
    options: [CommonOptions.force],
    positionals: [
      PositionalSpec("id", help: "A run id (a unique prefix is enough)."),
      PositionalSpec("file", .path(.file(extensions: ["gz", "tgz"])), help: "The bundle to write, e.g. run.tar.gz."),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let path = context.arguments.string("file")!
    let run = try BacktestOperations(try context.operations()).export(
      id: context.arguments.string("id")!, to: path, overwrite: context.arguments.flag("force"))
    context.stdout.line("exported run \(run.id) to \(path)")
    return .success
  }
}
