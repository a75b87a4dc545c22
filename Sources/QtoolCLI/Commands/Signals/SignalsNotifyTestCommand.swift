import QtoolArgs
import QtoolCore
import QtoolEngine

enum SignalsNotifyTestCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "test", abstract: "Send a channel a test event now",
    discussion: """
      One attempt, not recorded: an event of type `test` carrying a signal that is not stored \
      (strategy qtool-test, symbol TEST). Exits 0 when it was delivered, 69 when it was not, \
      saying why (the status the endpoint answered, a timeout, a secret's variable not set).
      """,
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The channel.")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let report = try LiveOperations(try context.operations()).testChannel(named: context.arguments.string("name")!, settings: try context.settings())
    if context.json {
      try context.printJSON(report)
    } else if report.delivered {
      context.stdout.line("delivered to \(report.channel) in \(report.latencyMs) ms" + (report.status.map { " (status \($0))" } ?? ""))
    } else {
      context.stderr.line("qtool: error: not delivered to \(report.channel): \(report.error ?? report.outcome)")
    }
    return report.delivered ? .success : .unavailable
  }
}
