import QtoolArgs
import QtoolCore
import QtoolEngine

enum JobsWaitCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "wait", abstract: "Wait for a job to finish; exit with its outcome",
    discussion: """
      Exits 0 when the job completed, with the job's own exit code when it failed (e.g. 65 for \
      bad data, 75 for a temporary failure), 130 when it was cancelled, 1 when its process died, \
      and 75 when --timeout passed first.
      """,
    options: [
      .value("timeout", .duration, valueName: "time", help: "Give up after this long (default: wait as long as it takes)."),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", help: "A job id (or a unique prefix of one).", completion: .dynamic("jobs"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let timeout = context.arguments.duration("timeout").map { Int64($0) * 1000 }
    let job = try JobOperations(try context.operations()).wait(id: context.arguments.string("id")!, timeoutMilliseconds: timeout)
    if context.json {
      try context.printJSON(job)
    } else {
      JobsShowCommand.render(job, context: context)
    }
    return job.status.exitStatus(error: job.error)
  }
}
