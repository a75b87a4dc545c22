import QtoolArgs
import QtoolCore

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

  static let all: [Topic] = [exitCodes, environment, files]

  static func named(_ name: String) -> Topic? { all.first { $0.name == name } }

  static let exitCodes: Topic = {
    let rows = ExitStatus.allCases.map { ("\($0.rawValue)", $0.meaning) }
    let text =
      "Exit codes:\n"
      + rows.map { code, meaning in
        "  " + code.padding(toLength: 5, withPad: " ", startingAt: 0) + meaning
      }.joined(separator: "\n") + "\n\nA closed output pipe (qtool … | head) exits 0 quietly.\n"
    return Topic(
      name: "exit-codes", abstract: "the exit codes scripts can rely on", manSection: "EXIT STATUS", text: text,
      manBody: [rows.map { "\($0.0)\t\($0.1)" }.joined(separator: "\n"), "A closed output pipe (qtool … | head) exits 0 quietly."])
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
