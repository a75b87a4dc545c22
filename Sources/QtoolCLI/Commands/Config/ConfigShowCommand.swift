import QtoolArgs
import QtoolCore
import QtoolEngine

enum ConfigShowCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "show", abstract: "Print each effective setting and where it came from",
    discussion: "Precedence: command-line flag > environment (QTOOL_*) > config file > default.",
    options: [CommonOptions.json],
    examples: [Example("QTOOL_DB=/tmp/x.db qtool config show", "See that the environment wins over the file")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let settings = try context.settings()
    if context.json {
      struct Output: Encodable {
        var configFile: String
        var configFileExists: Bool
        var settings: [Setting]
        enum CodingKeys: String, CodingKey {
          case configFile = "config_file", configFileExists = "config_file_exists", settings
        }
      }
      try context.printJSON(Output(configFile: settings.configFile, configFileExists: settings.configFileExists, settings: settings.entries))
      return .success
    }
    context.stdout.line("config file: \(settings.configFile)\(settings.configFileExists ? "" : " (not present)")")
    let table = Table(
      columns: [.init("KEY"), .init("VALUE"), .init("FROM")],
      rows: settings.entries.map { [$0.key, $0.value ?? "-", $0.origin.rawValue] })
    context.stdout.write(table.render(bold: context.terminal.colorOnStdout))
    return .success
  }
}
