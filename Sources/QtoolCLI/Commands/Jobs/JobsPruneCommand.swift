import QtoolArgs
import QtoolCore
import QtoolEngine

enum JobsPruneCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "prune", abstract: "Delete finished jobs older than an age",
    options: [
      .value("older-than", .duration, valueName: "age", help: "Delete finished jobs that ended before this age.", defaultValue: "30d"),
      CommonOptions.json,
    ],
    examples: [Example("qtool jobs prune --older-than 90d", "Keep three months of job history")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let age = Int64(context.arguments.duration("older-than") ?? 30 * 86_400) * 1000
    let deleted = try JobOperations(try context.operations()).prune(olderThan: age)
    if context.json {
      struct Pruned: Encodable { var deleted: Int }
      try context.printJSON(Pruned(deleted: deleted))
    } else {
      context.note("deleted \(deleted) finished job\(deleted == 1 ? "" : "s")")
    }
    return .success
  }
}
