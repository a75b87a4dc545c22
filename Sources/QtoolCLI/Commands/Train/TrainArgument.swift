import Foundation
import QtoolArgs
import QtoolCore
import QtoolEngine

/// The command-line forms of `train` arguments: a spec file or a registered model's name,
/// and `NAME@VERSION`.
enum TrainArgument {
  static let model = PositionalSpec("model", help: "A registered model's name, or NAME@VERSION.", completion: .dynamic("models"))

  /// A file becomes its text, inline (and the model it names is registered from that file);
  /// a name stays a name, its file registered again first when it changed.
  static func reference(_ text: String, context: CommandContext) throws -> ModelReference {
    if FileArgument.isStandard(text) {
      guard let spec = try FileArgument.readText(text) else {
        throw OperationError.invalidArgument("standard input is not UTF-8 text", field: "model")
      }
      return .inline(spec: spec, origin: "<stdin>")
    }
    if FileManager.default.fileExists(atPath: text) {
      guard let spec = try? String(contentsOfFile: text, encoding: .utf8) else {
        throw OperationError.notFound("cannot read \(text) as UTF-8 text", code: "file_unreadable", details: ["path": .string(text)])
      }
      let absolute = URL(fileURLWithPath: text).standardizedFileURL.path
      _ = try TrainOperations(try context.operations()).register(text: spec, path: absolute)
      return .inline(spec: spec, origin: text)
    }
    if text.hasSuffix(".yaml") || text.hasSuffix(".yml") || text.hasSuffix(".json") || text.contains("/") {
      throw OperationError.notFound("no spec file \(text)", code: "file_not_found", details: ["path": .string(text)])
    }
    let database = try context.database()
    if let record = try? database.model(named: text), let path = record.path, let spec = try? String(contentsOfFile: path, encoding: .utf8),
      spec != record.specText
    {
      _ = try TrainOperations(try context.operations()).register(text: spec, path: path)
      context.note("read \(text)'s spec again from \(path) (the file changed)")
    }
    return .registered(name: text)
  }

  /// `NAME` or `NAME@3`.
  static func nameAndVersion(_ text: String, context: CommandContext) throws -> (String, Int?) {
    guard let at = text.lastIndex(of: "@") else { return (text, nil) }
    guard let version = Int(text[text.index(after: at)...]), version >= 1 else {
      throw UsageError("'\(text)': a version is NAME@N with N a version number", commandPath: context.arguments.commandPath)
    }
    return (String(text[..<at]), version)
  }

  static func figure(_ value: Double?) -> String { value.map { Format.decimal($0, places: 4) } ?? "-" }
}
