import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum SignalsNotifyListCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "list", abstract: "List notification channels and how their notifications fared",
    aliases: ["ls"],
    options: [CommonOptions.json])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let channels = try LiveOperations(try context.operations()).channels()
    if context.json {
      try context.printJSON(channels)
      return .success
    }
    if channels.isEmpty {
      context.note("no channels yet; add one with `qtool signals notify add NAME --kind webhook --url URL`")
      return .success
    }
    context.stdout.write(
      Table(
        columns: [
          .init("CHANNEL"), .init("KIND"), .init("TARGET"), .init("FILTERS"), .init("PENDING", .right), .init("DELIVERED", .right),
          .init("DEAD", .right),
        ],
        rows: channels.map { channel in
          [
            channel.name, channel.kind, target(channel), filters(channel), String(channel.notifications["pending"] ?? 0),
            String(channel.notifications["delivered"] ?? 0), String(channel.notifications["dead"] ?? 0),
          ]
        }
      ).render(bold: context.terminal.colorOnStdout))
    return .success
  }

  static func target(_ channel: ChannelInfo) -> String {
    let config = channel.config
    if let url = config.url { return url }
    if let command = config.command { return command.count > 40 ? String(command.prefix(39)) + "…" : command }
    if let variable = config.urlEnv ?? config.tokenEnv { return "$\(variable)" + (config.chatID.map { " → chat \($0)" } ?? "") }
    if let file = config.urlFile ?? config.tokenFile { return file + (config.chatID.map { " → chat \($0)" } ?? "") }
    return "-"
  }

  static func filters(_ channel: ChannelInfo) -> String {
    let filter = channel.filter
    var parts: [String] = []
    if !filter.strategies.isEmpty { parts.append("strategy " + filter.strategies.joined(separator: ",")) }
    if !filter.symbols.isEmpty { parts.append("symbol " + filter.symbols.joined(separator: ",")) }
    if !filter.types.isEmpty { parts.append(filter.types.joined(separator: ",")) }
    if !filter.levels.isEmpty { parts.append("level " + filter.levels.joined(separator: ",")) }
    if let minimum = filter.minStrength { parts.append("strength ≥ \(SignalLine.number(minimum))") }
    if channel.includeLate { parts.append("late too") }
    return parts.isEmpty ? "all" : parts.joined(separator: "; ")
  }
}
