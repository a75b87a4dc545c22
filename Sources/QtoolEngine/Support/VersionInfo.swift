import QtoolData
import QtoolStore

/// What `qtool version --json` reports.
public struct VersionInfo: Codable, Sendable {
  public static let version = "0.1.0"

  public var version: String
  public var commit: String
  public var buildDate: String
  public var sqlite: String
  public var libcurl: String
  public var libarchive: String

  enum CodingKeys: String, CodingKey {
    case version, commit, buildDate = "build_date", sqlite, libcurl, libarchive
  }

  public static var current: VersionInfo {
    VersionInfo(
      version: version, commit: GeneratedBuildInfo.commit, buildDate: GeneratedBuildInfo.date,
      sqlite: QtoolDatabase.sqliteVersion, libcurl: LinkedLibraries.curlVersion,
      libarchive: LinkedLibraries.archiveVersion)
  }
}
