import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolServer

#if canImport(Glibc)
  import Glibc
#endif

/// What the `auth` commands share: the user and token operations on the store, and reading a
/// password without echoing it or taking it from the command line (where `ps` would show it).
enum AuthSupport {
  static let passwordStdin = OptionSpec.flag("password-stdin", help: "Read the password from the first line of standard input.")
  static let role = OptionSpec.value(
    "role", .choice(Role.allCases.map(\.rawValue)), valueName: "role", help: "admin (everything), trader (all but admin) or viewer (read only).",
    defaultValue: "viewer")

  static func operations(_ context: CommandContext) throws -> AuthOperations {
    let settings = try context.settings()
    let cost = UInt8(settings.value("serve.bcrypt_cost").flatMap(Int.init).map { min(31, max(4, $0)) } ?? 11)
    return AuthOperations(database: try context.database(), bcryptCost: cost)
  }

  /// The password: from stdin with `--password-stdin`, else asked twice on the terminal.
  static func password(_ context: CommandContext) throws -> String {
    if context.arguments.flag("password-stdin") {
      guard let line = readLine(strippingNewline: true), !line.isEmpty else {
        throw OperationError.invalidArgument("no password on standard input", field: "password")
      }
      return line
    }
    guard isatty(STDIN_FILENO) == 1 else {
      throw OperationError.invalidArgument(
        "standard input is not a terminal to ask for the password on", field: "password", hint: "pipe it in with {password_stdin}")
    }
    guard let first = getpass("Password: ").map({ String(cString: $0) }), let second = getpass("Again: ").map({ String(cString: $0) }) else {
      throw OperationError.invalidArgument("no password given", field: "password")
    }
    guard first == second else { throw OperationError.invalidArgument("the two passwords differ", field: "password") }
    return first
  }
}
