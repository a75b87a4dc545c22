import Foundation
import QtoolArgs
import Testing

@testable import QtoolCLI

@Suite struct CommandTreeTests {
  @Test func treeIsValid() {
    #expect(TreeValidator.problems(in: CommandTree.root) == [])
  }

  @Test func everyLeafHasAHandler() {
    for (path, command) in CommandTree.root.walk(includeHidden: true) where !command.isGroup {
      #expect(CommandTree.leaf(at: path) != nil, "no handler for \(path.joined(separator: " "))")
    }
  }

  @Test func everyCommandThatPrintsResultsOffersJSON() {
    // These print documents or data in a format of their own choosing (--format), not a result.
    let exempt: Set<String> = ["completions", "man", "__complete", "export"]
    for (path, command) in CommandTree.root.walk() where !command.isGroup && !exempt.contains(command.name) {
      #expect(command.options.contains { $0.long == "json" }, "\(path.joined(separator: " ")) has no --json")
    }
  }

  @Test(arguments: [
    ([String](), "help-root.txt"), (["db"], "help-db.txt"), (["db", "backup"], "help-db-backup.txt"),
    (["config", "show"], "help-config-show.txt"),
  ])
  func helpSnapshots(path: [String], snapshot: String) throws {
    try assertSnapshot(HelpRenderer(root: CommandTree.root).help(for: path), named: snapshot)
  }
}

/// The committed man page and completion scripts are exactly what the tree renders today.
@Suite struct GeneratedFilesTests {
  @Test(arguments: [
    ("man/qtool.1", "man"), ("completions/qtool.bash", "bash"), ("completions/_qtool", "zsh"),
    ("completions/qtool.fish", "fish"),
  ])
  func committedFileMatchesTheTree(file: String, kind: String) throws {
    let generated: String
    switch kind {
    case "man": generated = ManCommand.page()
    default: generated = CompletionGenerator(root: CommandTree.root).script(for: Shell(rawValue: kind)!)
    }
    let committed = try String(contentsOf: QtoolProcess.packageRoot.appendingPathComponent(file), encoding: .utf8)
    #expect(committed == generated, "\(file) is stale: run `make generate` and commit the result")
  }
}
