import CArchive
import Foundation
import QtoolCore

public enum ArchiveError: QtoolError, Equatable {
  case cannotOpen(path: String, reason: String)
  case corrupt(path: String, reason: String)

  public var category: ErrorCategory {
    switch self {
    case .cannotOpen: return .notFound
    case .corrupt: return .invalidInput
    }
  }

  public var code: String {
    switch self {
    case .cannotOpen: return "cannot_read_file"
    case .corrupt: return "damaged_archive"
    }
  }

  public var details: [String: JSONValue] {
    switch self {
    case .cannotOpen(let path, _), .corrupt(let path, _): return ["path": .string(path)]
    }
  }

  public var message: String {
    switch self {
    case .cannotOpen(let path, let reason): return "cannot read \(path): \(reason)"
    case .corrupt(let path, let reason): return "\(path) is damaged or not a supported archive: \(reason)"
    }
  }
}

/// Reads the files inside a `.zip`, `.tar.gz`/`.tgz`, `.gz`, `.bz2` or `.xz` through libarchive,
/// as a stream; a plain file is returned as it is.
public enum ArchiveReader {
  public struct Entry: Sendable {
    public var name: String
    public var data: Data
  }

  /// The text files in `path` (for a plain file, the file itself).
  public static func entries(path: String) throws -> [Entry] {
    var entries: [Entry] = []
    try stream(
      path: path, entry: { entries.append(Entry(name: $0, data: Data())) }, chunk: { entries[entries.count - 1].data.append(contentsOf: $0) },
      end: {})
    return entries
  }

  /// The text files in `path` as a stream: for each, `entry` with its name, then `chunk` with
  /// its bytes as they come, then `end`. A plain file is one entry named as the file.
  public static func stream(
    path: String, entry: (String) throws -> Void, chunk: (UnsafeRawBufferPointer) throws -> Void, end: () throws -> Void
  ) throws {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
      throw ArchiveError.cannotOpen(path: path, reason: reason)
    }
    defer { try? handle.close() }
    guard isCompressedOrArchive((try? handle.read(upToCount: 6)) ?? Data()) else {
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
    try walk(label: path, open: { archive_read_open_filename($0, path, 1 << 16) }, entry: entry, chunk: chunk, end: end)
  }

  /// The files inside an archive held in memory (a download).
  public static func entries(data: Data, label: String) throws -> [Entry] {
    guard isCompressedOrArchive(data.prefix(6)) else { return [Entry(name: label, data: data)] }
    return try data.withUnsafeBytes { raw in
      try read(label: label) { archive in archive_read_open_memory(archive, raw.baseAddress, raw.count) }
    }
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

  private static func read(label: String, open: (OpaquePointer) -> Int32) throws -> [Entry] {
    var entries: [Entry] = []
    try walk(
      label: label, open: open, entry: { entries.append(Entry(name: $0, data: Data())) },
      chunk: { entries[entries.count - 1].data.append(contentsOf: $0) },
      end: {})
    return entries
  }

  /// The text files of an archive, each as `entry(name)`, its bytes through `chunk`, `end()`:
  /// regular files only, less hidden files and `.CHECKSUM` files.
  private static func walk(
    label: String, open: (OpaquePointer) -> Int32, entry: (String) throws -> Void, chunk: (UnsafeRawBufferPointer) throws -> Void,
    end: () throws -> Void
  ) throws {
    guard let archive = archive_read_new() else { throw ArchiveError.cannotOpen(path: label, reason: "out of memory") }
    defer { archive_read_free(archive) }
    archive_read_support_filter_all(archive)
    archive_read_support_format_zip(archive)
    archive_read_support_format_tar(archive)
    archive_read_support_format_raw(archive)
    func message() -> String { archive_error_string(archive).map { String(cString: $0) } ?? "unknown error" }
    guard open(archive) == ARCHIVE_OK else { throw ArchiveError.corrupt(path: label, reason: message()) }
    var header: OpaquePointer?
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let status = archive_read_next_header(archive, &header)
      if status == ARCHIVE_EOF { break }
      guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw ArchiveError.corrupt(path: label, reason: message()) }
      let rawName = archive_entry_pathname(header).map { String(cString: $0) } ?? "data"
      // The raw format names its single entry "data": use the archive's own name, less .gz.
      let name = rawName == "data" ? URL(fileURLWithPath: label).deletingPathExtension().lastPathComponent : rawName
      let isFile = archive_entry_filetype(header) == 0o100000 /* S_IFREG; AE_IFREG is a macro Swift cannot see */ || rawName == "data"
      let base = URL(fileURLWithPath: name).lastPathComponent
      let wanted = isFile && !base.hasPrefix(".") && !base.uppercased().hasSuffix(".CHECKSUM") && !name.hasSuffix("/")
      if wanted { try entry(name) }
      while true {
        let count = buffer.withUnsafeMutableBytes { archive_read_data(archive, $0.baseAddress, $0.count) }
        if count == 0 { break }
        guard count > 0 else { throw ArchiveError.corrupt(path: label, reason: message()) }
        if wanted { try buffer.withUnsafeBytes { try chunk(UnsafeRawBufferPointer(rebasing: $0[..<count])) } }
      }
      if wanted { try end() }
    }
  }

}
