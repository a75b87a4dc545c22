import QtoolArgs
import QtoolCore

enum CompletionsCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "completions", abstract: "Print a shell completion script",
    discussion:
      "The script completes commands, options, option values, file paths, and the names of stored datasets and strategies (by calling qtool itself).",
    positionals: [PositionalSpec("shell", .choice(Shell.allCases.map(\.rawValue)), help: "The shell to write a script for.")],
    examples: [
      Example("qtool completions bash > /etc/bash_completion.d/qtool", "Install bash completions"),
      Example("qtool completions zsh > \"${fpath[1]}/_qtool\"", "Install zsh completions"),
      Example("qtool completions fish > ~/.config/fish/completions/qtool.fish", "Install fish completions"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let shell = Shell(rawValue: context.arguments.string("shell")!)!
    context.stdout.write(CompletionGenerator(root: CommandTree.root).script(for: shell))
    return .success
  }
}
