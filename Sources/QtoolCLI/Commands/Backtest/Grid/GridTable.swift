import QtoolCore

/// The metric columns of a grid's tables (run, merge, show): the metric the rows are ranked or
/// sorted by first, so the order is visible, then the usual four.
enum GridTable {
  static func metricColumns(first: String) -> [String] {
    [first] + ["sharpe", "total_return", "max_drawdown", "trades"].filter { $0 != first }
  }
}
