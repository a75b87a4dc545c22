import Foundation
import QtoolArgs
import QtoolCore
import QtoolStore

/// Called by the completion scripts: prints stored names, one a line. Never creates a store.
enum CompleteCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "__complete", abstract: "Print names for shell completion",
    positionals: [PositionalSpec("topic", .choice(["datasets", "strategies", "models", "runs", "jobs"]), help: "What to list.")],
    isHidden: true)

  static func run(_ context: CommandContext) throws -> ExitStatus {
    guard let path = try? context.settings().databasePath, FileManager.default.fileExists(atPath: path),
      let database = try? context.database()
    else { return .success }
    let topic = context.arguments.string("topic")
    let names: [String]
    switch topic {
    case "datasets": names = (try? database.datasetNames()) ?? []
    case "models": names = (try? database.modelNames()) ?? []
    case "runs": names = (try? database.runIDs()) ?? []
    case "jobs": names = (try? database.jobIDs()) ?? []
    default: names = (try? database.strategyNames()) ?? []
    }
    for name in names { context.stdout.line(name) }
    return .success
  }
}
