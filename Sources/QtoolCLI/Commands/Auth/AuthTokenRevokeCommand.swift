import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthTokenRevokeCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "revoke", abstract: "Revoke an API token; it stops working at once",
    options: [CommonOptions.json], positionals: [PositionalSpec("name", help: "The token's name or id.")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let token = try AuthSupport.operations(context).revokeToken(context.arguments.string("name")!)
    if context.json {
      try context.printJSON(token)
    } else {
      context.note("revoked \(token.name)")
    }
    return .success
  }
}
