import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthUserAddCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "add", abstract: "Add a user who can log in to qtool serve",
    discussion: """
      The password is asked for on the terminal (twice, not echoed), or read from the first line \
      of standard input with --password-stdin; it is never an argument. It needs 8 to 72 bytes \
      and is stored as a bcrypt hash (serve.bcrypt_cost).
      """,
    options: [AuthSupport.role, AuthSupport.passwordStdin, CommonOptions.json],
    positionals: [PositionalSpec("username", help: "Letters, digits, '.', '_', '@' or '-'.")],
    examples: [
      Example("qtool auth user add alice --role admin", "An administrator, asked for a password"),
      Example("printf '%s\\n' \"$PASS\" | qtool auth user add ci --role trader --password-stdin", "From a script"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let username = context.arguments.string("username")!
    let role = Role(rawValue: context.arguments.string("role") ?? "viewer") ?? .viewer
    let user = try AuthSupport.operations(context).addUser(username: username, password: try AuthSupport.password(context), role: role)
    if context.json {
      try context.printJSON(user)
    } else {
      context.note("added \(user.username) (\(user.role.rawValue))")
    }
    return .success
  }
}
