import Foundation
import Testing

/// Loads the generated bash script into a real bash and asks it to complete.
@Suite struct CompletionScriptTests {
  func complete(_ line: String, in qtool: QtoolProcess) throws -> [String] {
    let script = QtoolProcess.packageRoot.appendingPathComponent("completions/qtool.bash").path
    let words = line.split(separator: " ", omittingEmptySubsequences: false).map { "'\($0)'" }.joined(separator: " ")
    let result = try qtool.shell(
      """
      qtool() { "$QTOOL" "$@"; }
      source '\(script)'
      COMP_WORDS=(\(words)); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
      _qtool
      printf '%s\\n' "${COMPREPLY[@]}"
      """)
    #expect(result.status == 0, "\(result.stderr)")
    return result.stdout.split(separator: "\n").map(String.init).sorted()
  }

  @Test func bashCompletesCommandsOptionsAndValues() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try complete("qtool d", in: qtool) == ["data", "db"])
    #expect(try complete("qtool da", in: qtool) == ["data"])
    #expect(try complete("qtool db ", in: qtool) == ["backup", "info", "migrate", "vacuum"])
    #expect(try complete("qtool db info --js", in: qtool) == ["--json"])
    #expect(try complete("qtool --color ", in: qtool) == ["always", "auto", "never"])
    #expect(try complete("qtool completions ", in: qtool) == ["bash", "fish", "zsh"])
    #expect(try complete("qtool --db x.db db ", in: qtool) == ["backup", "info", "migrate", "vacuum"])
  }

  @Test func bashCompletesStoredDatasetNames() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    #expect(try complete("qtool data info ", in: qtool) == [], "no store yet: nothing, and no store created")
    #expect(!FileManager.default.fileExists(atPath: qtool.databasePath))
    let file = qtool.home.appendingPathComponent("x.csv")
    try "date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n".write(to: file, atomically: true, encoding: .utf8)
    try qtool.run(["data", "import", file.path, "-s", "AAA", "-t", "1d"])
    try qtool.run(["data", "import", file.path, "-s", "ABC", "-t", "1d"])
    #expect(try complete("qtool data info ", in: qtool) == ["AAA-1d", "ABC-1d"])
    #expect(try complete("qtool data verify AB", in: qtool) == ["ABC-1d"])
  }

  @Test func fishCompletesCommandsAndValues() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let script = QtoolProcess.packageRoot.appendingPathComponent("completions/qtool.fish").path
    func complete(_ line: String) throws -> [String] {
      let result = try qtool.shell("fish --no-config -c \"source '\(script)'; complete -C '\(line)'\"")
      #expect(result.status == 0, "\(result.stderr)")
      return result.stdout.split(separator: "\n").map { String($0.split(separator: "\t").first ?? "") }.sorted()
    }
    #expect(try complete("qtool db ") == ["backup", "info", "migrate", "vacuum"])
    #expect(try complete("qtool data ").contains("import"))
    #expect(try complete("qtool --db x.db db ") == ["backup", "info", "migrate", "vacuum"])
    #expect(try complete("qtool completions ") == ["bash", "fish", "zsh"])
    #expect(try complete("qtool db info --js") == ["--json"])
  }

  /// Tab pressed in a real interactive zsh (on a pty) with the generated _qtool loaded.
  @Test func zshCompletesSubcommandsAtEveryDepthAndStoredNames() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    try qtool.run(["data", "import", QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path, "-s", "GOOG", "-t", "1d", "-q"])
    let directory = qtool.home.appendingPathComponent("zsh")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    try FileManager.default.copyItem(
      at: QtoolProcess.packageRoot.appendingPathComponent("completions/_qtool"), to: directory.appendingPathComponent("_qtool"))
    let harness = QtoolProcess.packageRoot.appendingPathComponent("Tests/QtoolCLITests/Support/zsh-complete.zsh").path
    /// True when zsh shows `expected` after Tab (the harness waits for it, up to 20 s).
    func completes(_ line: String, to expected: String) throws -> Bool {
      let result = try qtool.shell("PATH=\"$(dirname \"$QTOOL\"):$PATH\" zsh -f '\(harness)' '\(directory.path)' '\(line)' '\(expected)'")
      #expect(result.status == 0, "\(result.stderr)")
      return result.stdout.contains(expected)
    }
    #expect(try completes("qtool db i", to: "qtool db info "))
    #expect(try completes("qtool --db x.db db v", to: "db vacuum "), "global options before the subcommand")
    #expect(try completes("qtool backtest grid m", to: "backtest grid merge "), "three levels deep")
    #expect(try completes("qtool completions ", to: "bash  fish  zsh"))
    #expect(try completes("qtool data info G", to: "data info GOOG-1d"), "datasets from the store")
  }

  @Test func zshScriptParses() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let script = QtoolProcess.packageRoot.appendingPathComponent("completions/_qtool").path
    let result = try qtool.shell("zsh -n '\(script)'")
    #expect(result.status == 0, "\(result.stderr)")
  }
}
