import Foundation

/// The recorded real market data beside the project (`../shared/data`).
enum SharedData {
  static let root: URL = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("shared/data")

  static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

  static func monthlyKlines(_ month: String) -> String {
    path("binance_vision/data/spot/monthly/klines/BTCUSDT/1d/BTCUSDT-1d-\(month).zip")
  }

  static func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("qtool-data-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }
}
