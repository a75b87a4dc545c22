import Foundation
import QtoolArgs
import QtoolCore
import QtoolData
import QtoolEngine
import QtoolStore

/// What a `strategy` argument names, as the engine takes it. Only the CLI reads spec files: a
/// path becomes the file's text, inline. A registered name (`NAME` or `NAME@VERSION`) stays a
/// name — but when the file it was registered from has changed, the CLI registers the new text
/// as a new version first, and says so.
enum StrategyArgument {
  static func reference(_ text: String, context: CommandContext) throws -> StrategyReference {
    if FileArgument.isStandard(text) {
      guard let spec = try FileArgument.readText(text) else {
        throw OperationError.invalidArgument("standard input is not UTF-8 text", field: "strategy")
      }
      return .inline(spec: spec, origin: "<stdin>")
    }
    if FileManager.default.fileExists(atPath: text) {
      guard let spec = try? String(contentsOfFile: text, encoding: .utf8) else {
        throw OperationError.notFound("cannot read \(text) as UTF-8 text", code: "file_unreadable", details: ["path": .string(text)])
      }
      return .inline(spec: spec, origin: text)
    }
    if text.hasSuffix(".yaml") || text.hasSuffix(".yml") || text.hasSuffix(".json") || text.contains("/") {
      throw OperationError.notFound("no spec file \(text)", code: "file_not_found", details: ["path": .string(text)])
    }
    var name = text
    var version: Int?
    if let at = text.lastIndex(of: "@") {
      name = String(text[..<at])
      guard let number = Int(text[text.index(after: at)...]), number >= 1 else {
        throw UsageError("'\(text)': a version is NAME@N with N a version number", commandPath: context.arguments.commandPath)
      }
      version = number
    }
    if version == nil, !context.readsOnly { try registerIfChanged(name, context: context) }
    return .registered(name: name, version: version)
  }

  /// A registered strategy whose file changed since its latest version: the file's text
  /// becomes a new version (when it is a valid spec), with a note on stderr.
  /// A store that does not exist yet registers nothing, so it is not created for the check:
  /// a command refused afterwards (a bad --shard, a wrong snapshot) leaves no store behind.
  static func registerIfChanged(_ name: String, context: CommandContext) throws {
    guard FileManager.default.fileExists(atPath: try context.settings().databasePath) else { return }
    let database = try context.database()
    guard let record = try? database.strategy(named: name), let path = record.path,
      let text = try? String(contentsOfFile: path, encoding: .utf8)
    else { return }
    let hash = ContentHash.sha256Hex(Data(text.utf8))
    guard hash != record.latestHash else { return }
    let created = try StrategyOperations(try context.operations()).register(name: name, path: path, text: text)
    context.note("registered \(name) v\(created.version) from \(path) (the file changed)")
  }
}
