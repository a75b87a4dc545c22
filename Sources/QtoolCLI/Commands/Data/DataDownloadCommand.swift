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

      Each dataset being written is leased: downloads of other datasets run side by side, and a \
      second writer of the same dataset exits 75 naming the holder (pid, host, job), or waits \
      with --wait. If some symbols fail, the others still finish; the exit code is then 75 when \
      every failure is temporary (rate limit, server error, network) and 69 otherwise. Every \
      download is a job (qtool jobs list).
      """,
    options: [
      .value("source", .choice(SourceFactory.names), valueName: "source", help: "Where to fetch from.", required: true),
      .value("symbols", valueName: "symbols", help: "Symbols to fetch, e.g. BTCUSDT,ETHUSDT.", required: true, list: true),
      .value("timeframe", short: "t", .timeframe, valueName: "timeframe", help: "Bar timeframe, e.g. 1m, 1h, 1d.", required: true),
      .value("from", .date, valueName: "date", help: "Start of history (required for a new dataset)."),
      .value("to", .date, valueName: "date", help: "End (exclusive; default: now)."),
      .flag("full", help: "Refetch the whole range, not only what is missing."),
      .value("jobs", short: "j", .int, valueName: "n", help: "Transfers at once.", defaultValue: "4"),
      DataOptions.wait,
      .value("proxy", valueName: "url", help: "Proxy for this run, e.g. socks5://127.0.0.1:1080 (config: proxy)."),
      .flag("adjusted", help: "yahoo: store split- and dividend-adjusted prices."),
      .value("url", valueName: "location", help: "csv: URL or path of the file; {symbol} is replaced by each symbol."),
      .value("retries", .int, valueName: "n", help: "Attempts per request before giving up.", defaultValue: "5"),
    ] + DataOptions.csv + [CommonOptions.json],
    examples: [
      Example("qtool data download --source binance --symbols BTCUSDT,ETHUSDT -t 1h --from 2024-01-01", "Hourly crypto bars"),
      Example("qtool data download --source binance-bulk --symbols BTCUSDT -t 1d --from 2021-01-01 --jobs 8", "Years of archives, 8 at a time"),
      Example("qtool data download --source yahoo --symbols AAPL,MSFT -t 1d --from 2015-01-01", "Daily equities"),
      Example("0 1 * * * qtool data download --source binance --symbols BTCUSDT -t 1h --quiet", "Nightly cron: only new bars"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    guard let jobs = arguments.int("jobs"), jobs >= 1, jobs <= 64 else {
      throw UsageError("--jobs: expected 1 to 64", commandPath: arguments.commandPath)
    }
    let request = DownloadRequest(
      source: arguments.string("source")!, symbols: arguments.strings("symbols"), timeframe: Timeframe(arguments.string("timeframe")!)!,
      from: DataOptions.milliseconds(arguments, "from"), to: DataOptions.milliseconds(arguments, "to"), full: arguments.flag("full"),
      jobs: jobs, wait: arguments.flag("wait"), adjusted: arguments.flag("adjusted"), location: arguments.string("url"),
      csv: try DataOptions.csvOptions(arguments), retry: RetryPolicy(maxAttempts: max(1, arguments.int("retries")!)))
    var settings = try context.settings()
    if let proxy = arguments.string("proxy") { settings = settings.overriding("proxy", with: proxy) }
    let report = try DataOperations(try context.operations()).download(request, settings: settings)
    if context.json {
      try context.printJSON(report)
    } else {
      for symbol in report.symbols {
        switch symbol.status {
        case "up_to_date": context.stdout.line("\(symbol.dataset): up to date, nothing to download")
        case "failed": context.stdout.line("\(symbol.dataset): FAILED after \(symbol.barsAdded) bars: \(symbol.error ?? "")")
        default:
          var line = "\(symbol.dataset): +\(symbol.barsAdded) bars"
          if symbol.gapsFilled > 0 { line += ", \(symbol.gapsFilled) gaps filled" }
          line += " (\(symbol.requests) requests, \(Format.bytes(symbol.bytes))"
          if symbol.retries > 0 { line += ", \(symbol.retries) retries" }
          if symbol.missingFiles > 0 { line += ", \(symbol.missingFiles) archives not published" }
          context.stdout.line(line + ")")
        }
      }
      context.note("downloaded \(report.barsAdded) bars for \(report.symbols.count) symbols in \(Format.duration(report.seconds))")
    }
    guard let failure = report.failure else { return .success }
    return failure.exitStatus
  }
}
