import Foundation

extension Bench {
  /// The 59 recorded monthly archives served from loopback by Python's threading HTTP server,
  /// at once and then after 20 ms per request: curl fetching them (alone, and with their
  /// .CHECKSUM files, as qtool does) one after another and 4 at a time, against qtool
  /// downloading them (with checksums, unpacking and storing) with 1 and 4 transfers at once.
  func download() throws {
    let root = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).deletingLastPathComponent()
      .appendingPathComponent("shared/data/binance_vision")
    let directory = root.appendingPathComponent("data/spot/monthly/klines/BTCUSDT/1d")
    guard let files = try? FileManager.default.contentsOfDirectory(atPath: directory.path).filter({ $0.hasSuffix(".zip") }).sorted(), !files.isEmpty
    else {
      print("\ndownload: ../shared/data/binance_vision not found; skipped")
      return
    }
    for latency in [0, 20] {
      print(
        latency == 0
          ? "\ndownload (\(files.count) monthly archives from a loopback server)"
          : "\ndownload (the same, each request answered after \(latency) ms, like a distant server)")
      try download(files: files, root: root, latency: latency)
    }
  }

  private func download(files: [String], root: URL, latency: Int) throws {
    let port = 18_000 + Int(getpid() % 1000) + latency
    let server = Process()
    server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    // Python's threading server: a slow answer does not hold up the others.
    server.arguments = [
      "python3", "-c",
      """
      import functools, http.server, sys, time
      class Handler(http.server.SimpleHTTPRequestHandler):
          def do_GET(self):
              time.sleep(\(Double(latency) / 1000))
              super().do_GET()
          def log_message(self, *args):
              pass
      http.server.ThreadingHTTPServer(("127.0.0.1", \(port)), functools.partial(Handler, directory=sys.argv[1])).serve_forever()
      """,
      root.path,
    ]
    server.standardOutput = FileHandle.nullDevice
    server.standardError = FileHandle.nullDevice
    try server.run()
    defer { server.terminate() }
    Thread.sleep(forTimeInterval: 1)
    let base = "http://127.0.0.1:\(port)"
    let urls = files.map { "\(base)/data/spot/monthly/klines/BTCUSDT/1d/\($0)" }
    let curl = try time { try spawnAndWait("/usr/bin/curl", ["-s", "--fail"] + urls.flatMap { [$0, "-o", "/dev/null"] }) }
    report("curl, archives one after another", String(format: "%.0f ms", curl * 1000), String(format: "%.1f files/s", Double(files.count) / curl))
    // What qtool fetches: each archive and its .CHECKSUM. The recorded data holds one
    // .CHECKSUM file; the other requests are answered 404, for curl and qtool alike.
    let sameFiles = urls.flatMap { [$0, "-o", "/dev/null", $0 + ".CHECKSUM", "-o", "/dev/null"] }
    let same = try time { try? spawnAndWait("/usr/bin/curl", ["-s"] + sameFiles) }
    report("curl, the same files one after another", String(format: "%.0f ms", same * 1000), "archives and their .CHECKSUM files (baseline)")
    let parallel = try time { try? spawnAndWait("/usr/bin/curl", ["-s", "-Z", "--parallel-immediate", "--parallel-max", "4"] + sameFiles) }
    report("curl, the same files, 4 at a time", String(format: "%.0f ms", parallel * 1000), "\(ratio(same, parallel)) the baseline")
    for jobs in [1, 4] {
      let home = scratch.appendingPathComponent("download-\(latency)-\(jobs)").path
      let seconds = try time {
        try spawnAndWait(
          "/usr/bin/env",
          [
            "QTOOL_HOME=\(home)", "QTOOL_SOURCE_BINANCE_BULK_URL=\(base)", qtool, "data", "download", "--source", "binance-bulk", "--symbols",
            "BTCUSDT",
            // Python's server has no .CHECKSUM files: without --no-verify nothing would be stored.
            "-t", "1d", "--from", "2021-02-01", "--to", "2026-01-01", "--jobs", "\(jobs)", "-q", "--no-verify",
          ])
      }
      report(
        "qtool data download --jobs \(jobs)", String(format: "%.0f ms", seconds * 1000),
        "\(ratio(same, seconds)) the baseline, with unzip and store; \(ratio(curl, seconds)) curl on the archives alone")
    }
  }
}
