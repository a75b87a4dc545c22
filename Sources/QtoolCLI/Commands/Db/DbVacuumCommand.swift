import QtoolArgs
import QtoolCore
import QtoolEngine

enum DbVacuumCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "vacuum", abstract: "Rebuild the store file to reclaim free space",
    discussion: "Needs as much free disk as the store's size while it runs; other qtool processes wait.",
    options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let report = try StoreOperations(try context.operations()).vacuum()
    if context.json {
      try context.printJSON(report)
    } else {
      context.note("vacuumed: \(Format.bytes(report.bytesBefore)) → \(Format.bytes(report.bytesAfter))")
    }
    return .success
  }
}
