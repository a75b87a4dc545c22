import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataSnapshotCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "snapshot", abstract: "Write datasets to a read-only store file for cluster jobs",
    discussion: """
      The snapshot is a SQLite file (mode 0444) holding just these datasets' bars and their \
      content hashes, and a hash over all of them. Shards of a grid open it with SQLite's \
      immutable=1 read-only URI (backtest grid --snapshot FILE), so a hundred tasks can read one \
      file on NFS or Lustre at once; given --snapshot-hash, a shard refuses a snapshot with \
      another hash. Derived datasets are not snapshotted: snapshot the dataset they came from.
      """,
    options: [
      .value("output", short: "o", .path(.file(extensions: ["db", "sqlite"])), valueName: "file", help: "The snapshot file to write (atomically; - for stdout)."),
      CommonOptions.force, CommonOptions.json,
    ],
    positionals: [PositionalSpec("datasets", arity: .variadic, help: "The datasets to include.")],
    examples: [Example("qtool data snapshot GOOG-1d -o /shared/goog.snapshot.db", "A snapshot for a Slurm grid")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let output = arguments.string("output") else {
      throw UsageError("give the snapshot file with --output FILE", commandPath: arguments.commandPath)
    }
    let operations = SnapshotOperations(try context.operations())
    var report = try FileArgument.writingThroughFile(output, suffix: "db", context: context) {
      try operations.snapshot(datasets: arguments.strings("datasets"), to: $0, overwrite: arguments.flag("force"))
    }
    if FileArgument.isStandard(output) { report.path = "-" }
    if context.json {
      try context.printJSON(report)
    } else {
      for entry in report.datasets { context.stdout.line("\(entry.dataset)  \(DisplayFormat.plural(entry.bars, "bar"))  \(entry.contentHash.prefix(16))") }
      context.stdout.line("snapshot \(report.path): hash \(report.hash), \(report.bytes) bytes")
    }
    return .success
  }
}
