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
    if FileArgument.isStandard(path) {
      // The bundle to stdout: written to a temporary file first (the archive writer takes a path).
      let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-export-\(UUID().uuidString).tar.gz").path
      defer { try? FileManager.default.removeItem(atPath: temporary) }
      let run = try operations.export(id: context.arguments.string("id")!, to: temporary)
      let bundle = try Data(contentsOf: URL(fileURLWithPath: temporary))
      context.claimStdout().write(bundle)
      context.note("exported run \(run.id) to standard output")
      return .success
    }
    let run = try operations.export(id: context.arguments.string("id")!, to: path, overwrite: context.arguments.flag("force"))
    context.stdout.line("exported run \(run.id) to \(path)")
    return .success
  }
}
