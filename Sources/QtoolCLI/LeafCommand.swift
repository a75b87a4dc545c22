import QtoolArgs
import QtoolCore

/// A command that runs. Each lives in its own file: it declares its spec, and its `run` parses
/// arguments out of the context, calls one engine operation and renders the result.
protocol LeafCommand: Sendable {
  static var spec: CommandSpec { get }
  static func run(_ context: CommandContext) throws -> ExitStatus
}

/// A group of commands in the tree.
struct CommandGroup: Sendable {
  var name: String
  var abstract: String
  var discussion: String = ""
  var leaves: [any LeafCommand.Type]
}
