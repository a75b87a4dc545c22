/// The shells qtool writes completion scripts for.
public enum Shell: String, CaseIterable, Sendable {
  case bash, zsh, fish
}

/// Renders a completion script for `shell` from the command tree.
public struct CompletionGenerator: Sendable {
  public let root: CommandSpec
  public init(root: CommandSpec) { self.root = root }

  public func script(for shell: Shell) -> String {
    let table = CompletionTable(root: root)
    switch shell {
    case .bash: return BashCompletion(table: table).render()
    case .zsh: return ZshCompletion(table: table).render()
    case .fish: return FishCompletion(table: table).render()
    }
  }
}
