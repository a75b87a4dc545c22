import Foundation
import Testing

@testable import QtoolArgs

/// A small tree with every kind of option and positional.
let sampleTree = CommandSpec(
  name: "tool", abstract: "a sample tool",
  options: [
    .flag("quiet", short: "q", help: "Say less."),
    .flag("verbose", short: "v", help: "Say more."),
    .value("db", .path(.file(extensions: [])), valueName: "path", help: "Store.", environment: "TOOL_DB"),
    .flag("help", short: "h", help: "Help."),
    .flag("version", help: "Version."),
  ],
  subcommands: [
    CommandSpec(
      name: "data", abstract: "data commands",
      subcommands: [
        CommandSpec(
          name: "import", abstract: "import files", aliases: ["load"],
          options: [
            .value("symbol", short: "s", valueName: "symbol", help: "Symbol.", required: true),
            .value("timeframe", short: "t", .timeframe, valueName: "tf", help: "Timeframe.", defaultValue: "1d"),
            .value("from", .date, valueName: "date", help: "Start."),
            .value("every", .duration, valueName: "duration", help: "Interval."),
            .value("jobs", short: "j", .int, valueName: "n", help: "Jobs.", environment: "TOOL_JOBS"),
            .value("capital", .double, valueName: "amount", help: "Capital."),
            .value("format", .choice(["table", "json", "csv"]), valueName: "format", help: "Format.", defaultValue: "table"),
            .value("param", valueName: "k=v", help: "Parameter.", list: true),
            .flag("progress", help: "Show progress.", negatable: true),
            .flag("json", help: "JSON."),
          ],
          positionals: [PositionalSpec("file", .path(.file(extensions: [])), arity: .variadic, help: "Files.")]),
        CommandSpec(
          name: "export", abstract: "export",
          positionals: [
            PositionalSpec("dataset", help: "Dataset."),
            PositionalSpec("out", arity: .optional, help: "Output."),
          ]),
      ])
  ])

func parse(_ line: String, environment: [String: String] = [:]) throws(UsageError) -> ParsedArguments {
  let words = line.split(separator: " ").map(String.init)
  guard case .run(let parsed) = try Parser(root: sampleTree, environment: environment).parse(words) else {
    throw UsageError("expected a run", commandPath: [])
  }
  return parsed
}

func usageError(_ line: String, environment: [String: String] = [:]) -> UsageError? {
  do {
    _ = try Parser(root: sampleTree, environment: environment).parse(line.split(separator: " ").map(String.init))
    return nil
  } catch {
    return error
  }
}

@Suite struct ParserTests {
  @Test func valueForms() throws {
    let parsed = try parse("data import a.csv --symbol=AAPL -t 1h --jobs 4 --capital 1e4")
    #expect(parsed.commandPath == ["data", "import"])
    #expect(parsed.string("symbol") == "AAPL")
    #expect(parsed.string("timeframe") == "1h")
    #expect(parsed.int("jobs") == 4)
    #expect(parsed.double("capital") == 10_000)
    #expect(parsed.strings("file") == ["a.csv"])
  }

  @Test func shortValueAttached() throws {
    let parsed = try parse("data import -sMSFT -j8 a.csv")
    #expect(parsed.string("symbol") == "MSFT")
    #expect(parsed.int("jobs") == 8)
  }

  @Test func bundledShortFlags() throws {
    let parsed = try parse("data import -qv -s X a.csv")
    #expect(parsed.flag("quiet"))
    #expect(parsed.flag("verbose"))
    #expect(parsed.count("verbose") == 1)
    #expect(try parse("-vv data import -s X a.csv").count("verbose") == 2)
  }

  @Test func bundleEndingInValueOption() throws {
    let parsed = try parse("data import -qs BTC a.csv")
    #expect(parsed.flag("quiet"))
    #expect(parsed.string("symbol") == "BTC")
  }

  @Test func doubleDashEndsOptions() throws {
    let parsed = try parse("data import -s X -- --weird-name.csv -q")
    #expect(parsed.strings("file") == ["--weird-name.csv", "-q"])
    #expect(!parsed.flag("quiet"))
  }

  @Test func optionsAnywhereAmongPositionals() throws {
    let parsed = try parse("--quiet data import a.csv -s X b.csv --json c.csv")
    #expect(parsed.strings("file") == ["a.csv", "b.csv", "c.csv"])
    #expect(parsed.flag("json"))
    #expect(parsed.flag("quiet"))
  }

  @Test func repeatedOptionLastWinsAndListsAccumulate() throws {
    let parsed = try parse("data import a -s X -s Y --param a=1 --param b=2,c=3")
    #expect(parsed.string("symbol") == "Y")
    #expect(parsed.strings("param") == ["a=1", "b=2", "c=3"])
  }

  @Test func negatableFlag() throws {
    #expect(try parse("data import a -s X --progress").flag("progress"))
    #expect(!(try parse("data import a -s X --progress --no-progress").flag("progress")))
    #expect(try parse("data import a -s X --no-progress").origin("progress") == .commandLine)
  }

  @Test func defaultsAndOrigins() throws {
    let parsed = try parse("data import a -s X")
    #expect(parsed.string("timeframe") == "1d")
    #expect(parsed.origin("timeframe") == .defaultValue)
    #expect(!parsed.isGiven("timeframe"))
    #expect(parsed.string("format") == "table")
  }

  @Test func environmentFallbackAndFlagWins() throws {
    let env = ["TOOL_JOBS": "3", "TOOL_DB": "/tmp/x.db"]
    let fromEnv = try parse("data import a -s X", environment: env)
    #expect(fromEnv.int("jobs") == 3)
    #expect(fromEnv.origin("jobs") == .environment)
    #expect(fromEnv.string("db") == "/tmp/x.db")
    let fromFlag = try parse("data import a -s X --jobs 5", environment: env)
    #expect(fromFlag.int("jobs") == 5)
    #expect(fromFlag.origin("jobs") == .commandLine)
  }

  @Test func badEnvironmentValueNamesTheVariable() {
    let error = usageError("data import a -s X", environment: ["TOOL_JOBS": "many"])
    #expect(error?.message == "TOOL_JOBS (for --jobs): expected a whole number like 42, got 'many'")
  }

  @Test func aliasResolvesToCanonicalName() throws {
    #expect(try parse("data load a -s X").commandPath == ["data", "import"])
  }

  @Test func optionalAndRequiredPositionals() throws {
    let one = try parse("data export btc")
    #expect(one.string("dataset") == "btc")
    #expect(one.string("out") == nil)
    let two = try parse("data export btc out.csv")
    #expect(two.string("out") == "out.csv")
  }

  @Test func negativeNumbersAreValues() throws {
    #expect(try parse("data import a -s X --capital -5").double("capital") == -5)
    #expect(try parse("data import a -s X --capital -.5").double("capital") == -0.5)
    // A dash then a digit is a value even when it is not a number (`--shard -1/4`): the
    // option's own check refuses it, not "missing value".
    #expect(try parse("data import a -s -1/4").string("symbol") == "-1/4")
  }

  // MARK: Errors

  @Test func unknownOptionSuggestsTheClosest() {
    let error = usageError("data import a -s X --simbol Y")
    #expect(error?.message == "unknown option '--simbol' — did you mean '--symbol'?")
    #expect(error?.commandPath == ["data", "import"])
  }

  @Test func unknownCommandSuggestsTheClosest() {
    #expect(usageError("data imprt a")?.message == "unknown command 'imprt' for 'tool data' — did you mean 'import'?")
    #expect(usageError("dta import")?.message == "unknown command 'dta' for 'tool' — did you mean 'data'?")
    #expect(usageError("zzzzzz")?.message == "unknown command 'zzzzzz' for 'tool'")
  }

  @Test func unknownShortOption() {
    #expect(usageError("data import a -s X -z")?.message == "unknown option '-z'")
  }

  @Test func missingValue() {
    #expect(usageError("data import a -s")?.message == "-s: missing value (expected a string)")
    #expect(usageError("data import a -s X --from")?.message == "--from: missing value (expected a date like 2024-01-31)")
    #expect(usageError("data import a --symbol --json")?.message == "--symbol: missing value (expected a string)")
  }

  @Test func wrongTypeNamesTheExpectedForm() {
    #expect(usageError("data import a -s X --from 2024-13-01")?.message == "--from: expected a date like 2024-01-31, got '2024-13-01'")
    #expect(usageError("data import a -s X --jobs four")?.message == "--jobs: expected a whole number like 42, got 'four'")
    #expect(usageError("data import a -s X --every 5x")?.message == "--every: expected a duration like 15m, 4h or 2d, got '5x'")
    #expect(usageError("data import a -s X -t 1y")?.message == "--timeframe: expected a timeframe like 1m, 15m, 1h, 1d, 1w or 1M, got '1y'")
    #expect(usageError("data import a -s X --format jsn")?.message == "--format: expected one of table, json, csv, got 'jsn' — did you mean 'json'?")
  }

  @Test func missingRequiredArgumentAndOption() {
    #expect(usageError("data import -s X")?.message == "missing required argument <file>...")
    #expect(usageError("data import a.csv")?.message == "missing required option --symbol <symbol>")
    #expect(usageError("data export")?.message == "missing required argument <dataset>")
  }

  @Test func unexpectedArgument() {
    #expect(usageError("data export a b c")?.message == "unexpected argument 'c'")
  }

  @Test func flagWithValue() {
    #expect(usageError("data import a -s X --json=yes")?.message == "--json does not take a value")
  }

  @Test func groupWithoutCommand() {
    #expect(usageError("data")?.message == "'tool data' needs a command: one of import, export")
  }

  // MARK: Help and version come first

  @Test func helpIsAnsweredBeforeValidation() throws {
    let outcome = try Parser(root: sampleTree, environment: [:]).parse(["data", "import", "--from", "bad", "--help"])
    guard case .help(let path) = outcome else {
      Issue.record("expected help")
      return
    }
    #expect(path == ["data", "import"])
  }

  @Test func versionAndBareInvocation() throws {
    guard case .version = try Parser(root: sampleTree, environment: [:]).parse(["--version"]) else {
      Issue.record("expected version")
      return
    }
    guard case .help(let path) = try Parser(root: sampleTree, environment: [:]).parse([]) else {
      Issue.record("expected help")
      return
    }
    #expect(path.isEmpty)
  }
}

/// A group whose `run` command is also what the group does alone (`grid SPEC` = `grid run SPEC`).
let defaultingTree = CommandSpec(
  name: "tool", abstract: "a tool",
  options: [.flag("help", short: "h", help: "Help.")],
  subcommands: [
    CommandSpec(
      name: "grid", abstract: "grids",
      subcommands: [
        CommandSpec(
          name: "run", abstract: "run one", options: [.value("top", .int, valueName: "n", help: "Top.")],
          positionals: [PositionalSpec("spec", help: "Spec.")]),
        CommandSpec(name: "list", abstract: "list them"),
      ], defaultSubcommand: "run"),
  ])

@Suite struct DefaultSubcommandTests {
  func run(_ line: String) throws(UsageError) -> ParseOutcome {
    try Parser(root: defaultingTree, environment: [:]).parse(line.split(separator: " ").map(String.init))
  }

  @Test func anArgumentThatIsNoCommandGoesToTheDefault() throws {
    guard case .run(let parsed) = try run("grid s.yaml --top 3") else { Issue.record("expected a run"); return }
    #expect(parsed.commandPath == ["grid", "run"] && parsed.string("spec") == "s.yaml" && parsed.int("top") == 3)
    guard case .run(let options) = try run("grid --top 3 s.yaml") else { Issue.record("expected a run"); return }
    #expect(options.commandPath == ["grid", "run"] && options.string("spec") == "s.yaml")
  }

  @Test func namedCommandsAndHelpStayTheGroups() throws {
    guard case .run(let parsed) = try run("grid list") else { Issue.record("expected a run"); return }
    #expect(parsed.commandPath == ["grid", "list"])
    guard case .help(let path) = try run("grid --help") else { Issue.record("expected the group's help"); return }
    #expect(path == ["grid"])
  }
}
