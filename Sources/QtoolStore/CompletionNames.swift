import GRDB

extension QtoolDatabase {
  /// Ids of recorded backtest runs, newest first (for shell completion).
  public func runIDs(limit: Int = 200) throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT id FROM backtest_runs ORDER BY rowid DESC LIMIT ?", arguments: [limit]) }
  }

  /// Ids of recorded jobs, newest first (for shell completion).
  public func jobIDs(limit: Int = 200) throws -> [String] {
    try read { try String.fetchAll($0, sql: "SELECT id FROM jobs ORDER BY rowid DESC LIMIT ?", arguments: [limit]) }
  }
}
