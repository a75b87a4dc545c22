import QtoolArgs
import QtoolCore
import QtoolServer

enum AuthTokenCreateCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "create", abstract: "Create an API token for CI jobs and cron; it is shown once",
    discussion: """
      The token (qt_…) is printed once on stdout and stored only as a hash: keep it in your CI's \
      secrets. Send it as Authorization: Bearer TOKEN. Scopes (comma-separated; group:* for a \
      whole group, * for all): \(Scope.allCases.map(\.rawValue).joined(separator: ", ")).
      """,
    options: [
      .value("scopes", valueName: "list", help: "What the token may do, e.g. backtest:create,backtest:read,jobs:read.", required: true),
      .value("expires", valueName: "time", help: "Lifetime: 30m, 12h, 90d, 8w, 1y, or never.", defaultValue: "90d"),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("name", help: "A name to recognise it by (letters, digits, . _ @ -).")],
    examples: [
      Example("qtool auth token create ci-nightly --scopes 'backtest:*,jobs:read,strategies:read' --expires 90d", "A token for a CI gate")
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let scopes = try Scope.parseList(context.arguments.string("scopes")!)
    let lifetime = try AuthOperations.parseLifetime(context.arguments.string("expires") ?? "90d")
    let created = try AuthSupport.operations(context).createToken(name: context.arguments.string("name")!, scopes: scopes, lifetime: lifetime)
    if context.json {
      try context.printJSON(created)
    } else {
      context.stdout.line(created.token)
      context.note(
        "token \(created.info.name) (\(created.info.scopes.joined(separator: ","))), expires \(created.info.expiresAt ?? "never"); it is not shown again")
    }
    return .success
  }
}
