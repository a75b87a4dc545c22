import Testing

@testable import QtoolArgs

@Suite struct TreeValidatorTests {
  @Test func sampleTreeIsValid() {
    #expect(TreeValidator.problems(in: sampleTree) == [])
  }

  @Test func findsClashesAndMissingDocumentation() {
    let tree = CommandSpec(
      name: "t", abstract: "x", options: [.flag("json", short: "j", help: "JSON.")],
      subcommands: [
        CommandSpec(
          name: "a", abstract: "",
          options: [
            .flag("json", help: "again"),
            .value("jobs", short: "j", .int, valueName: "", help: ""),
            .value("mode", .choice(["Fast"]), valueName: "m", help: "Mode."),
            .value("n", .int, valueName: "n", help: "N.", defaultValue: "x"),
          ],
          positionals: [PositionalSpec("rest", arity: .variadic, help: "r"), PositionalSpec("last", help: "l")]),
        CommandSpec(name: "a", abstract: "dup"),
      ])
    let problems = TreeValidator.problems(in: tree)
    #expect(problems.contains("t: subcommand name 'a' is used twice"))
    #expect(problems.contains("t a: no abstract"))
    #expect(problems.contains("t a: option --json is declared twice (a group's options clash with a command's)"))
    #expect(problems.contains("t a: short option -j is declared twice"))
    #expect(problems.contains("t a: --jobs has no help text"))
    #expect(problems.contains("t a: --jobs takes a value but has no value name"))
    #expect(problems.contains("t a: --mode choice 'Fast' is not lower-case ASCII"))
    #expect(problems.contains("t a: --n default 'x' is not a whole number like 42"))
    #expect(problems.contains("t a: variadic <rest> must be last"))
  }
}
