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

  /// SHA-256 over records of text fields, each field closed by a unit separator and each
  /// record by a record separator: text moved from one field to the next changes the hash.
  public static func of(records: some Sequence<[String]>) -> String {
    var hasher = SHA256()
    for record in records {
      for field in record {
        hasher.update(data: Data(field.utf8))
        hasher.update(data: [0x1F])
      }
      hasher.update(data: [0x1E])
    }
    return "sha256:" + hasher.finalize().map { String(format: "%02x", $0) }.joined()
  }
}
