import QtoolArgs
import QtoolCore
import QtoolEngine

enum SignalsNotifyHistoryCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "history", abstract: "Show notifications and every delivery attempt",
    options: [
      .value("channel", valueName: "name", help: "Only this channel's."),
      .value("status", .choice(["pending", "delivered", "dead"]), valueName: "status", help: "Only notifications with this status."),
      .value("limit", .int, valueName: "n", help: "At most this many, newest first.", defaultValue: "50"),
      CommonOptions.json,
    ],
    examples: [Example("qtool signals notify history --status dead", "What was given up, and why")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let limit = arguments.int("limit"), limit >= 1 else { throw UsageError("--limit: expected 1 or more", commandPath: arguments.commandPath) }
    let history = try LiveOperations(try context.operations()).history(
      channel: arguments.string("channel"), status: arguments.string("status"), limit: limit)
    if context.json {
      try context.printJSON(history)
      return .success
    }
    if history.isEmpty {
      context.note("no notifications")
      return .success
    }
    for item in history {
      context.stdout.line(
        "\(item.createdAt)  \(item.channel)  \(item.signalID)  \(item.status)" + (item.deliveredAt.map { " at \($0)" } ?? "")
          + (item.nextAttemptAt.map { ", next attempt \($0)" } ?? ""))
      for attempt in item.history {
        context.stdout.line(
          "    #\(attempt.attempt) \(attempt.at)  \(attempt.outcome)  \(attempt.status.map { "status \($0)" } ?? "no answer")  \(attempt.latencyMs) ms"
            + (attempt.error.map { "  \($0)" } ?? ""))
      }
    }
    return .success
  }
}
