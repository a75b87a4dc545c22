import QtoolArgs
import QtoolCore
import QtoolEngine

enum JobsCancelCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "cancel", abstract: "Stop a running job, from any terminal",
    discussion: """
      Asks the process running the job to stop; it stops at its next block boundary (within a \
      second), rolls back what it had not committed and records the job as cancelled. Waits for \
      that, up to --timeout, unless --no-wait. Exits 0 once the job has stopped (or had already \
      finished), 75 when it is still running at the timeout.
      """,
    options: [
      .flag("no-wait", help: "Ask and return at once."),
      .value("timeout", .duration, valueName: "time", help: "How long to wait for the job to stop.", defaultValue: "10s"),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("id", help: "A job id (or a unique prefix of one).", completion: .dynamic("jobs"))],
    examples: [Example("qtool jobs cancel j3f9c", "Stop a grid started in another terminal")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let operations = JobOperations(try context.operations())
    var job = try operations.cancel(id: context.arguments.string("id")!)
    if !context.arguments.flag("no-wait"), !job.status.isFinished {
      job = try operations.wait(id: job.id, timeoutMilliseconds: Int64(context.arguments.duration("timeout") ?? 10) * 1000)
    }
    if context.json {
      try context.printJSON(job)
    } else if job.status.isFinished {
      context.note("\(job.id): \(job.status.rawValue)")
    } else {
      context.note("\(job.id): cancel requested; still \(job.status.rawValue)")
    }
    return job.status.isFinished || context.arguments.flag("no-wait") ? .success : .temporaryFailure
  }
}
