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
    positionals: [PositionalSpec("file", .path(.file(extensions: ["db"])), help: "Where to write the copy (- for stdout).")],
    examples: [
      Example("qtool db backup /backups/qtool-$(date +%F).db", "A dated nightly backup"),
      Example("qtool db backup - | gzip > qtool.db.gz", "A compressed copy through a pipe"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let destination = context.arguments.string("file")!
    let operations = StoreOperations(try context.operations())
    var report = try FileArgument.writingThroughFile(destination, suffix: "db", context: context) {
      try operations.backup(to: $0, overwrite: context.arguments.flag("force"))
    }
    if FileArgument.isStandard(destination) { report.path = "-" }
    if context.json {
      try context.printJSON(report)
    } else {
      context.note("backed up \(Format.bytes(report.bytes)) to \(report.path == "-" ? "standard output" : report.path) in \(Format.duration(report.seconds))")
    }
    return .success
  }
}
