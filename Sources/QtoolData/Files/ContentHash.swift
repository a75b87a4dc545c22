import Crypto
import Foundation
import QtoolCore

/// Hashes that identify data: SHA-256 of downloaded archives (checked against `.CHECKSUM`
/// files) and of bar columns (a dataset's content hash, part of every backtest fingerprint).
public enum ContentHash {
  public static func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
  }

  /// SHA-256 over the bars' timestamps and the bit patterns of their prices and volumes, in
  /// order, so two datasets hash alike exactly when every bar is identical.
  public static func of(_ series: BarSeries) -> String {
    var hasher = SHA256()
    series.timestamps.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    for column in [series.open, series.high, series.low, series.close, series.volume] {
      column.withUnsafeBytes { hasher.update(bufferPointer: $0) }
    }
    return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
  }
}
