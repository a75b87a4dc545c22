import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum GridResumeCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "resume", abstract: "Resubmit only the missing shards of a grid submitted to Slurm",
    discussion: """
      A shard is missing when its store in the grid's work directory does not hold it: its task \
      was cancelled, failed, or never ran. Resume submits an array of just those tasks and a new \
      merge step after them (cancelling the old one, which can no longer run). A shard run again \
      replaces what an earlier attempt wrote: nothing is written twice.
      """,
    options: [.flag("slurm", help: "Resubmit through Slurm (the scheduler the grid was submitted to)."), CommonOptions.json],
    positionals: [PositionalSpec("id", help: "The grid id the submission printed.")],
    examples: [Example("qtool backtest grid resume g1a2b3c4d --slurm", "Rerun the cancelled shards, then merge")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard arguments.flag("slurm") else {
      throw UsageError(
        "say which scheduler resumes the grid: --slurm (or run the missing shards with --shard K/N and merge them)",
        commandPath: arguments.commandPath)
    }
    let report = try SlurmOperations(try context.operations()).resume(gridID: arguments.string("id")!)
    if context.json {
      try context.printJSON(report)
    } else if report.submitted.isEmpty {
      context.stdout.line(
        "grid \(report.gridID): every shard is done; merge job \(report.mergeJob ?? "?") submitted (qtool job \(report.jobID ?? "?"))")
    } else {
      context.stdout.line(
        "grid \(report.gridID): shards \(report.submitted.map(String.init).joined(separator: ",")) resubmitted as Slurm array job \(report.arrayJob ?? "?"), merge job \(report.mergeJob ?? "?") (qtool job \(report.jobID ?? "?"))"
      )
    }
    return .success
  }
}
