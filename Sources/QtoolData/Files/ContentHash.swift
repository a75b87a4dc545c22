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

  /// A 64-bit fingerprint of records of text fields, for telling whether stored results are
  /// still those written (a shard's, checked at merge): not cryptographic — it catches damage
  /// and edits, not a forger — but fast (SHA-256 over 100,000 results' metrics was a third of a
  /// merge). Any one 8-byte word changed always changes it: each step is a bijection of the
  /// state. Each field ends with its tail word, which holds the tail's length, and each record
  /// with a mark, so text moved across a boundary changes it too. Little-endian words, as on
  /// every machine Swift runs on.
  public static func fingerprint(records: some Sequence<[String]>) -> String {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    @inline(__always) func mix(_ word: UInt64) {
      state = (state ^ word) &* 0xFF51_AFD7_ED55_8CCD
      state ^= state >> 29
    }
    for record in records {
      for var field in record {
        field.withUTF8 { bytes in
          let raw = UnsafeRawBufferPointer(bytes)
          var offset = 0
          while offset + 8 <= raw.count {
            mix(raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            offset += 8
          }
          var tail = UInt64(raw.count - offset) << 56
          for (index, byte) in raw[offset...].enumerated() { tail |= UInt64(byte) << (8 * UInt64(index)) }
          mix(tail)
        }
      }
      mix(0x1E1E_1E1E_1E1E_1E1E)
    }
    state ^= state >> 33
    state = state &* 0xC4CE_B9FE_1A85_EC53
    state ^= state >> 33
    let hex = String(state, radix: 16)
    return "fp64:" + String(repeating: "0", count: 16 - hex.count) + hex
  }
}
