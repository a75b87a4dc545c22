import QtoolArgs

/// The whole command tree, assembled from each command file's spec. Parsing, help, the man page
/// and the completion scripts all come from `root`.
enum CommandTree {
  static let groups: [CommandGroup] = [
    CommandGroup(
      name: "data", abstract: "Download, import, inspect and clean market data",
      discussion: "Datasets are bars of one instrument at one timeframe, stored in the SQLite store and named SYMBOL-TIMEFRAME unless you name them.",
      leaves: [
        DataDownloadCommand.self, DataImportCommand.self, DataListCommand.self, DataInfoCommand.self, DataVerifyCommand.self, DataExportCommand.self,
        DataDeleteCommand.self, DataPreprocessCommand.self,
      ]),
    CommandGroup(
      name: "strategy", abstract: "Create, validate and list strategy specs",
      discussion: "A strategy is a YAML or JSON spec (qtool help rules). Registered strategies keep every version of their text.",
      leaves: [
        StrategyNewCommand.self, StrategyListCommand.self, StrategyShowCommand.self, StrategyValidateCommand.self, StrategyVersionsCommand.self,
      ]),
    CommandGroup(
      name: "backtest", abstract: "Run strategies on stored data, and inspect recorded runs",
      leaves: [
        BacktestRunCommand.self, BacktestListCommand.self, BacktestShowCommand.self, BacktestCompareCommand.self, BacktestGridCommand.self,
        BacktestReplayCommand.self, BacktestCheckCommand.self, BacktestExportCommand.self, BacktestDeleteCommand.self,
      ]),
    CommandGroup(
      name: "jobs", abstract: "List, inspect, cancel and wait for long operations",
      discussion: "Downloads, imports, preprocessing, backtests, grids and walk-forwards run as jobs: each is recorded from start to end, can be cancelled from another terminal, and shows as interrupted when its process died.",
      leaves: [JobsListCommand.self, JobsShowCommand.self, JobsCancelCommand.self, JobsWaitCommand.self, JobsPruneCommand.self]),
    CommandGroup(
      name: "db", abstract: "Inspect and maintain the SQLite store",
      discussion: "The store is one SQLite file in WAL mode (default $QTOOL_HOME/qtool.db). Migrations run whenever qtool opens it.",
      leaves: [DbInfoCommand.self, DbMigrateCommand.self, DbVacuumCommand.self, DbBackupCommand.self]),
    CommandGroup(
      name: "config", abstract: "Show qtool's effective configuration",
      leaves: [ConfigShowCommand.self]),
    CommandGroup(
      name: "auth", abstract: "Manage the users and API tokens of qtool serve",
      discussion: "Users log in to the REST API and the dashboard with a password (roles admin, trader, viewer); API tokens are for CI jobs and cron, with scopes. Passwords are stored as bcrypt hashes, tokens as SHA-256 hashes.",
      leaves: [],
      subgroups: [
        CommandGroup(
          name: "user", abstract: "Add, list and remove users, and set their passwords",
          leaves: [AuthUserAddCommand.self, AuthUserListCommand.self, AuthUserRemoveCommand.self, AuthUserPasswdCommand.self]),
        CommandGroup(
          name: "token", abstract: "Create, list and revoke API tokens",
          leaves: [AuthTokenCreateCommand.self, AuthTokenListCommand.self, AuthTokenRevokeCommand.self]),
      ]),
  ]

  static let topLevel: [any LeafCommand.Type] = [
    ServeCommand.self, VersionCommand.self, HelpCommand.self, CompletionsCommand.self, ManCommand.self, CompleteCommand.self,
  ]

  static let root = CommandSpec(
    name: "qtool",
    abstract: "a command-line quant workbench: market data, backtests, signals",
    discussion: """
      qtool downloads market data into a local SQLite store, cleans it, backtests declarative \
      strategies and compares runs. Results go to stdout (add --json for scripts); progress, \
      notes and errors go to stderr.
      """,
    options: GlobalOptions.all,
    subcommands: groups.map(\.spec) + topLevel.map { $0.spec },
    examples: [
      Example("qtool data import GOOG.csv --symbol GOOG --timeframe 1d", "Load a CSV file of daily bars"),
      Example("qtool data verify", "Check every dataset for gaps and impossible bars"),
      Example("qtool db info", "Show where the store is and what it holds"),
      Example("qtool help exit-codes", "List the exit codes scripts can rely on"),
    ])

  /// The leaf command at `path`, e.g. `["db", "info"]`.
  static func leaf(at path: [String]) -> (any LeafCommand.Type)? {
    if path.count == 1 { return topLevel.first { $0.spec.name == path[0] } }
    guard path.count >= 2, let group = groups.first(where: { $0.name == path[0] }) else { return nil }
    return group.leaf(at: path.dropFirst())
  }
}
