import Foundation
import GRDB
import QtoolCore
import Testing

@testable import QtoolStore

/// `storeBars`, the one way bars come in: counts of what changed, and catalog statistics kept
/// up to date from the new bars alone when they extend the dataset.
@Suite struct StoreBarsTests {
  static let definition = DatasetDefinition(
    name: "S-1h", source: "csv", symbol: "S", timeframe: Timeframe(count: 1, unit: .hour), calendar: .allDays, origin: "imported")

  /// The statistics a full recount gives.
  func recount(_ database: QtoolDatabase) throws -> (rows: Int, gaps: Int, first: Int64?, last: Int64?) {
    let dataset = try database.dataset(named: "S-1h")
    try database.write { try QtoolDatabase.refreshStatistics($0, datasetID: dataset.id) }
    let again = try database.dataset(named: "S-1h")
    return (again.rowCount, again.gapCount, again.firstTs, again.lastTs)
  }

  @Test func appendsKeepStatisticsExact() throws {
    for database in try BarsTests.stores() {
      let all = syntheticSeries(count: 300)
      // First 100, then a gap of 10 bars, then appends of 1 bar and of 50, then a prepend.
      var pieces = [all.slice(100..<200), all.slice(210..<211), all.slice(211..<261), all.slice(0..<60)]
      pieces.append(all.slice(261..<300))
      for piece in pieces {
        let stored = try database.write { try QtoolDatabase.storeBars($0, into: Self.definition, piece, at: 5) }
        let summary = try database.dataset(named: "S-1h")
        let exact = try recount(database)
        #expect(summary.rowCount == exact.rows && stored.rows == exact.rows)
        #expect(summary.gapCount == exact.gaps && stored.gaps == exact.gaps)
        #expect(summary.firstTs == exact.first && summary.lastTs == exact.last)
      }
      let summary = try database.dataset(named: "S-1h")
      #expect(summary.rowCount == 250)
      #expect(summary.gapCount == 2, "60..<100 and 200..<210 are missing")
    }
  }

  @Test func countsAddedReplacedUnchanged() throws {
    for database in try BarsTests.stores() {
      let series = syntheticSeries(count: 20)
      let first = try database.write { try QtoolDatabase.storeBars($0, into: Self.definition, series.slice(0..<10), at: 1) }
      #expect(first.counts == BarWriteCounts(added: 10, replaced: 0, unchanged: 0))
      var changed = series.slice(5..<15)
      changed.close[0] += 1
      let second = try database.write { try QtoolDatabase.storeBars($0, into: Self.definition, changed, at: 2) }
      #expect(second.counts == BarWriteCounts(added: 5, replaced: 1, unchanged: 4))
      #expect(second.rows == 15)
      #expect(try database.bars(datasetID: second.datasetID).close[5] == series.close[5] + 1)
      #expect(try database.dataset(named: "S-1h").updatedAt == 2, "the time given, not the system clock")
    }
  }

  @Test func cancelledWriteRollsBack() throws {
    for database in try BarsTests.stores() {
      let token = CancellationToken()
      token.cancel()
      #expect(throws: OperationCancelled.self) {
        try database.write { try QtoolDatabase.storeBars($0, into: Self.definition, syntheticSeries(count: 10_000), at: 1, cancellation: token) }
      }
      #expect(throws: DatasetError.self) { try database.dataset(named: "S-1h") }
    }
  }
}
