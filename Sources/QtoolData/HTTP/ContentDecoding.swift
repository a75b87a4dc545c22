import CArchive
import Foundation

/// Decodes a gzip `Content-Encoding` body. qtool decodes it itself rather than letting curl do
/// it: curl 7.88 passes a gzip stream cut short as a shorter body without an error, and a
/// body decoded from a few megabytes may be gigabytes long.
enum ContentDecoding {
  enum Failure: Error, Equatable {
    /// Cannot be decompressed: cut short, not gzip, or an encoding qtool did not ask for.
    case damaged(String)
    /// Decodes to more than `limit` bytes.
    case tooLarge(limit: Int)
  }

  /// The decoded body of `data` sent with `Content-Encoding: encoding`.
  static func decode(_ data: Data, encoding: String, limit: Int?) -> Result<Data, Failure> {
    Result { () throws(Failure) -> Data in try decoding(data, encoding: encoding, limit: limit) }
  }

  private static func decoding(_ data: Data, encoding: String, limit: Int?) throws(Failure) -> Data {
    let name = encoding.lowercased().trimmingCharacters(in: .whitespaces)
    if name.isEmpty || name == "identity" { return data }
    guard name == "gzip" || name == "x-gzip" else {
      throw .damaged("it came with Content-Encoding: \(encoding), which qtool did not ask for")
    }
    guard data.count >= 2, data[data.startIndex] == 0x1F, data[data.startIndex + 1] == 0x8B else {
      throw .damaged("it is not gzip data")
    }
    guard let archive = archive_read_new() else { throw .damaged("out of memory") }
    defer { archive_read_free(archive) }
    archive_read_support_filter_gzip(archive)
    archive_read_support_format_raw(archive)
    func message() -> String { archive_error_string(archive).map { String(cString: $0) } ?? "the gzip stream is cut short or corrupt" }
    var output = Data()
    let result: Failure? = data.withUnsafeBytes { raw -> Failure? in
      guard archive_read_open_memory(archive, raw.baseAddress, raw.count) == ARCHIVE_OK else { return .damaged(message()) }
      var entry: OpaquePointer?
      guard archive_read_next_header(archive, &entry) == ARCHIVE_OK else { return .damaged(message()) }
      var buffer = [UInt8](repeating: 0, count: 1 << 16)
      while true {
        let count = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
        if count == 0 { return nil }
        guard count > 0 else { return .damaged(message()) }
        if let limit, output.count + count > limit { return .tooLarge(limit: limit) }
        output.append(contentsOf: buffer[..<count])
      }
    }
    if let result { throw result }
    return output
  }
}
