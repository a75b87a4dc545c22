import Testing

@testable import QtoolArgs

@Suite struct HelpRendererTests {
  @Test func leafHelpListsArgumentsOptionsAndGlobalsOnce() {
    let help = HelpRenderer(root: sampleTree).help(for: ["data", "import"])
    #expect(help.hasPrefix("tool data import — import files\n\nUsage: tool data import <file>... --symbol <symbol> [options]\n"))
    #expect(help.contains("Arguments:\n  <file>...                 Files.\n"))
    #expect(help.contains("  -s, --symbol <symbol>     Symbol. [required]\n"))
    #expect(help.contains("  -t, --timeframe <tf>      Timeframe. [default: 1d]\n"))
    #expect(help.contains("--format <format>     Format. (one of: table, json, csv) [default: table]"))
    #expect(help.contains("--[no-]progress"))
    #expect(help.contains("--jobs <n>            Jobs. [env: TOOL_JOBS]"))
    #expect(help.components(separatedBy: "--db <path>").count == 2, "global options appear once")
    #expect(help.contains("Global options:\n"))
  }

  @Test func groupHelpListsCommands() {
    let help = HelpRenderer(root: sampleTree).help(for: ["data"])
    #expect(help.contains("Commands:\n  import        import files (alias: load)\n  export        export\n"))
    #expect(help.hasSuffix("Run 'tool data <command> --help' for a command's options.\n"))
  }

  @Test func longHelpWrapsAtEightyColumns() {
    let tree = CommandSpec(
      name: "t", abstract: "x",
      discussion: String(repeating: "word ", count: 60),
      subcommands: [CommandSpec(name: "a", abstract: "a")])
    for line in HelpRenderer(root: tree).help(for: []).split(separator: "\n") {
      #expect(line.count <= 80)
    }
  }
}
