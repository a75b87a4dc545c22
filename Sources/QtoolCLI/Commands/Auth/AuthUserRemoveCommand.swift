import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthUserRemoveCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "remove", abstract: "Remove a user; their sessions end",
    discussion: "Their refresh tokens are deleted with them; an access token already issued stays valid until it expires (serve.access_ttl).",
    aliases: ["rm"],
    options: [CommonOptions.json], positionals: [PositionalSpec("username", help: "The user to remove.")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let user = try AuthSupport.operations(context).removeUser(username: context.arguments.string("username")!)
    if context.json {
      try context.printJSON(user)
    } else {
      context.note("removed \(user.username)")
    }
    return .success
  }
}
