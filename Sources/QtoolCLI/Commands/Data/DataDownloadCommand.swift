import QtoolArgs
import QtoolCore
import QtoolData
import QtoolEngine

enum DataDownloadCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "download", abstract: "Fetch bars from a source into the store (incremental, resumable, verified)",
    discussion: """
      Fetches only what is missing: bars before the first stored one (back to --from), gaps in \
      the middle, and bars after the last one (up to --to or now). A second identical run \
      downloads nothing and says so; --full refetches the whole range. Every response's bars \
      are committed in their own transaction, so a run killed at any moment leaves the store \
      consistent and the next run completes the work. Bars still open are never stored.

      Sources: binance (REST klines), binance-bulk (monthly/daily archives, SHA-256 checked), \
      yahoo (v8 chart), stooq (daily/weekly/monthly CSV), csv (--url with {symbol}). Base URLs \
      come from config sources.<name>.base_url or QTOOL_SOURCE_<NAME>_URL.

      Nothing the source did not send is stored: a body cut short is fetched again, an archive \
      whose .CHECKSUM cannot be fetched is not stored (unless --no-verify, which records it as \
      unverified in the dataset), a bad row (not a finite positive price, high below low, off \
      the timeframe's grid, two rows at one time with different values) refuses its whole file, \
      and a row without values is left out and reported, never filled in.

      Each dataset being written is leased: downloads of other datasets run side by side, and a \
      second writer of the same dataset exits 75 naming the holder (pid, host, job), or waits \
      with --wait. Every download is a job (qtool jobs list). If some symbols fail, the others \
      still finish. Failures and holes are printed \
      on stderr (even with --quiet). Exit codes for cron: 0 everything requested is stored, or \
      nothing new is due; 75 temporary — rate limited, server errors, network, a checksum that \
      could not be fetched, or a hole in the middle of the range the source may still fill (run \
      again later; --accept-missing PERIOD records a hole the source will never fill); 65 the \
      source sent bad rows; 69 the source is unavailable or sent no bars at all (check the \
      symbol); 64 a wrong option.

      Limits (config download.*, env QTOOL_DOWNLOAD_*): retry_after_cap (120 s; a longer \
      Retry-After fails at once with 75), min_speed (1024 bytes/s) over stall_timeout (30 s), \
      file_timeout (600 s per file), max_response_mib (64) and max_archive_mib (1024).
      """,
    options: [
      .value("source", .choice(SourceFactory.names), valueName: "source", help: "Where to fetch from.", required: true),
      .value("symbols", valueName: "symbols", help: "Symbols to fetch, e.g. BTCUSDT,ETHUSDT.", required: true, list: true),
      .value("timeframe", short: "t", .timeframe, valueName: "timeframe", help: "Bar timeframe, e.g. 1m, 1h, 1d.", required: true),
      .value("from", .date, valueName: "date", help: "Start of history (required for a new dataset)."),
      .value("to", .date, valueName: "date", help: "End (exclusive; default: now)."),
      .flag("full", help: "Refetch the whole range, not only what is missing; reports bars replaced and removed."),
      .value("jobs", short: "j", .int, valueName: "n", help: "Transfers at once.", defaultValue: "4"),
      DataOptions.wait,
      .value("proxy", valueName: "url", help: "Proxy for this run, e.g. socks5://127.0.0.1:1080 (config: proxy)."),
      .flag("adjusted", help: "yahoo: store split- and dividend-adjusted prices."),
      .value("url", valueName: "location", help: "csv: URL or path of the file; {symbol} is replaced by each symbol."),
      .value("retries", .int, valueName: "n", help: "Attempts per request before giving up.", defaultValue: "5"),
      .flag("no-verify", help: "binance-bulk: store an archive whose .CHECKSUM cannot be fetched, recorded as unverified."),
      .value(
        "accept-missing", valueName: "period",
        help: "Accept a hole the source will not fill: 2024-03, 2024-03-05 or FROM..TO (recorded in the dataset).", list: true),
    ] + DataOptions.csv + [CommonOptions.json],
    examples: [
      Example("qtool data download --source binance --symbols BTCUSDT,ETHUSDT -t 1h --from 2024-01-01", "Hourly crypto bars"),
      Example("qtool data download --source binance-bulk --symbols BTCUSDT -t 1d --from 2021-01-01 --jobs 8", "Years of archives, 8 at a time"),
      Example("qtool data download --source yahoo --symbols AAPL,MSFT -t 1d --from 2015-01-01", "Daily equities"),
      Example("0 1 * * * qtool data download --source binance --symbols BTCUSDT -t 1h --quiet 2>>cron.log", "Nightly cron: only new bars"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let jobs = arguments.int("jobs"), jobs >= 1, jobs <= 64 else {
      throw UsageError("--jobs: expected 1 to 64", commandPath: arguments.commandPath)
    }
    let accepted = try arguments.strings("accept-missing").map { text -> Range<Int64> in
      guard let range = AcceptedPeriod.parse(text) else {
        throw UsageError("--accept-missing: expected 2024-03, 2024-03-05 or FROM..TO, got '\(text)'", commandPath: arguments.commandPath)
      }
      return range
    }
    let request = DownloadRequest(
      source: arguments.string("source")!, symbols: arguments.strings("symbols"), timeframe: Timeframe(arguments.string("timeframe")!)!,
      from: DataOptions.milliseconds(arguments, "from"), to: DataOptions.milliseconds(arguments, "to"), full: arguments.flag("full"),
      jobs: jobs, wait: arguments.flag("wait"), adjusted: arguments.flag("adjusted"), location: arguments.string("url"),
      csv: try DataOptions.csvOptions(arguments), retry: RetryPolicy(maxAttempts: max(1, arguments.int("retries")!)),
      noVerify: arguments.flag("no-verify"), acceptMissing: accepted)
    var settings = try context.settings()
    if let proxy = arguments.string("proxy") { settings = settings.overriding("proxy", with: proxy) }
    let stderr = context.stderr
    let quiet = context.quiet
    let report = try DataOperations(try context.operations()).download(request, settings: settings) { note in
      if !quiet { stderr.line(note) }
    }
    if context.json {
      try context.printJSON(report)
    } else {
      for symbol in report.symbols { context.stdout.line(summary(symbol)) }
    }
    // Failures and holes on stderr whatever the flags: a cron job's `2>>log` keeps them.
    for symbol in report.symbols {
      for failure in symbol.failures { context.stderr.line("qtool: error: \(Terminal.printable("\(failure)"))") }
      for hint in symbol.hints { context.stderr.line("qtool: hint: \(hint.rendered(option: ErrorOutput.flag))") }
    }
    if !context.json {
      for symbol in report.symbols {
        for note in symbol.notes { context.note(note) }
        for row in symbol.dropped { context.note("\(symbol.dataset): left out \(row)") }
        if symbol.rowsDropped > symbol.dropped.count {
          context.note("\(symbol.dataset): … and \(symbol.rowsDropped - symbol.dropped.count) more rows left out (--json lists the first five)")
        }
      }
      context.note("downloaded \(DisplayFormat.plural(report.barsAdded, "bar")) for \(DisplayFormat.plural(report.symbols.count, "symbol")) in \(Format.duration(report.seconds))")
    }
    if context.json, let failure = report.failure { context.stderr.line(ErrorOutput.json(ErrorOutput.report(failure))) }
    return report.exitStatus
  }

  /// `BTCUSDT-1d: +59 bars, 2 replaced (4 requests, 120 KB)` for stdout.
  static func summary(_ symbol: DownloadReport.Symbol) -> String {
    let changed = symbol.barsAdded + symbol.barsReplaced + symbol.barsRemoved > 0
    var line = "\(symbol.dataset): "
    if symbol.requests == 0 && symbol.status == "up_to_date" { return line + "up to date, nothing to download" }
    line += symbol.status == "up_to_date" && !changed ? "up to date, nothing new" : "+\(DisplayFormat.plural(symbol.barsAdded, "bar"))"
    if symbol.status == "failed" { line += ", failed (see stderr)" }
    if symbol.barsReplaced > 0 { line += ", \(symbol.barsReplaced) replaced" }
    if symbol.barsRemoved > 0 { line += ", \(symbol.barsRemoved) removed" }
    if symbol.gapsFilled > 0 { line += ", \(DisplayFormat.plural(symbol.gapsFilled, "gap")) filled" }
    if !symbol.holes.isEmpty { line += ", \(symbol.holes.count) \(symbol.holes.count == 1 ? "hole" : "holes") left (see stderr)" }
    line += " (\(DisplayFormat.plural(symbol.requests, "request")), \(Format.bytes(symbol.bytes))"
    if symbol.retries > 0 { line += ", \(symbol.retries) retries" }
    if symbol.missingFiles > 0 { line += ", \(symbol.missingFiles) archives not published" }
    if symbol.rowsDropped > 0 { line += ", \(DisplayFormat.plural(symbol.rowsDropped, "row")) without values left out" }
    if symbol.duplicatesDropped > 0 { line += ", \(symbol.duplicatesDropped) identical duplicate rows dropped" }
    if !symbol.unverifiedFiles.isEmpty { line += ", \(symbol.unverifiedFiles.count) archives stored unverified" }
    return line + ")"
  }
}
