import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum JobsListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List jobs, newest first",
    discussion: """
      Every long operation — download, import, preprocess, backtest run, grid, walk-forward — is \
      a job from the moment it starts: its request, status, progress, the process running it and, \
      at the end, its result or its error. A job whose process died (kill -9, a crash, a reboot) \
      shows as interrupted: its lease was freed by the kernel.
      """,
    aliases: ["ls"],
    options: [
      .value("since", .duration, valueName: "age", help: "Only jobs started in the last AGE, e.g. 24h or 7d."),
      .value("status", .choice(JobStatus.allCases.map(\.rawValue)), valueName: "status", help: "Only jobs with this status.", list: true),
      .value("kind", .choice(JobKind.allCases.map(\.rawValue)), valueName: "kind", help: "Only jobs of this kind.", list: true),
      .value("limit", .int, valueName: "n", help: "At most this many.", defaultValue: "50"),
      CommonOptions.json,
    ],
    examples: [
      Example("qtool jobs list --since 24h --status failed", "What failed overnight"),
      Example("qtool jobs list --kind download --json", "Download jobs for a script"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let operations = JobOperations(try context.operations())
    guard let limit = arguments.int("limit"), limit >= 1 else { throw UsageError("--limit: expected 1 or more", commandPath: arguments.commandPath) }
    let since = arguments.duration("since").map { operations.context.clock.now() - Int64($0) * 1000 }
    let jobs = try operations.list(JobFilter(since: since, statuses: arguments.strings("status"), kinds: arguments.strings("kind"), limit: limit))
    if context.json {
      try context.printJSON(jobs)
      return .success
    }
    if jobs.isEmpty {
      context.note("no jobs" + (since == nil && arguments.strings("status").isEmpty ? " yet" : " match"))
      return .success
    }
    context.stdout.write(
      Table(
        columns: [.init("JOB"), .init("KIND"), .init("STATUS"), .init("STARTED"), .init("TIME", .right), .init("PROGRESS", .right), .init("RESULT")],
        rows: jobs.map { job in
          [
            job.id, job.kind, job.status.rawValue, job.createdAt, job.seconds.map { Format.duration($0) } ?? "-", JobsShowCommand.progress(job),
            JobsShowCommand.outcome(job),
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
