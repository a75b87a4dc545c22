import Foundation
import QtoolTestSupport
import Testing

/// Every command's `--json` speaks one vocabulary (`qtool help json`): the key paths of each
/// output are held to a committed snapshot, so a renamed or added field is a decision, not
/// drift; and rules that hold everywhere are checked on every value.
@Suite(.serialized) struct JSONVocabularyTests {
  static let snapshot = QtoolProcess.packageRoot.appendingPathComponent("Tests/QtoolCLITests/Snapshots/json-keys.txt")
  /// Names the vocabulary replaced: none may come back.
  static let retired: Set<String> = [
    "ts", "timestamp", "parameters", "strategy_name", "row_count", "gap_count", "first_ts", "last_ts", "parent_name", "bars_written", "bars_in",
    "bars_out", "dataset_bars", "created", "spec_text", "entry_bar", "exit_bar", "bars_read",
  ]
  static let timeKeys: Set<String> = [
    "first", "last", "time", "entry_time", "exit_time", "until", "since", "from", "to", "decisions_from", "start", "trough", "end",
  ]

  /// `name: a.b[].c` lines for every key path of `value`.
  static func paths(_ value: Any, prefix: String = "") -> Set<String> {
    if let object = value as? [String: Any] {
      var result = Set<String>()
      for (key, child) in object {
        // Maps keyed by data (params, metrics, row counts) are values, not vocabulary.
        let path = prefix.isEmpty ? key : prefix + "." + key
        if ["params", "metrics", "row_counts", "figures", "details", "request", "metadata", "columns_map"].contains(key) {
          result.insert(path + "{}")
          continue
        }
        result.insert(path)
        result.formUnion(paths(child, prefix: path))
      }
      return result
    }
    if let array = value as? [Any] {
      return array.reduce(into: Set<String>()) { $0.formUnion(paths($1, prefix: prefix + "[]")) }
    }
    return []
  }

  /// The rules every value follows; returns what breaks them.
  static func violations(_ value: Any, path: String = "") -> [String] {
    var found: [String] = []
    if let object = value as? [String: Any] {
      for (key, child) in object {
        let at = path.isEmpty ? key : path + "." + key
        if retired.contains(key) { found.append("\(at): a retired name") }
        if key.hasSuffix("_at") || timeKeys.contains(key) {
          if let text = child as? String {
            if !(text.count >= 20 && text.hasSuffix("Z") && text.dropFirst(10).hasPrefix("T")) { found.append("\(at): '\(text)' is not an ISO-8601 time") }
          } else if !(child is NSNull) && !(child is [String: Any]) {
            found.append("\(at): a time that is not a string")
          }
        }
        found += violations(child, path: at)
      }
    } else if let array = value as? [Any] {
      for child in array { found += violations(child, path: path + "[]") }
    } else if let text = value as? String, let first = text.first, first == "{" || first == "[",
      (try? JSONSerialization.jsonObject(with: Data(text.utf8))) != nil, text.count > 2
    {
      found.append("\(path): JSON inside a string")
    }
    return found
  }

  @Test func everyCommandSpeaksTheVocabulary() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    var outputs: [(String, Any)] = []
    func capture(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws {
      let result = try qtool.run(arguments + ["--json"], environment: environment)
      #expect(result.status == 0, "\(name): \(result.stderr)")
      let value = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8), options: .fragmentsAllowed)
      outputs.append((name, value))
    }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    try capture("data import", ["data", "import", goog, "-s", "GOOG", "-t", "1d"])
    let server = try LoopbackServer(root: sharedData.appendingPathComponent("binance_vision"))
    try capture(
      "data download",
      ["data", "download", "--source", "binance-bulk", "--symbols", "BTCUSDT", "-t", "1d", "--from", "2024-01-01", "--to", "2024-02-01"],
      environment: ["QTOOL_SOURCE_BINANCE_BULK_URL": server.baseURL])
    try capture("data list", ["data", "list"])
    try capture("data info", ["data", "info", "GOOG-1d"])
    try capture("data verify", ["data", "verify", "GOOG-1d"])
    try capture("data preprocess", ["data", "preprocess", "GOOG-1d", "--op", "normalize columns=close", "--out", "goog-n"])
    let spec = qtool.home.appendingPathComponent("s.yaml").path
    try capture("strategy new", ["strategy", "new", "s", "--symbol", "GOOG", "-o", spec])
    try capture("strategy list", ["strategy", "list"])
    try capture("strategy show", ["strategy", "show", "s"])
    try capture("strategy validate", ["strategy", "validate", spec])
    try capture("strategy versions", ["strategy", "versions", "s"])
    try capture("backtest run", ["backtest", "run", "s"])
    try capture("backtest run (fast 5)", ["backtest", "run", "s", "--param", "fast=5"])
    let runs = try jsonArray(try qtool.run(["backtest", "list", "--json"]).stdout).map { $0["id"] as! String }
    try capture("backtest list", ["backtest", "list"])
    try capture("backtest show", ["backtest", "show", runs[0]])
    try capture("backtest compare", ["backtest", "compare", runs[0], runs[1]])
    try capture("backtest replay", ["backtest", "replay", runs[0]])
    try capture("backtest check", ["backtest", "check", "s"])
    try capture("backtest grid", ["backtest", "grid", "s", "--grid", "fast=5,10", "--top", "2"])
    try capture("backtest grid walk-forward", ["backtest", "grid", "s", "--grid", "fast=5,10", "--walk-forward", "3y/1y"])
    try capture("backtest delete", ["backtest", "delete", runs[1]])
    let jobs = try jsonArray(try qtool.run(["jobs", "list", "--json"]).stdout)
    try capture("jobs list", ["jobs", "list"])
    try capture("jobs show", ["jobs", "show", jobs[0]["id"] as! String])
    try capture("jobs prune", ["jobs", "prune"])
    try capture("db info", ["db", "info"])
    try capture("db backup", ["db", "backup", qtool.home.appendingPathComponent("b.db").path])
    try capture("config show", ["config", "show"])
    try capture("version", ["version"])
    try capture("data delete", ["data", "delete", "goog-n"])
    let lines = try qtool.run(["data", "export", "GOOG-1d", "--format", "jsonl", "--to", "2004-08-21"]).stdout.split(separator: "\n")
    outputs.append(("data export jsonl", try lines.map { try JSONSerialization.jsonObject(with: Data($0.utf8)) }))

    for (name, value) in outputs {
      #expect(Self.violations(value).isEmpty, "\(name): \(Self.violations(value))")
    }
    let text = outputs.map { name, value in Self.paths(value).sorted().map { "\(name): \($0)" }.joined(separator: "\n") }.joined(separator: "\n") + "\n"
    if ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] != nil {
      try text.write(to: Self.snapshot, atomically: true, encoding: .utf8)
    }
    let committed = (try? String(contentsOf: Self.snapshot, encoding: .utf8)) ?? ""
    let (now, before) = (Set(text.split(separator: "\n")), Set(committed.split(separator: "\n")))
    #expect(now.subtracting(before).sorted().isEmpty, "new JSON fields (record with RECORD_SNAPSHOTS=1 if meant): \(now.subtracting(before).sorted())")
    #expect(before.subtracting(now).sorted().isEmpty, "JSON fields gone: \(before.subtracting(now).sorted())")
  }
}
