import CArchive
import Foundation
import QtoolCore
import QtoolStore

/// Writes a `.tar.gz` through libarchive: the bundle a run is exported as.
public enum ArchiveWriter {
  /// Writes `files` (name → content) to `path` as gzip-compressed tar, under a temporary name
  /// first so a half-written bundle never appears.
  public static func writeTarGz(_ files: [(name: String, data: Data)], to path: String) throws {
    let temporary = AtomicFile.temporaryPath(for: path)
    TemporaryFiles.register(temporary)
    defer { TemporaryFiles.unregister(temporary) }
    guard let archive = archive_write_new() else { throw ArchiveError.cannotOpen(path: path, reason: "out of memory") }
    defer { archive_write_free(archive) }
    archive_write_add_filter_gzip(archive)
    archive_write_set_format_pax_restricted(archive)
    func fail() -> ArchiveError {
      ArchiveError.cannotOpen(path: path, reason: archive_error_string(archive).map { String(cString: $0) } ?? "cannot write")
    }
    guard archive_write_open_filename(archive, temporary) == ARCHIVE_OK else { throw fail() }
    let now = time(nil)
    for file in files {
      guard let entry = archive_entry_new() else { throw fail() }
      defer { archive_entry_free(entry) }
      archive_entry_set_pathname(entry, file.name)
      archive_entry_set_size(entry, la_int64_t(file.data.count))
      archive_entry_set_filetype(entry, 0o100000)  // AE_IFREG is a macro Swift cannot see
      archive_entry_set_perm(entry, 0o644)
      archive_entry_set_mtime(entry, now, 0)
      guard archive_write_header(archive, entry) == ARCHIVE_OK else { throw fail() }
      let written = file.data.withUnsafeBytes { archive_write_data(archive, $0.baseAddress, $0.count) }
      guard written == file.data.count else { throw fail() }
    }
    guard archive_write_close(archive) == ARCHIVE_OK else {
      unlink(temporary)
      throw fail()
    }
    guard rename(temporary, path) == 0 else {
      unlink(temporary)
      throw ArchiveError.cannotOpen(path: path, reason: String(cString: strerror(errno)))
    }
  }
}
