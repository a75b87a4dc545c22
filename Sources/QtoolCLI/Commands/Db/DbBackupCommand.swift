import QtoolArgs
import QtoolCore
import QtoolEngine

enum DbBackupCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "backup", abstract: "Write a consistent copy of the store to a file",
    discussion: """
      Uses SQLite's online backup API, so it is safe while another qtool process writes: the copy \
      is a snapshot of one moment. The copy is written under a temporary name and renamed into \
      place when complete.
      """,
    options: [CommonOptions.force, CommonOptions.json],
    positionals: [PositionalSpec("file", .path(.file(extensions: ["db"])), help: "Where to write the copy.")],
    examples: [Example("qtool db backup /backups/qtool-$(date +%F).db", "A dated nightly backup")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let destination = context.arguments.string("file")!
    let report = try StoreOperations(try context.operations()).backup(to: destination, overwrite: context.arguments.flag("force"))
    if context.json {
      try context.printJSON(report)
    } else {
      context.stdout.line("backed up \(Format.bytes(report.bytes)) to \(report.path) in \(Format.duration(report.seconds))")
    }
    return .success
  }
}
