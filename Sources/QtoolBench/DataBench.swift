import Foundation
import QtoolCore
import QtoolData
import QtoolStore

extension Bench {
  /// Import of a 1M-row CSV (plain and gzipped) by the qtool binary, whole process, next to the
  /// sqlite3 CLI's `.import` of the same file; then verify and preprocess on 1M bars in-process.
  func data() throws {
    let count = 1_000_000
    print("\ndata (\(count / 1_000_000)M one-minute bars)")
    let series = Self.randomWalk(count: count, seed: 7)
    var text = "timestamp,open,high,low,close,volume\n"
    text.reserveCapacity(count * 70)
    for i in 0..<count {
      text += "\(series.timestamps[i]),\(series.open[i]),\(series.high[i]),\(series.low[i]),\(series.close[i]),\(series.volume[i])\n"
    }
    let csv = scratch.appendingPathComponent("bars.csv").path
    try text.write(toFile: csv, atomically: true, encoding: .utf8)
    try spawnAndWait("/bin/sh", ["-c", "gzip -1 -k '\(csv)'"])

    let cliDatabase = scratch.appendingPathComponent("cli-import.db").path
    let cli = try time {
      try runSQLite(
        cliDatabase,
        """
        PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
        CREATE TABLE bars (ts INTEGER NOT NULL PRIMARY KEY, open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL) WITHOUT ROWID;
        .import --csv --skip 1 \(csv) bars
        """)
    }
    func importTime(_ file: String, _ name: String) throws -> Double {
      let home = scratch.appendingPathComponent("home-\(name)").path
      return try time { try spawnAndWait("/usr/bin/env", ["QTOOL_HOME=\(home)", qtool, "data", "import", file, "-s", "RW", "-t", "1m", "-q"]) }
    }
    let plain = try importTime(csv, "plain")
    let gzipped = try importTime(csv + ".gz", "gz")
    report("sqlite3 CLI .import (baseline)", rate(count, cli))
    report("qtool data import bars.csv", rate(count, plain), "target ≥ 1.0M/s; \(ratio(cli, plain)) the CLI's speed")
    report("qtool data import bars.csv.gz", rate(count, gzipped), "\(ratio(cli, gzipped)) the CLI's speed")

    var parsed = BarSeries()
    let parse = try time {
      let entries = try ArchiveReader.entries(path: csv)
      let layout = try CSVBarReader.detect(firstLine: "timestamp,open,high,low,close,volume", options: CSVOptions(), file: csv)
      parsed = try CSVBarReader.read(entries[0].data, layout: layout, file: csv).series
    }
    report("  of which read + parse (in-process)", rate(count, parse))
    let storePath = scratch.appendingPathComponent("parts.db").path
    let database = try QtoolDatabase.open(path: storePath)
    let definition = DatasetDefinition(name: "rw", source: "bench", symbol: "RW", timeframe: Timeframe("1m")!, calendar: .allDays, origin: "imported")
    var insertOnly = 0.0
    let store = try time {
      try database.write { db in
        let id = try QtoolDatabase.findOrCreateDataset(db, definition)
        insertOnly = try time { _ = try QtoolDatabase.upsertBars(db, datasetID: id, parsed) }
        try QtoolDatabase.refreshStatistics(db, datasetID: id)
      }
    }
    report("  of which insert (in-process)", rate(count, insertOnly))
    report("  of which insert + statistics + commit", rate(count, store))

    var verifyTime = Double.infinity
    for _ in 0..<3 {
      verifyTime = min(verifyTime, try time { _ = DatasetVerifier.verify(series, timeframe: Timeframe("1m")!, calendar: .allDays) })
    }
    report("verify (in-process)", String(format: "%.0f ms", verifyTime * 1000), "target: well under 1 s")
    let frame = Frame(bars: series, timeframe: Timeframe("1m")!, calendar: .allDays)
    let operations = try ["fill_missing method=forward_fill", "resample timeframe=1h", "features rsi14=rsi(close, 14); macd=macd(close)"].map(
      PreprocessOperation.parse)
    let preprocess = try time { _ = try Preprocessor.apply(operations, to: frame) }
    report("preprocess fill+resample+features", String(format: "%.0f ms", preprocess * 1000), "target: well under 1 s")
  }
}
