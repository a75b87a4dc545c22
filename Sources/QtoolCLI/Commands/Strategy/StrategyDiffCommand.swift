import QtoolArgs
import QtoolCore
import QtoolEngine

enum StrategyDiffCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "diff", abstract: "Show what changed between two versions of a registered strategy",
    discussion: "Prints the spec's lines, - for removed and + for added. Exits 0 when the versions are the same, 1 when they differ (as diff does).",
    options: [CommonOptions.json],
    positionals: [
      PositionalSpec("name", help: "A registered strategy.", completion: .dynamic("strategies")),
      PositionalSpec("from", help: "The older version, e.g. 1."), PositionalSpec("to", help: "The newer version, e.g. 2."),
    ],
    examples: [Example("qtool strategy diff goog-sma 1 2", "What the edit of goog-sma changed")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    func version(_ name: String) throws -> Int {
      guard let text = arguments.string(name), let number = Int(text), number >= 1 else {
        throw UsageError("<\(name)>: expected a version number like 2, got '\(arguments.string(name) ?? "")'", commandPath: arguments.commandPath)
      }
      return number
    }
    let diff = try StrategyOperations(try context.operations()).diff(name: arguments.string("name")!, from: try version("from"), to: try version("to"))
    if context.json {
      try context.printJSON(diff)
    } else {
      context.stdout.line("--- \(diff.strategy) v\(diff.from)")
      context.stdout.line("+++ \(diff.strategy) v\(diff.to)")
      for line in diff.lines {
        let mark = line.change == "added" ? "+" : line.change == "removed" ? "-" : " "
        let text = mark + line.text
        context.stdout.line(line.change == "same" ? text : line.change == "added" ? Terminal.green(text, context.terminal.colorOnStdout) : Terminal.red(text, context.terminal.colorOnStdout))
      }
    }
    return diff.changed ? .failure : .success
  }
}
