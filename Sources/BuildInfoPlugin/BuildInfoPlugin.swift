import Foundation
import PackagePlugin

/// Writes the git commit and the build date into the target, for `qtool version --json`.
/// The file is rewritten only when its content changes, so unchanged builds stay incremental.
@main
struct BuildInfoPlugin: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
    let output = context.pluginWorkDirectoryURL.appendingPathComponent("Generated")
    let script = #"""
      set -e
      mkdir -p "$2"
      commit=$(git -C "$1" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
      if [ "$commit" != unknown ] && [ -n "$(git -C "$1" status --porcelain --untracked-files=no -- Sources Package.swift 2>/dev/null | head -c 1)" ]; then
        commit="$commit-dirty"
      fi
      day=$(date -u +%Y-%m-%d)
      content="// Generated at build time by BuildInfoPlugin; not in git.
      enum GeneratedBuildInfo {
        static let commit = \"$commit\"
        static let date = \"$day\"
      }"
      if [ "$(cat "$2/BuildInfo.swift" 2>/dev/null)" != "$content" ]; then
        printf '%s\n' "$content" > "$2/BuildInfo.swift"
      fi
      """#
    return [
      .prebuildCommand(
        displayName: "Recording build info",
        executable: URL(fileURLWithPath: "/bin/sh"),
        arguments: ["-c", script, "sh", context.package.directoryURL.path, output.path],
        outputFilesDirectory: output)
    ]
  }
}
