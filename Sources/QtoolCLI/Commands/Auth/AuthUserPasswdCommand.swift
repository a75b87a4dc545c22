import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthUserPasswdCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "passwd", abstract: "Set a user's password; their sessions end and a lockout is lifted",
    options: [AuthSupport.passwordStdin, CommonOptions.json], positionals: [PositionalSpec("username", help: "The user.")],
    examples: [Example("qtool auth user passwd alice", "Asked for the new password twice")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let username = context.arguments.string("username")!
    let operations = try AuthSupport.operations(context)
    _ = try context.database().user(named: username)  // an unknown user before asking for a password
    let user = try operations.setPassword(username: username, password: try AuthSupport.password(context))
    if context.json {
      try context.printJSON(user)
    } else {
      context.note("password of \(user.username) set; their sessions ended")
    }
    return .success
  }
}
