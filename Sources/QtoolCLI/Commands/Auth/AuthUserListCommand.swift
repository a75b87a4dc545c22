import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthUserListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(name: "list", abstract: "List the users of qtool serve", aliases: ["ls"], options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let users = try AuthSupport.operations(context).users()
    if context.json {
      try context.printJSON(users)
    } else if users.isEmpty {
      context.note("no users yet; add one with `qtool auth user add NAME --role admin`")
    } else {
      context.stdout.write(
        Table(
          columns: [.init("USER"), .init("ROLE"), .init("CREATED"), .init("LAST LOGIN"), .init("LOCKED UNTIL")],
          rows: users.map { [$0.username, $0.role.rawValue, $0.createdAt, $0.lastLoginAt ?? "-", $0.lockedUntil ?? "-"] }
        ).render(bold: context.terminal.colorOnStdout))
    }
    return .success
  }
}
