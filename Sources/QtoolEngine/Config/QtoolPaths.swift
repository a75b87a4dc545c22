import Foundation

/// Where qtool keeps its files, following the XDG base-directory convention.
public enum QtoolPaths {
  /// `$XDG_DATA_HOME/qtool`, else `~/.local/share/qtool`.
  public static func defaultHome(environment: [String: String]) -> String {
    if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return data + "/qtool" }
    return homeDirectory(environment) + "/.local/share/qtool"
  }

  /// `$XDG_CONFIG_HOME/qtool/config.yaml`, else `~/.config/qtool/config.yaml`.
  public static func defaultConfigFile(environment: [String: String]) -> String {
    if let config = environment["XDG_CONFIG_HOME"], !config.isEmpty { return config + "/qtool/config.yaml" }
    return homeDirectory(environment) + "/.config/qtool/config.yaml"
  }

  static func homeDirectory(_ environment: [String: String]) -> String {
    if let home = environment["HOME"], !home.isEmpty { return home }
    return FileManager.default.homeDirectoryForCurrentUser.path
  }

  /// Expands a leading `~/`.
  public static func expand(_ path: String, environment: [String: String]) -> String {
    if path == "~" { return homeDirectory(environment) }
    if path.hasPrefix("~/") { return homeDirectory(environment) + path.dropFirst() }
    return path
  }
}
