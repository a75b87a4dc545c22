import QtoolArgs
import QtoolCore
import QtoolEngine

enum ManCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "man", abstract: "Print the man page (roff)",
    examples: [Example("qtool man | man -l -", "Read the manual")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    context.stdout.write(page())
    return .success
  }

  static func page() -> String {
    ManPageRenderer(root: CommandTree.root, version: VersionInfo.version, extraSections: HelpTopics.manSections).render()
  }
}
