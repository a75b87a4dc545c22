import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthTokenListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(name: "list", abstract: "List API tokens (never their secrets)", aliases: ["ls"], options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let tokens = try AuthSupport.operations(context).tokens()
    if context.json {
      try context.printJSON(tokens)
    } else if tokens.isEmpty {
      context.note("no tokens yet; create one with `qtool auth token create NAME --scopes …`")
    } else {
      context.stdout.write(
        Table(
          columns: [.init("NAME"), .init("PREFIX"), .init("STATUS"), .init("SCOPES"), .init("EXPIRES"), .init("LAST USED")],
          rows: tokens.map { [$0.name, $0.prefix + "…", $0.status, $0.scopes.joined(separator: ","), $0.expiresAt ?? "never", $0.lastUsedAt ?? "-"] }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
