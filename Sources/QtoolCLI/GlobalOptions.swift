import QtoolArgs

/// Every option shared by more than one command, declared once. The root's options are global:
/// accepted anywhere on the command line and shown once in help.
enum GlobalOptions {
  static let all: [OptionSpec] = [
    .value(
      "db", .path(.namedFile(extensions: ["db", "sqlite"])), valueName: "path",
      help: "The SQLite store to use.", environment: "QTOOL_DB"),
    .value(
      "home", .path(.directory), valueName: "dir",
      help: "Directory holding qtool.db when --db is not given.", environment: "QTOOL_HOME"),
    .value(
      "config", .path(.namedFile(extensions: ["yaml", "yml"])), valueName: "file",
      help: "Config file (default: $XDG_CONFIG_HOME/qtool/config.yaml).", environment: "QTOOL_CONFIG"),
    .flag("quiet", short: "q", help: "Print only results and errors: no progress, notes or confirmations."),
    .flag("verbose", short: "v", help: "Log more to stderr; repeat (-vv) for debug detail."),
    .value(
      "color", .choice(["auto", "always", "never"]), valueName: "when",
      help: "Colour output; auto means on a terminal unless NO_COLOR is set.", defaultValue: "auto"),
    .flag("help", short: "h", help: "Show help for the command and exit."),
    .flag("version", short: "V", help: "Print the version and exit."),
  ]
}

/// Options that several leaf commands attach; each is declared once here.
enum CommonOptions {
  static let json = OptionSpec.flag("json", help: "Print the result as JSON with stable field names.")
  static let force = OptionSpec.flag("force", short: "f", help: "Replace an existing file.")
}
