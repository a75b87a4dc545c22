import CArchive
import Foundation
import QtoolCore

public enum ArchiveError: QtoolError, Equatable {
  case cannotOpen(path: String, reason: String)
  case corrupt(path: String, reason: String)
  /// Unpacks to more than the limits allow: a likely decompression bomb.
  case tooLarge(path: String, reason: String)

  public var category: ErrorCategory {
    switch self {
    case .cannotOpen: return .notFound
    case .corrupt, .tooLarge: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .cannotOpen: return "cannot_read_file"
    case .corrupt: return "damaged_archive"
    case .tooLarge: return "archive_too_large"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .cannotOpen(let path, _), .corrupt(let path, _), .tooLarge(let path, _): return ["path": .string(path)]
    }
  }

  public var message: String {
    switch self {
    case .cannotOpen(let path, let reason): return "cannot read \(path): \(reason)"
    case .corrupt(let path, let reason): return "\(path) is damaged or not a supported archive: \(reason)"
    case .tooLarge(let path, let reason):
      return "\(path) \(reason); refused as a likely decompression bomb (if the file is genuine, unpack it yourself and import the CSV)"
    }
  }
}

/// Reads the files inside a `.zip`, `.tar.gz`/`.tgz`, `.gz`, `.bz2` or `.xz` through libarchive,
/// as a stream; a plain file is returned as it is.
///
/// Damage is an error, never a short read: every libarchive status is checked, and gzip is
/// inflated by zlib, which checks each member's CRC-32 and length (libarchive's gzip filter
/// does not: a bad CRC, or a flipped bit that ends the deflate stream early, read as a
/// shorter file). Unpacking stops at `Limits` (expansion ratio and total size).
public enum ArchiveReader {
  public struct Entry: Sendable {
    public var name: String
    public var data: Data
  }

  /// How far an archive may expand before it is refused as a decompression bomb.
  public struct Limits: Sendable, Equatable {
    /// Most bytes an archive may unpack to, all entries together.
    public var maxBytes: Int64
    /// Most unpacked bytes per compressed byte read, checked once `ratioAfter` bytes are out.
    /// Market data compresses 3 to 4 times (Binance archives, the bundled fixtures), a year of
    /// minute bars at one constant price about 20; a gigabyte of one repeated valid line packs
    /// 350 times and of zeros 1,000 (deflate's ceiling is about 1,030).
    public var maxRatio: Double
    public var ratioAfter: Int64

    public init(maxBytes: Int64 = 20 << 30, maxRatio: Double = 100, ratioAfter: Int64 = 16 << 20) {
      self.maxBytes = maxBytes
      self.maxRatio = maxRatio
      self.ratioAfter = ratioAfter
    }

    public static let `default` = Limits()
  }

  /// The text files in `path` (for a plain file, the file itself).
  public static func entries(path: String, limits: Limits = .default) throws -> [Entry] {
    var entries: [Entry] = []
    try stream(
      path: path, limits: limits, entry: { entries.append(Entry(name: $0, data: Data())) },
      chunk: { entries[entries.count - 1].data.append(contentsOf: $0) }, end: {})
    return entries
  }

  /// The text files in `path` as a stream: for each, `entry` with its name, then `chunk` with
  /// its bytes as they come, then `end`. A plain file is one entry named as the file.
  public static func stream(
    path: String, limits: Limits = .default, entry: (String) throws -> Void, chunk: (UnsafeRawBufferPointer) throws -> Void,
    end: () throws -> Void
  ) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
      throw ArchiveError.cannotOpen(path: path, reason: reason)
    }
    defer { try? handle.close() }
    let head = (try? handle.read(upToCount: 6)) ?? Data()
    guard isCompressedOrArchive(head) else {
      try entry(URL(fileURLWithPath: path).lastPathComponent)
      do {
        try handle.seek(toOffset: 0)
        while let block = try handle.read(upToCount: 1 << 20), !block.isEmpty { try block.withUnsafeBytes { try chunk($0) } }
      } catch let error as CocoaError {
        throw ArchiveError.cannotOpen(path: path, reason: "cannot read the file (\(error.localizedDescription))")
      }
      try end()
      return
    }
    if isGzip(head) {
      try handle.seek(toOffset: 0)
      let descriptor = handle.fileDescriptor
      let decoder = try GzipDecoder(label: path) { buffer in
        let count = read(descriptor, buffer.baseAddress, buffer.count)
        guard count >= 0 else { throw ArchiveError.cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        return count
      }
      try walk(label: path, source: .gzip(decoder), limits: limits, entry: entry, chunk: chunk, end: end)
    } else {
      try walk(label: path, source: .file(path), limits: limits, entry: entry, chunk: chunk, end: end)
    }
  }

  /// The files inside an archive held in memory (a download).
  public static func entries(data: Data, label: String, limits: Limits = .default) throws -> [Entry] {
    guard isCompressedOrArchive(data.prefix(6)) else { return [Entry(name: label, data: data)] }
    return try stream(data: data, label: label, limits: limits)
  }

  /// `entries(data:label:)` for compressed data or an archive.
  static func stream(data: Data, label: String, limits: Limits) throws -> [Entry] {
    var entries: [Entry] = []
    let entry: (String) throws -> Void = { entries.append(Entry(name: $0, data: Data())) }
    let chunk: (UnsafeRawBufferPointer) throws -> Void = { entries[entries.count - 1].data.append(contentsOf: $0) }
    try data.withUnsafeBytes { raw in
      if isGzip(data.prefix(2)) {
        var offset = 0
        let decoder = try GzipDecoder(label: label) { buffer in
          let count = min(buffer.count, raw.count - offset)
          if count > 0 { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)])) }
          offset += count
          return count
        }
        try walk(label: label, source: .gzip(decoder), limits: limits, entry: entry, chunk: chunk, end: {})
      } else {
        try walk(label: label, source: .memory(raw), limits: limits, entry: entry, chunk: chunk, end: {})
      }
    }
    return entries
  }

  static func isCompressedOrArchive(_ head: Data) -> Bool {
    let b = [UInt8](head)
    guard b.count >= 2 else { return false }
    if b[0] == 0x50, b[1] == 0x4B { return true }  // zip
    if b[0] == 0x1F, b[1] == 0x8B { return true }  // gzip
    if b.count >= 3, b[0] == 0x42, b[1] == 0x5A, b[2] == 0x68 { return true }  // bzip2
    if b.count >= 6, b[0] == 0xFD, b[1] == 0x37, b[2] == 0x7A, b[3] == 0x58 { return true }  // xz
    return false
  }

  static func isGzip(_ head: Data) -> Bool {
    let b = [UInt8](head.prefix(2))
    return b.count == 2 && b[0] == 0x1F && b[1] == 0x8B
  }

  /// Where libarchive reads from: a file or memory as they are, or gzip inflated by zlib
  /// (then libarchive sees the inflated bytes: a tar, or the raw data).
  enum Source {
    case file(String)
    case memory(UnsafeRawBufferPointer)
    case gzip(GzipDecoder)
  }

  /// Bytes read in a consumer's error to find out whether the archive is damaged, which is
  /// then the error to report (a CSV error on line 99,600 is a symptom of it).
  static let drainAfterError: Int64 = 256 << 20

  /// The text files of an archive, each as `entry(name)`, its bytes through `chunk`, `end()`:
  /// regular files only, less hidden files and `.CHECKSUM` files.
  private static func walk(
    label: String, source: Source, limits: Limits, entry: (String) throws -> Void, chunk: (UnsafeRawBufferPointer) throws -> Void,
    end: () throws -> Void
  ) throws {
    guard let archive = archive_read_new() else { throw ArchiveError.cannotOpen(path: label, reason: "out of memory") }
    defer { archive_read_free(archive) }
    archive_read_support_filter_all(archive)
    archive_read_support_format_zip(archive)
    archive_read_support_format_tar(archive)
    archive_read_support_format_raw(archive)
    var gzip: GzipDecoder?
    let opened: Int32
    switch source {
    case .file(let path): opened = archive_read_open_filename(archive, path, 1 << 16)
    case .memory(let raw): opened = archive_read_open_memory(archive, raw.baseAddress, raw.count)
    case .gzip(let decoder):
      gzip = decoder
      opened = archive_read_open(archive, Unmanaged.passUnretained(decoder).toOpaque(), nil, gzipRead, nil)
    }
    /// The error behind a failed libarchive call: the decoder's own, or libarchive's message.
    func failure() -> any Error {
      if let error = gzip?.error { return error }
      return ArchiveError.corrupt(path: label, reason: archive_error_string(archive).map { String(cString: $0) } ?? "unknown error")
    }
    guard opened == ARCHIVE_OK else { throw failure() }

    var produced: Int64 = 0
    func checkLimits() throws {
      if produced > limits.maxBytes {
        let size = limits.maxBytes >= 1 << 30 ? "\(limits.maxBytes >> 30) GiB" : "\(limits.maxBytes >> 20) MiB"
        throw ArchiveError.tooLarge(path: label, reason: "unpacks to more than \(size)")
      }
      guard produced > limits.ratioAfter else { return }
      let consumed = max(1, gzip?.consumed ?? archive_filter_bytes(archive, -1))
      if Double(produced) > limits.maxRatio * Double(consumed) {
        throw ArchiveError.tooLarge(
          path: label,
          reason: "unpacks to more than \(Int(limits.maxRatio)) times its compressed size (\(produced >> 20) MiB from \(consumed >> 10) KiB)")
      }
    }
    // A consumer's error (a CSV error), held while the rest is read to see if it was damage.
    var consumerError: (any Error)?
    var drainUntil = Int64.max
    func deliver(_ body: () throws -> Void) {
      guard consumerError == nil else { return }
      do { try body() } catch {
        consumerError = error
        drainUntil = produced + drainAfterError
      }
    }

    var header: OpaquePointer?
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    reading: while true {
      let status = archive_read_next_header(archive, &header)
      if status == ARCHIVE_EOF { break }
      // WARN here is about names (e.g. a charset that cannot be converted); RETRY and worse
      // are damage.
      guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure() }
      let rawName = archive_entry_pathname(header).map { String(cString: $0) } ?? "data"
      // The raw format names its single entry "data": use the archive's own name, less .gz.
      let name = rawName == "data" ? URL(fileURLWithPath: label).deletingPathExtension().lastPathComponent : rawName
      let isFile = archive_entry_filetype(header) == 0o100000 /* S_IFREG; AE_IFREG is a macro Swift cannot see */ || rawName == "data"
      let base = URL(fileURLWithPath: name).lastPathComponent
      let wanted = isFile && !base.hasPrefix(".") && !base.uppercased().hasSuffix(".CHECKSUM") && !name.hasSuffix("/")
      if wanted { deliver { try entry(name) } }
      while true {
        let count = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
        if count == 0 { break }
        // WARN (e.g. a zip entry's bad CRC, reported on its last read), RETRY, FAILED, FATAL.
        guard count > 0 else { throw failure() }
        produced += Int64(count)
        try checkLimits()
        if produced > drainUntil { break reading }
        if wanted { deliver { try buffer.withUnsafeBytes { try chunk(UnsafeRawBufferPointer(rebasing: $0[..<count])) } } }
      }
      if wanted { deliver { try end() } }
    }
    // A tar ends at its end-of-archive blocks, which libarchive may reach before zlib reaches
    // the gzip trailer: inflate the rest too, so its CRC and length are checked (and zeros
    // that a tar reader took for an empty archive count towards the limits).
    if let gzip, produced <= drainUntil {
      try buffer.withUnsafeMutableBytes { buffer in
        while case let count = try gzip.decode(into: buffer), count > 0 {
          produced += Int64(count)
          try checkLimits()
          if produced > drainUntil { break }
        }
      }
    }
    if let consumerError { throw consumerError }
  }
}

/// libarchive's read callback for gzip input: hands it the next inflated block. A file-scope
/// function, not a closure (SWIFT-NOTES.md on C callbacks).
private func gzipRead(
  _ archive: OpaquePointer?, _ context: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?
) -> la_ssize_t {
  let decoder = Unmanaged<GzipDecoder>.fromOpaque(context!).takeUnretainedValue()
  return decoder.readForArchive(buffer)
}

/// Inflates a gzip stream, every member of it as `gzip -d` does, through zlib, which checks
/// each member's CRC-32 and length. Truncation, damage, and bytes after the last member
/// (other than zero padding) are errors.
final class GzipDecoder {
  private var stream = z_stream()
  private let input = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
  private let output = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
  private let read: (UnsafeMutableRawBufferPointer) throws -> Int
  private let label: String
  private var inputEnded = false
  private var memberEnded = false
  private var finished = false
  /// Compressed bytes inflated so far.
  private(set) var consumed: Int64 = 0
  /// The error that stopped `readForArchive`, for the caller to throw.
  private(set) var error: (any Error)?

  /// - parameter read: fills the buffer with the next compressed bytes; 0 at the end.
  init(label: String, read: @escaping (UnsafeMutableRawBufferPointer) throws -> Int) throws {
    self.label = label
    self.read = read
    guard qtool_inflate_init_gzip(&stream) == Z_OK else {
      input.deallocate()
      output.deallocate()
      throw ArchiveError.cannotOpen(path: label, reason: "zlib cannot start")
    }
  }

  deinit {
    inflateEnd(&stream)
    input.deallocate()
    output.deallocate()
  }

  func readForArchive(_ buffer: UnsafeMutablePointer<UnsafeRawPointer?>?) -> la_ssize_t {
    do {
      let count = try decode(into: output)
      buffer?.pointee = UnsafeRawPointer(output.baseAddress)
      return la_ssize_t(count)
    } catch {
      self.error = error
      return -1
    }
  }

  private func corrupt(_ reason: String) -> ArchiveError { ArchiveError.corrupt(path: label, reason: reason) }

  /// Moves the unread input to the front and reads more after it.
  private func refill() throws {
    let remaining = Int(stream.avail_in)
    if remaining > 0, let next = stream.next_in { memmove(input.baseAddress!, next, remaining) }
    let count = try read(UnsafeMutableRawBufferPointer(rebasing: input[remaining...]))
    if count == 0 { inputEnded = true }
    stream.next_in = input.baseAddress!.assumingMemoryBound(to: Bytef.self)
    stream.avail_in = uInt(remaining + count)
  }

  /// Up to `output.count` inflated bytes; 0 at the end of the stream.
  func decode(into output: UnsafeMutableRawBufferPointer) throws -> Int {
    guard !finished else { return 0 }
    stream.next_out = output.baseAddress!.assumingMemoryBound(to: Bytef.self)
    stream.avail_out = uInt(output.count)
    while stream.avail_out > 0 {
      if memberEnded {
        // Another member, zero padding, or something that should not be there.
        while stream.avail_in < 2, !inputEnded { try refill() }
        if stream.avail_in == 0 {
          finished = true
          break
        }
        let next = stream.next_in!
        if stream.avail_in >= 2, next[0] == 0x1F, next[1] == 0x8B {
          guard inflateReset(&stream) == Z_OK else { throw corrupt("zlib cannot restart") }
          memberEnded = false
          continue
        }
        guard (0..<Int(stream.avail_in)).allSatisfy({ next[$0] == 0 }) else {
          throw corrupt("unexpected bytes after the end of the gzip data (at byte \(consumed))")
        }
        consumed += Int64(stream.avail_in)
        stream.avail_in = 0
        if inputEnded {
          finished = true
          break
        }
        continue
      }
      if stream.avail_in == 0, !inputEnded { try refill() }
      let before = stream.avail_in
      let status = inflate(&stream, Z_NO_FLUSH)
      consumed += Int64(before - stream.avail_in)
      switch status {
      case Z_OK: continue
      case Z_STREAM_END: memberEnded = true
      case Z_BUF_ERROR:
        // No progress possible: the input is used up before the data ends.
        if stream.avail_in == 0, !inputEnded { continue }
        throw corrupt("the file ends in the middle of the compressed data (truncated at byte \(consumed))")
      case Z_DATA_ERROR:
        let message = stream.msg.map { String(cString: $0) } ?? "invalid data"
        switch message {
        case "incorrect data check": throw corrupt("the CRC-32 check failed: the unpacked data is not what was packed")
        case "incorrect length check": throw corrupt("the length check failed: the unpacked data is not what was packed")
        default: throw corrupt("the compressed data is damaged near byte \(consumed) (\(message))")
        }
      case Z_MEM_ERROR: throw ArchiveError.cannotOpen(path: label, reason: "out of memory")
      default: throw corrupt("zlib error \(status)")
      }
    }
    return output.count - Int(stream.avail_out)
  }
}
