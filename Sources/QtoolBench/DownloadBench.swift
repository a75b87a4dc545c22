import Foundation

extension Bench {
  /// The 59 recorded monthly archives served from loopback by Python's threading HTTP server:
  /// curl fetching them one after another, against qtool downloading them (with checksums,
  /// unpacking and storing) with 1 and 4 transfers at once.
  func download() throws {
    let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).deletingLastPathComponent()
      .appendingPathComponent("shared/data/binance_vision")
    let directory = root.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1d")
    guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path).filter({ $0.hasSuffix(".zip") }).sorted(), !files.isEmpty
    else {
      print("\ndownload: ../shared/data/binance_vision not found; skipped")
      return
    }
    print("\ndownload (\(files.count) monthly archives from a loopback server)")
    let port = 18_000 + Int(getpid() % 1000)
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    server.arguments = ["python3", "-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", root.path]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = FileHandle.nullDevice
    try server.run()
    defer { server.terminate() }
    Thread.sleep(forTimeInterval: 1)
    let base = "http://127.0.0.1:\(port)"
    let urls = files.map { "\(base)/data/spot/monthly/klines/BTCUSDT/1d/\($0)" }
    let curl = try time { try spawnAndWait("/usr/bin/curl", ["-s", "--fail"] + urls.flatMap { [$0, "-o", "/dev/null"] }) }
    report("curl, one after another (baseline)", String(format: "%.0f ms", curl * 1000), String(format: "%.1f files/s", Double(files.count) / curl))
    for jobs in [1, 4] {
      let home = scratch.appendingPathComponent("download-\(jobs)").path
      let seconds = try time {
        try spawnAndWait(
          "/usr/bin/env",
          [
            "QTOOL_HOME=\(home)", "QTOOL_SOURCE_BINANCE_BULK_URL=\(base)", qtool, "data", "download", "--source", "binance-bulk", "--symbols",
            "BTCUSDT",
            "-t", "1d", "--from", "2021-02-01", "--to", "2026-01-01", "--jobs", "\(jobs)", "-q",
          ])
      }
      report(
        "qtool data download --jobs \(jobs)", String(format: "%.0f ms", seconds * 1000),
        "\(ratio(curl, seconds)) curl's speed (+ .CHECKSUM, unzip, store)")
    }
  }
}
