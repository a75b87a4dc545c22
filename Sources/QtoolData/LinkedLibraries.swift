import CArchive
import CCurl

/// Versions of the C libraries qtool is linked against at run time.
public enum LinkedLibraries {
  /// e.g. `7.88.1`
  public static var curlVersion: String {
    // curl_version() reads like "libcurl/7.88.1 OpenSSL/3.0.17 zlib/1.2.13 …".
    let full = String(cString: curl_version())
    let first = full.split(separator: " ").first ?? Substring(full)
    return first.split(separator: "/").last.map(String.init) ?? full
  }

  /// e.g. `3.6.2`
  public static var archiveVersion: String {
    let number = Int(archive_version_number())
    return "\(number / 1_000_000).\(number / 1_000 % 1_000).\(number % 1_000)"
  }
}
