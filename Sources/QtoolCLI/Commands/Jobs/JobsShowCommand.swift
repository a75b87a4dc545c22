import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

enum JobsShowCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "show", abstract: "Show one job: request, status, progress, result or error",
    options: [CommonOptions.json],
    positionals: [PositionalSpec("id", help: "A job id (or a unique prefix of one).", completion: .dynamic("jobs"))])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let operations = try context.operations()
    let job = try JobOperations(operations).show(id: context.arguments.string("id")!)
    // A grid submitted to Slurm: Slurm's own state of its tasks, and the shard stores'.
    let slurm = try operations.database.gridSubmission(jobID: job.id).map { try SlurmOperations(operations).status($0) }
    if context.json {
      guard let slurm else {
        try context.printJSON(job)
        return .success
      }
      var object = try JSONDecoder().decode([String: JSONValue].self, from: Data(try JSONOutput.encode(job).utf8))
      object["slurm"] = try JSONDecoder().decode(JSONValue.self, from: Data(try JSONOutput.encode(slurm).utf8))
      try context.printJSON(object)
      return .success
    }
    render(job, context: context)
    if let slurm {
      context.stdout.line(
        "slurm     array job \(slurm.arrayJob), merge job \(slurm.mergeJob) (merge \(slurm.merge)), work directory \(slurm.workDir)")
      for state in ["pending", "running", "done", "failed"] {
        let shards = slurm.tasks.filter { $0.state == state }.map { String($0.shard) }
        if !shards.isEmpty {
          context.stdout.line("  \(state.padding(toLength: 8, withPad: " ", startingAt: 0))shards \(shards.joined(separator: ","))")
        }
      }
    }
    return .success
  }

  static func render(_ job: JobInfo, context: CommandContext) {
    var lines: [(String, String)] = [
      ("job", job.id), ("kind", job.kind),
      ("status", job.status.rawValue + (job.cancelRequested && !job.status.isFinished ? " (cancel requested)" : "")),
      ("process", "pid \(job.pid.map(String.init) ?? "?") on \(job.host ?? "?")"), ("started", job.startedAt ?? job.createdAt),
    ]
    if let finished = job.finishedAt { lines.append(("finished", finished)) }
    if let seconds = job.seconds { lines.append(("time", Format.duration(seconds))) }
    if job.progress != nil { lines.append(("progress", progress(job))) }
    if let result = job.result, !result.isEmpty { lines.append(("result", outcome(job))) }
    if let error = job.error { lines.append(("error", "\(error.message) [\(error.code)]")) }
    if let request = try? JSONOutput.encode(job.request) { lines.append(("request", request.replacingOccurrences(of: "\n", with: "\n          "))) }
    for (label, value) in lines { context.stdout.line(label.padding(toLength: 10, withPad: " ", startingAt: 0) + value) }
  }

  static func progress(_ job: JobInfo) -> String {
    guard let event = job.progress else { return "-" }
    guard let total = event.total, total > 0 else { return "\(event.phase) \(Format.compact(Double(event.done))) \(event.unit.rawValue)" }
    return "\(event.phase) \(Int(Double(event.done) / Double(total) * 100))%"
  }

  static func outcome(_ job: JobInfo) -> String {
    if let error = job.error, job.status != .completed { return error.code }
    guard let result = job.result else { return "-" }
    return result.sorted { $0.key < $1.key }.map { key, value in
      switch value {
      case .string(let text): return "\(key) \(text)"
      case .int(let number): return "\(key) \(number)"
      case .array(let items):
        return "\(key) " + items.compactMap { if case .string(let s) = $0 { return s } else { return nil } }.joined(separator: ",")
      default: return key
      }
    }.joined(separator: " ")
  }
}
