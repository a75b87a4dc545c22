import QtoolArgs
import QtoolCore
import QtoolEngine

enum VersionCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "version", abstract: "Print qtool's version",
    discussion: "With --json, also the git commit, build date and the versions of the linked SQLite, libcurl and libarchive.",
    options: [CommonOptions.json],
    examples: [Example("qtool version --json", "Full build information for a bug report")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    if context.json {
      try context.printJSON(VersionInfo.current)
    } else {
      context.stdout.line("qtool \(VersionInfo.version)")
    }
    return .success
  }
}
