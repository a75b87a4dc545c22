import QtoolArgs
import QtoolCore

/// A command that runs. Each lives in its own file: it declares its spec, and its `run` parses
/// arguments out of the context, calls one engine operation and renders the result.
protocol LeafCommand: Sendable {
  static var spec: CommandSpec { get }
  /// True for commands that only read the store: they open it read-only, never create it (a
  /// missing store reads as empty), and work on a store they cannot write.
  static var readsOnly: Bool { get }
  static func run(_ context: CommandContext) throws -> ExitStatus
}

extension LeafCommand {
  static var readsOnly: Bool { false }
}

/// A group of commands in the tree.
struct CommandGroup: Sendable {
  var name: String
  var abstract: String
  var discussion: String = ""
  var leaves: [any LeafCommand.Type]
  /// Groups inside this one (`qtool auth user add`).
  var subgroups: [CommandGroup] = []

  /// The group as a node of the command tree.
  var spec: CommandSpec {
    CommandSpec(name: name, abstract: abstract, discussion: discussion, subcommands: leaves.map { $0.spec } + subgroups.map(\.spec))
  }

  /// The leaf at `path` below this group.
  func leaf(at path: ArraySlice<String>) -> (any LeafCommand.Type)? {
    guard let first = path.first else { return nil }
    if path.count == 1 { return leaves.first { $0.spec.name == first } }
    return subgroups.first { $0.name == first }?.leaf(at: path.dropFirst())
  }
}
