import QtoolArgs
import QtoolCore
import QtoolEngine

/// Help pages that are not commands: `qtool help exit-codes`. The man page renders the same text.
enum HelpTopics {
  struct Topic {
    var name: String
    var abstract: String
    var manSection: String
    var text: String
    /// Paragraphs for the man page; tab-separated lines become tagged lists.
    var manBody: [String]
  }

  static let all: [Topic] = [exitCodes, metrics, rules, json, environment, files]

  static let metrics: Topic = {
    let text =
      "Metrics (names for --assert; ratios are fractions, drawdowns negative):\n"
      + Metrics.definitions.map { name, meaning in
        "  " + name.padding(toLength: 24, withPad: " ", startingAt: 0) + meaning
      }.joined(separator: "\n")
      + "\n\nPer-bar returns come from the equity marked at each close; bars per year are 252 on the weekdays calendar and 365 on 24x7 for daily bars, scaled for other timeframes. A run with --from is measured on the bars it trades, not on those that warmed its indicators up.\n\n"
      + Metrics.undefinedRule + "\n"
    return Topic(
      name: "metrics", abstract: "what each backtest metric means", manSection: "METRICS", text: text,
      manBody: [Metrics.definitions.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"), Metrics.undefinedRule])
  }()

  static let rules: Topic = {
    let functions = Functions.all.keys.sorted().map { name in
      let signature = Functions.all[name]!
      return (Functions.usage(name), signature.help)
    }
    let text = """
      Rules are conditions evaluated on each bar's close, e.g.
        entry: cross_above(sma(close, fast), sma(close, slow)) and rsi(close, 14) < 70

      Values: numbers, the params of the spec, open high low close volume, x[n] (n bars ago),
      true and false (entry: true buys and holds; exit: false leaves exits to stops and targets).
      Operators, loosest first: or (also ||), and (also &&), not, < <= > >= == !=, + -, * /,
      unary -.
      Functions (x: a series; n: a whole-number period and k: a width such as 2.5, each a literal
      or a param; an argument shown with =value may be left out, and then has that value):

      """ + functions.map { "  " + $0.0.padding(toLength: max(34, $0.0.count + 1), withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n") + "\n\n" + modelText
      + "\n\n" + specText + "\n"
    return Topic(
      name: "rules", abstract: "the rules language of strategy specs", manSection: "RULES", text: text,
      manBody: [
        "Rules are conditions evaluated on each bar's close. Values: numbers, params, open, high, low, close, volume, x[n], true and false (entry: true buys and holds; exit: false leaves exits to stops and targets). Operators, loosest first: or (also ||), and (also &&), not, comparisons, + -, * /, unary -.",
        functions.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"), modelText, specText,
      ])
  }()

  /// model(), and the look-ahead functions of a model's label.
  static let modelText = """
    model("name") is a trained model's prediction on each bar (qtool train): the probability \
    of a binary label, the value of a regression, the class of a multi-class one, e.g. \
    entry: model("goog-up") > 0.6. Backtests and the live runner (strategy run|start) read \
    out-of-sample predictions only; each live signal records the model versions it read.
    A model spec's features are expressions of this language; its label may look ahead with \
    forward_return(x, n) (x n bars later over x, minus 1) and future(x, n) (x n bars later), \
    e.g. label: forward_return(close, 5) > 0. Anywhere else they are refused: a strategy or a \
    feature that reads later bars would trade on the future.
    """

  /// The rules a spec may hold beyond entry and exit, its signals section, and what a
  /// registered strategy's status means.
  static let specText = """
    A spec's rules: entry and exit open and close a long position; short_entry and short_exit \
    (optional) open and close a short one, e.g. short_entry: cross_below(sma(close, fast), \
    sma(close, slow)).
    signals: grades the live signals of qtool strategy run|start: strength is a rules expression \
    whose value, clipped to 0-100, is a signal's strength (100 without one; conditions count as 1 \
    and 0 in it, e.g. (rsi(close, 14) < 30) * 50 + 50); strong, medium and \
    weak are the thresholds of its level (else none); emit_hold: true records a HOLD on every bar \
    without a BUY or SELL. E.g. signals: { strength: "100 - rsi(close, 14)", strong: 70, medium: 40, weak: 10 }.
    A registered strategy's status (qtool strategy list): draft (registered, never run on paper), \
    active (a runner trades it on paper), paused (deciding, but no new entries and no \
    notifications), stopped (its runner stopped), error (its runner failed or died).
    """

  static func named(_ name: String) -> Topic? { all.first { $0.name == name } }

  static let exitCodes: Topic = {
    let rows = ExitStatus.allCases.map { ("\($0.rawValue)", $0.meaning) }
    let categories = ErrorCategory.allCases.map { ($0.rawValue, "\($0.exitStatus.rawValue)") }
    // padding(toLength:) cuts a longer name ("method_not_allow64"): the column fits the longest.
    let width = (categories.map(\.0.count).max() ?? 0) + 2
    let cancelling =
      "Ctrl-C, SIGTERM and `qtool jobs cancel ID` cancel the running operation at its next block boundary (a batch of bars, a piece of a file, a batch of grid combinations, a finished transfer): what it had not committed is rolled back, the job is recorded as cancelled, and the exit code is 130 (143 for SIGTERM). A second Ctrl-C forces an immediate exit."
    let json =
      "With --json, a failing command also prints {\"error\": {\"code\", \"category\", \"message\", \"details\", \"hint\"}} on stderr. The code is stable (e.g. dataset_not_found, lease_held); the category decides the exit code:"
    let downloads =
      "Downloads: 75 when a later run may succeed and nothing of the file was stored: rate limits, server errors, a stalled or truncated transfer, an archive whose .CHECKSUM could not be fetched, and an archive that does not match its .CHECKSUM (in practice a CDN error page or a cut transfer, named in the message; it is fetched again before failing). 65 when the rows the source sent are wrong in themselves; 69 when the source refuses for good or sends no bars."
    let closedPipe = "A closed output pipe (qtool … | head) exits 0 quietly."
    let text =
      "Exit codes:\n"
      + rows.map { code, meaning in
        "  " + code.padding(toLength: 5, withPad: " ", startingAt: 0) + meaning
      }.joined(separator: "\n") + "\n\n\(cancelling)\n\n\(json)\n"
      + categories.map { "  " + $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
      + "\n\n\(downloads)\n\n\(closedPipe)\n"
    return Topic(
      name: "exit-codes", abstract: "the exit codes scripts can rely on", manSection: "EXIT STATUS", text: text,
      manBody: [
        rows.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"), cancelling, json, categories.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"),
        downloads, closedPipe,
      ])
  }()

  /// The one vocabulary of every `--json` output (and of the server's `data`).
  static let jsonRows: [(String, String)] = [
    ("times", "ISO-8601 UTC strings, always with the time: 2024-01-31T00:00:00Z (milliseconds when not zero)"),
    ("*_at", "when something happened: created_at, updated_at, started_at, finished_at, decided_at"),
    ("first, last", "the first and the last bar of a range (a dataset, a run, a window)"),
    ("time", "a bar's open time (data export --format jsonl, data info samples, findings of data verify)"),
    ("entry_time, exit_time", "a trade's fills"),
    ("dataset", "a dataset's name, wherever one is meant (also in data list)"),
    ("strategy", "a strategy's name, wherever one is meant (also in strategy list)"),
    ("strategy_version", "the registered version whose spec a run used (backtest run; absent for a spec never registered)"),
    ("halted_at", "when risk.max_drawdown_halt (or ruin) stopped a run's trading, halt_reason why; absent or null when it never did"),
    ("params", "a strategy's param values: {\"fast\": 10, \"slow\": 30}"),
    ("bars", "how many bars a dataset, run or result has; rows_read counts input rows, bars_added and bars_replaced what a write changed"),
    ("gaps", "how many gaps (bars missing on the calendar) a dataset has"),
    ("parent", "the dataset a derived one was made from"),
    ("id, *_id", "an object's own id; run_id, job_id, grid_id refer to others"),
    ("metrics", "an object of metric name → number (qtool help metrics); undefined ones are null"),
    ("deleted", "what a delete removed, in the shape its list shows it"),
    ("numbers", "JSON has no inf or NaN: non-finite values are null, documented where they occur"),
    ("nesting", "stored JSON (pipelines, metadata, settings) is nested as objects, never quoted in strings"),
    ("errors", "with --json, a failure prints {\"error\": {code, category, message, details, hint}} on stderr (qtool help exit-codes)"),
  ]

  static let json: Topic = {
    let text =
      "JSON (every --json output, and the server's responses, use one vocabulary):\n"
      + jsonRows.map { name, meaning in "  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + meaning }.joined(separator: "\n") + "\n"
    return Topic(
      name: "json", abstract: "the field names and formats of --json output", manSection: "JSON OUTPUT", text: text,
      manBody: [jsonRows.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n")])
  }()

  static let environment: Topic = {
    let rows = [
      ("QTOOL_HOME", "directory holding qtool.db (default $XDG_DATA_HOME/qtool, else ~/.local/share/qtool)"),
      ("QTOOL_DB", "path of the SQLite store; overrides QTOOL_HOME"),
      ("QTOOL_CONFIG", "config file (default $XDG_CONFIG_HOME/qtool/config.yaml, else ~/.config/qtool/config.yaml)"),
      ("QTOOL_PROXY", "proxy URL for data sources"),
      ("QTOOL_SOURCE_<NAME>_URL", "base URL of a data source, e.g. QTOOL_SOURCE_BINANCE_BULK_URL"),
      ("NO_COLOR", "when set and not empty, no colour is printed"),
    ]
    let text =
      "Environment:\n"
      + rows.map { name, meaning in
        "  " + name + "\n      " + meaning
      }.joined(separator: "\n") + "\n\nPrecedence: command-line flag > environment > config file > default.\n"
    return Topic(
      name: "environment", abstract: "environment variables qtool reads", manSection: "ENVIRONMENT",
      text: text,
      manBody: [rows.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"), "Precedence: command-line flag > environment > config file > default."])
  }()

  static let files: Topic = {
    let text = """
      Files:
        $QTOOL_HOME/qtool.db
            the store: datasets, bars, strategies, runs (SQLite, WAL mode)
        $XDG_CONFIG_HOME/qtool/config.yaml
            settings, e.g.
              db: /data/qtool.db
              proxy: socks5://127.0.0.1:1080
              sources:
                binance:
                  base_url: https://api.binance.com

      """
    return Topic(
      name: "files", abstract: "where qtool keeps its store and config", manSection: "FILES", text: text,
      manBody: [
        "$QTOOL_HOME/qtool.db\tthe store: datasets, bars, strategies, runs (SQLite, WAL mode)\n$XDG_CONFIG_HOME/qtool/config.yaml\tsettings: db, home, proxy, sources.<name>.base_url"
      ])
  }()

  static var manSections: [ManPageRenderer.Section] {
    all.map { ManPageRenderer.Section(title: $0.manSection, body: $0.manBody) }
  }
}
