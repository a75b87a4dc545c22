import QtoolArgs
import QtoolCore
import QtoolEngine

enum DbMigrateCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "migrate", abstract: "Apply pending schema migrations",
    discussion: "qtool migrates the store whenever it opens it; this command does only that and reports what it applied.",
    options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let report = try StoreOperations(try context.operations(migrate: false)).migrate()
    if context.json {
      try context.printJSON(report)
    } else if report.appliedNow.isEmpty {
      context.note("up to date (\(DisplayFormat.plural(report.allApplied.count, "migration")) applied)")
    } else {
      for name in report.appliedNow { context.note("applied \(name)") }
    }
    return .success
  }
}
