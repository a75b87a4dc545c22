import Foundation
import GRDB
import QtoolCore
import Testing

@testable import QtoolStore

/// The live tables: one transaction per bar, signals never twice, an outbox row per channel a
/// signal matches, and other processes' commits seen through `data_version`.
@Suite struct LiveTests {
  func account(_ id: String = "pa_1", strategy: String = "s") -> PaperAccountRecord {
    PaperAccountRecord(
      id: id, strategyName: strategy, strategyVersion: 1, specHash: "h", specText: "name: s", params: "{}", capital: 1_000, timeframe: "1d",
      symbols: "[\"X\"]", datasets: "[\"X-1d\"]", source: "csv", fromTs: nil, cash: 1_000, equity: 1_000, createdAt: 1, updatedAt: 1)
  }

  func signal(_ id: String, type: String = "BUY", strength: Double = 90, late: Bool = false, suppressed: Bool = false, bar: Int64 = 0) -> SignalRecord
  {
    SignalRecord(
      id: id, accountID: "pa_1", runID: nil, strategyName: "s", strategyVersion: 1, symbol: "X", timeframe: "1d", source: "csv", feed: "replay",
      barTs: bar, type: type, action: type == "BUY" ? "enter_long" : "exit_long", reason: "rule", strengthRaw: strength,
      strengthLevel: strength >= 80 ? "strong" : "weak", price: 1, indicators: "{}", late: late, suppressed: suppressed, createdAt: 10 + bar)
  }

  func commit(_ bar: Int64, signals: [SignalRecord], fills: [PaperFillRecord] = [], notify: Bool = true) -> BarCommit {
    BarCommit(
      accountID: "pa_1", runID: nil, barTs: bar, cash: 900, equity: 1_010, halted: false,
      positions: [PaperPositionRecord(symbol: "X", side: "long", size: 1, entryTs: bar, entryPrice: 100, peak: 101, stop: 90, target: nil)],
      fills: fills, signals: signals, notify: notify, now: 10 + bar)
  }

  @Test func aBarCommitsOnceAndItsSignalsNeverTwice() throws {
    for database in try BarsTests.stores() {
      try database.createAccount(account(), closingOpen: false)
      let fill = PaperFillRecord(
        ts: 5, symbol: "X", side: "buy", action: "enter_long", size: 1, price: 100, commission: 0.1, reason: "rule", pnl: nil, signalID: "a",
        createdAt: 5)
      let first = try database.commitBar(commit(5, signals: [signal("a", bar: 5)], fills: [fill]))
      #expect(first == BarCommitted(written: true, signals: 1, notifications: 0))
      // The same bar again (a second runner, a restart that raced): nothing written.
      let again = try database.commitBar(commit(5, signals: [signal("a", bar: 5)], fills: [fill]))
      #expect(again.written == false)
      // A later bar carrying a signal id already stored: the signal is not stored twice.
      _ = try database.commitBar(commit(6, signals: [signal("a", bar: 5), signal("b", bar: 6)]))
      #expect(try database.countSignals(SignalFilter()) == 2)
      #expect(try database.fills(accountID: "pa_1").count == 1)
      let stored = try database.account(id: "pa_1")
      #expect(stored.cursorTs == 6 && stored.equity == 1_010 && stored.cash == 900)
      #expect(try database.equityCurve(accountID: "pa_1").timestamps == [5, 6])
      #expect(try database.positions(accountID: "pa_1").count == 1)
      // One open account per strategy.
      #expect(throws: (any Error).self) { try database.createAccount(account("pa_2"), closingOpen: false) }
      try database.createAccount(account("pa_2"), closingOpen: true)
      #expect(try database.account(id: "pa_1").status == "closed")
      #expect(try database.openAccount(strategy: "s")?.id == "pa_2")
    }
  }

  @Test func theOutboxGetsARowPerMatchingChannel() throws {
    let database = try QtoolDatabase.inMemory()
    try database.createAccount(account(), closingOpen: false)
    let strong = ChannelFilter(signals: SignalFilter(types: ["BUY"], minStrength: 80))
    try database.addChannel(
      ChannelRecord(
        name: "strong-buys", kind: "webhook", config: "{}", filters: String(decoding: try JSONEncoder().encode(strong), as: UTF8.self), createdAt: 0))
    try database.addChannel(ChannelRecord(name: "everything", kind: "command", config: "{}", filters: "{\"include_late\":true}", createdAt: 0))
    try database.addChannel(ChannelRecord(name: "off", kind: "command", config: "{}", filters: "{}", enabled: false, createdAt: 0))
    let result = try database.commitBar(
      commit(
        1,
        signals: [
          signal("buy-strong"), signal("buy-weak", strength: 10), signal("sell", type: "SELL"), signal("late", late: true),
          signal("paused", suppressed: true),
        ]))
    #expect(result.notifications == 1 + 4, "strong-buys: one; everything: all but the suppressed one; off: none")
    let rows = try database.notificationHistory(channel: nil, status: "pending", limit: 100).map { "\($0.0.channel) \($0.0.signalID)" }.sorted()
    #expect(rows == ["everything buy-strong", "everything buy-weak", "everything late", "everything sell", "strong-buys buy-strong"])
    // Pages come from the store, newest first, with the count of all (the API's total).
    let newest = try database.notificationHistory(channel: nil, status: nil, limit: 100).map(\.0.id)
    #expect(try database.notificationHistory(channel: nil, status: nil, limit: 2, offset: 1).map(\.0.id) == Array(newest[1...2]))
    #expect(try database.notificationCount(channel: "everything", status: "pending") == 4)
    #expect(try database.notificationCount(channel: nil, status: "dead") == 0)
    // Paused bars write no outbox rows at all.
    let paused = try database.commitBar(commit(2, signals: [signal("p2", bar: 2)], notify: false))
    #expect(paused.notifications == 0)
    // Due rows of the strategy, and recording attempts.
    let due = try database.dueNotifications(strategy: "s", now: 100, excluding: [], limit: 10)
    #expect(due.count == 5)
    let first = due[0].0
    try database.recordDelivery(
      DeliveryAttemptRecord(outboxID: first.id, attempt: 1, startedAt: 100, latencyMs: 5, status: 500, outcome: "retry", error: "HTTP 500"),
      nextAttemptAt: 1_000, at: 105)
    #expect(try database.dueNotifications(strategy: "s", now: 200, excluding: [], limit: 10).count == 4)
    #expect(try database.nextNotificationDue(strategy: "s", after: 200) == 1_000)
    #expect(try database.dueNotifications(strategy: "other", now: 200, excluding: [], limit: 10).isEmpty)
    try database.removeChannel(named: "everything")
    #expect(try database.notificationHistory(channel: nil, status: nil, limit: 100).count == 1)
  }

  @Test func signalsAreFilteredAndCounted() throws {
    let database = try QtoolDatabase.inMemory()
    try database.createAccount(account(), closingOpen: false)
    _ = try database.commitBar(commit(1, signals: [signal("a", bar: 1), signal("b", type: "SELL", strength: 10, bar: 1)]))
    _ = try database.commitBar(commit(2, signals: [signal("c", late: true, bar: 2)]))
    #expect(try database.countSignals(SignalFilter(types: ["BUY"])) == 2)
    #expect(try database.countSignals(SignalFilter(levels: ["weak"])) == 1)
    #expect(try database.countSignals(SignalFilter(minStrength: 50)) == 2)
    #expect(try database.countSignals(SignalFilter(), late: true) == 1)
    #expect(try database.lastSignals(SignalFilter(), count: 2).map(\.id) == ["b", "c"])
    #expect(try database.signals(SignalFilter(), afterSeq: 1, limit: 10).map(\.id) == ["b", "c"])
    #expect(try database.signalCounts(SignalFilter(), by: "type") == ["BUY": 2, "SELL": 1])
    #expect(try database.signals(SignalFilter(since: 12), limit: 10).map(\.id) == ["c"])
  }

  /// A count is cached at the newest insertion number and brought up to date with the rows
  /// added since: the same as counting every row, filter by filter, as signals come in, also
  /// when another connection adds them.
  @Test func countsFollowNewSignals() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    let other = try QtoolDatabase.open(path: path)
    try database.createAccount(account(), closingOpen: false)
    let filters = [SignalFilter(), SignalFilter(types: ["SELL"]), SignalFilter(minStrength: 50), SignalFilter(since: 15)]
    func uncached(_ filter: SignalFilter) throws -> Int {
      let (condition, arguments) = filter.sql()
      let sql = "SELECT count(*) FROM signals WHERE \(condition)"
      return try database.read { try Int.fetchOne($0, sql: sql, arguments: StatementArguments(arguments)) ?? 0 }
    }
    for bar in Int64(1)...12 {
      let writer = bar % 2 == 0 ? database : other
      _ = try writer.commitBar(
        commit(bar, signals: [signal("b\(bar)", bar: bar), signal("s\(bar)", type: "SELL", strength: Double(bar * 8), bar: bar)]))
      for filter in filters { #expect(try database.countSignals(filter) == (try uncached(filter)), "\(filter) after bar \(bar)") }
    }
    #expect(try database.countSignals(SignalFilter()) == 24)
  }

  /// `data_version` moves when another connection commits, and only then.
  @Test func theWatcherSeesOtherConnectionsCommits() throws {
    let path = temporaryDatabasePath()
    let database = try QtoolDatabase.open(path: path)
    let watcher = try StoreChangeWatcher(path: path)
    #expect(try watcher.changed() == false)
    let other = try QtoolDatabase.open(path: path)
    try other.createAccount(account(), closingOpen: false)
    #expect(try watcher.changed() == true)
    #expect(try watcher.changed() == false)
    _ = try database.commitBar(commit(1, signals: []))
    #expect(try watcher.changed() == true)
  }
}
