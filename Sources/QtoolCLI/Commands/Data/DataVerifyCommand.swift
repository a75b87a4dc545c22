import QtoolArgs
import QtoolCore
import QtoolEngine

enum DataVerifyCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "verify", abstract: "Check datasets for gaps, duplicates and impossible bars",
    discussion: """
      Gaps are judged against each dataset's trading calendar: on 24x7 (crypto) every bar of the \
      timeframe is expected; on weekdays (equities, FX) weekends are never gaps, one or two \
      missing weekdays in a row are reported as a possible holiday (a warning), and three or more \
      missing weekdays in a row are a gap. Also checked: OHLC order (low ≤ open, close ≤ high), \
      non-negative volume, finite numbers, and timestamps on the timeframe's grid. Exits 65 when \
      any dataset has a problem, and names the months to fetch again (`refetch 2024-03: qtool data \
      download … --full`); that download reports the bars it added, replaced and removed.
      """,
    options: [
      .value("limit", .int, valueName: "n", help: "Findings to print per dataset (all with --json).", defaultValue: "20"),
      CommonOptions.json,
    ],
    positionals: [PositionalSpec("dataset", arity: .optional, help: "The dataset to check (default: all).", completion: .dynamic("datasets"))],
    examples: [Example("qtool data verify BTCUSDT-1d || echo 'fix the data first'", "Fail a cron job on bad data")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let results = try DataOperations(try context.operations()).verify(name: context.arguments.string("dataset"))
    let failed = results.contains { !$0.report.ok }
    if context.json {
      try context.printJSON(results)
      return failed ? .dataError : .success
    }
    let limit = max(0, context.arguments.int("limit")!)
    let color = context.terminal.colorOnStdout
    for result in results {
      let report = result.report
      let status = report.ok ? Terminal.green("ok", color) : Terminal.red("FAILED", color)
      var line = "\(result.dataset): \(status) — \(DisplayFormat.plural(report.bars, "bar")), \(result.calendar) calendar"
      if !report.problems.isEmpty { line += ", \(DisplayFormat.plural(report.problems.count, "problem"))" }
      if !report.warnings.isEmpty { line += ", \(DisplayFormat.plural(report.warnings.count, "warning"))" }
      context.stdout.line(line)
      for finding in report.problems.prefix(limit) { context.stdout.line("  " + describe(finding)) }
      if report.problems.count > limit { context.stdout.line("  … \(report.problems.count - limit) more problems (--json lists all)") }
      for hint in result.refetch {
        context.stdout.line("  refetch \(hint.months)" + (hint.command.map { ": \($0)" } ?? " from its source"))
      }
      for finding in report.warnings.prefix(limit) { context.stdout.line("  warning: \(finding.message)") }
      if report.warnings.count > limit { context.stdout.line("  … \(report.warnings.count - limit) more warnings") }
    }
    if results.isEmpty { context.note("no datasets to verify") }
    return failed ? .dataError : .success
  }

  /// A problem with the date of its bar (a gap's message names both ends already).
  static func describe(_ finding: VerifyFinding) -> String {
    if finding.kind == .gap { return "\(finding.kind.rawValue): \(finding.message)" }
    return "\(finding.kind.rawValue) at \(UTCCalendar.format(finding.timestamp)): \(finding.message)"
  }
}
