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
        DataDeleteCommand.self, DataPreprocessCommand.self, DataSnapshotCommand.self,
      ]),
    CommandGroup(
      name: "strategy", abstract: "Create, validate and list strategy specs; run them live on paper",
      discussion: "A strategy is a YAML or JSON spec (qtool help rules). Registered strategies keep every version of their text.",
      leaves: [
        StrategyNewCommand.self, StrategyListCommand.self, StrategyShowCommand.self, StrategyValidateCommand.self, StrategyVersionsCommand.self,
        StrategyDiffCommand.self, StrategyDeleteCommand.self,
        StrategyRunCommand.self, StrategyStartCommand.self, StrategyStopCommand.self, StrategyStatusCommand.self, StrategyPauseCommand.self,
        StrategyResumeCommand.self, StrategyRunsCommand.self, StrategyLogsCommand.self,
      ]),
    CommandGroup(
      name: "backtest", abstract: "Run strategies on stored data, and inspect recorded runs",
      leaves: [
        BacktestRunCommand.self, BacktestListCommand.self, BacktestShowCommand.self, BacktestCompareCommand.self, BacktestReplayCommand.self,
        BacktestCheckCommand.self, BacktestExportCommand.self, BacktestDeleteCommand.self,
      ],
      groups: [
        CommandGroup(
          name: "grid", abstract: "Run every combination of param values (grid run, the default), and open stored grids",
          discussion: "qtool backtest grid SPEC --grid … runs a grid (grid run); grid list and grid show open the grids stored so far.",
          leaves: [BacktestGridCommand.self, GridListCommand.self, GridShowCommand.self, GridOpenCommand.self, GridMergeCommand.self, GridResumeCommand.self], defaultLeaf: "run")
      ]),
    CommandGroup(
      name: "train", abstract: "Train models on rules-language features, and inspect them",
      discussion:
        "A model spec names features (rules-language expressions), a label that looks ahead, a family (gbt through XGBoost, logistic, ridge) and a split or walk-forward windows. Strategies read a trained model's predictions as model(\"name\").",
      leaves: [
        TrainNewCommand.self, TrainRunCommand.self, TrainListCommand.self, TrainShowCommand.self, TrainMetricsCommand.self, TrainPredictCommand.self,
        TrainExportCommand.self, TrainImportCommand.self, TrainDeleteCommand.self,
      ]),
    CommandGroup(
      name: "jobs", abstract: "List, inspect, cancel and wait for long operations",
      discussion:
        "Downloads, imports, preprocessing, backtests, grids and walk-forwards run as jobs: each is recorded from start to end, can be cancelled from another terminal, and shows as interrupted when its process died.",
      leaves: [JobsListCommand.self, JobsShowCommand.self, JobsCancelCommand.self, JobsWaitCommand.self, JobsPruneCommand.self]),
    CommandGroup(
      name: "signals", abstract: "Follow, list, count and send the signals of live strategies",
      discussion: "Every decision of a strategy running on paper (qtool strategy run|start) is a signal: BUY, SELL or HOLD, with its action, reason, strength, price and the rules' indicators.",
      leaves: [SignalsTailCommand.self, SignalsListCommand.self, SignalsStatsCommand.self],
      groups: [
        CommandGroup(
          name: "notify", abstract: "Send signals to webhooks, commands and chats",
          discussion: "A channel gets every signal its filters match, delivered off the decision path with retries; secrets stay in environment variables or files.",
          leaves: [
            SignalsNotifyAddCommand.self, SignalsNotifyListCommand.self, SignalsNotifyTestCommand.self, SignalsNotifyHistoryCommand.self,
            SignalsNotifyRemoveCommand.self,
          ])
      ]),
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
      groups: [
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
      qtool downloads market data into a local SQLite store (data), cleans it, backtests \
      declarative strategies and compares runs (strategy, backtest), trains models (train), runs \
      strategies on paper and sends their signals (strategy run, signals), and serves all of it \
      over a REST API (serve). Results go to stdout (add --json for scripts); progress, notes and \
      errors go to stderr.
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
