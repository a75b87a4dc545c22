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
      PositionalSpec("id", help: "A run id (a unique prefix is enough).", completion: .dynamic("runs")),
      PositionalSpec("file", .path(.file(extensions: ["gz", "tgz"])), help: "The bundle to write, e.g. run.tar.gz (- for stdout)."),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let path = context.arguments.string("file")!
    let operations = try BacktestOperations(try context.operations())
    let run = try FileArgument.writingThroughFile(path, suffix: "tar.gz", context: context) {
      try operations.export(id: context.arguments.string("id")!, to: $0, overwrite: context.arguments.flag("force"))
    }
    context.note("exported run \(run.id) to \(FileArgument.isStandard(path) ? "standard output" : path)")
    return .success
  }
}
