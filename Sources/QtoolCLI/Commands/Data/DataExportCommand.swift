import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum DataExportCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "export", abstract: "Write a dataset's bars as CSV or JSON lines",
    discussion: "Timestamps are written as ISO-8601 UTC; numbers round-trip exactly. Without --output the bars go to stdout.",
    options: [
      .value("format", .choice(ExportFormat.allCases.map(\.rawValue)), valueName: "format", help: "Output format.", defaultValue: "csv"),
      DataOptions.from, DataOptions.to,
      .value(
        "output", short: "o", .path(.file(extensions: ["csv", "jsonl"])), valueName: "file",
        help: "Write to this file (atomically) instead of stdout."),
      CommonOptions.force,
    ],
    positionals: [DataOptions.dataset],
    examples: [Example("qtool data export GOOG-1d --from 2010-01-01 -o goog.csv", "A slice to a file")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let operations = try DataOperations(try context.operations())
    let format = ExportFormat(rawValue: arguments.string("format")!)!
    let name = arguments.string("dataset")!
    let from = DataOptions.milliseconds(arguments, "from")
    let to = DataOptions.milliseconds(arguments, "to")
    guard let output = arguments.string("output") else {
      _ = try operations.export(name: name, format: format, from: from, to: to) { context.stdout.write($0) }
      return .success
    }
    if output == "-" {
      _ = try operations.export(name: name, format: format, from: from, to: to) { context.stdout.write($0) }
      return .success
    }
    let file = try AtomicFile(path: output, overwrite: arguments.flag("force"))
    let count = try operations.export(name: name, format: format, from: from, to: to) { try file.write($0) }
    try file.commit()
    context.note("wrote \(DisplayFormat.plural(count, "bar")) to \(output)")
    return .success
  }
}
