import QtoolArgs
import QtoolCore
import QtoolEngine

enum SignalsNotifyRemoveCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "remove", abstract: "Remove a notification channel and its history",
    aliases: ["rm"],
    options: [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The channel.")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let channel = try LiveOperations(try context.operations()).removeChannel(named: context.arguments.string("name")!)
    if context.json {
      try context.printJSON(channel)
    } else {
      context.note("removed \(channel.kind) channel \(channel.name)")
    }
    return .success
  }
}
