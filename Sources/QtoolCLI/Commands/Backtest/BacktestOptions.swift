import Foundation
import QtoolArgs
import QtoolEngine

/// The command-line forms of a backtest's params and a grid's axes.
enum BacktestOptions {
  /// `--from` of the backtest commands: when trading starts; the indicators see the bars before it.
  static let from = OptionSpec.value(
    "from", .date, valueName: "date",
    help: "First bar to trade (UTC); the indicators warm up on the stored bars before it.")
  static let noWarmup = OptionSpec.flag(
    "no-warmup", help: "Compute the indicators from --from on, cold, instead of on the stored bars before it.")

  static let allowInSample = OptionSpec.flag(
    "allow-in-sample", help: "Let model() predict bars its (split) model trained on, instead of refusing the run.")

  /// `--param fast=20`, repeated; one name given twice is refused, never silently the last.
  static func parameters(_ arguments: ParsedArguments) throws -> [String: Double] {
    var parameters: [String: Double] = [:]
    var given: [String: String] = [:]
    for pair in arguments.strings("param") {
      let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
      guard parts.count == 2, !parts[0].isEmpty, let value = Double(parts[1]) else {
        throw UsageError("--param: expected name=number, got '\(pair)'", commandPath: arguments.commandPath)
      }
      try refuseRepeatedKey(parts[0], option: "param", first: given[parts[0]], second: pair, arguments)
      given[parts[0]] = pair
      parameters[parts[0]] = value
    }
    return parameters
  }

  /// A repeatable `KEY=VALUE` option (`--param`, `--map`) given one KEY twice: which value was
  /// meant cannot be known, so it is a usage error naming the key (single-valued options
  /// given twice take the last, as the README's conventions say; these are not that).
  static func refuseRepeatedKey(_ key: String, option: String, first: String?, second: String, _ arguments: ParsedArguments) throws {
    guard let first else { return }
    throw UsageError(
      "--\(option) \(key) is given twice ('\(first)' and '\(second)'); give each \(option == "param" ? "param" : "field") once",
      commandPath: arguments.commandPath)
  }

  /// Digits after the point of a number as written (`0.05` → 2, `5` → 0); nil when that does
  /// not say its precision (an exponent, more digits than a double keeps).
  private static func decimals(_ text: Substring) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    guard !trimmed.contains(where: { $0 == "e" || $0 == "E" }) else { return nil }
    guard let point = trimmed.firstIndex(of: ".") else { return 0 }
    let digits = trimmed.distance(from: point, to: trimmed.endIndex) - 1
    return digits <= 15 ? digits : nil
  }

  /// `--grid fast=5..50:1` (from, to inclusive, step) or `--grid fast=5,10,20`.
  static func axis(_ text: String, _ arguments: ParsedArguments) throws -> GridAxis {
    func usage(_ message: String) -> UsageError { UsageError(message, commandPath: arguments.commandPath) }
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty else { throw usage("--grid: expected name=FROM..TO:STEP or name=a,b,c, got '\(text)'") }
    let body = parts[1]
    if let range = body.range(of: "..") {
      let lower = Double(body[..<range.lowerBound])
      let rest = body[range.upperBound...].split(separator: ":", maxSplits: 1)
      let upper = rest.first.flatMap { Double($0) }
      let step = rest.count > 1 ? Double(rest[1]) : 1
      guard let lower, let upper, let step, step > 0, upper >= lower else {
        throw usage("--grid \(parts[0]): expected FROM..TO:STEP with FROM ≤ TO and STEP > 0, got '\(body)'")
      }
      let count = Int(((upper - lower) / step + 1e-9).rounded(.down)) + 1
      guard count <= 100_000 else { throw usage("--grid \(parts[0]): \(count) values is too many") }
      // 0.1 + 2 × 0.1 is 0.30000000000000004: each value is rounded to the decimals FROM and
      // STEP are written with, so the grid runs, stores and shows k = 0.3, and --where 'k == 0.3'
      // finds it.
      let written = [body[..<range.lowerBound], rest.count > 1 ? rest[1] : "1"].map(decimals)
      let scale = written.contains(nil) ? nil : pow(10, Double(written.map { $0! }.max()!))
      return GridAxis(
        name: parts[0],
        values: (0..<count).map { index in
          let value = lower + Double(index) * step
          // Past 2^52 a scaled double has no fraction left to round away.
          guard let scale, abs(value * scale) < 0x1p52 else { return value }
          return (value * scale).rounded() / scale
        })
    }
    let values = body.split(separator: ",").map { Double($0) }
    guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { throw usage("--grid \(parts[0]): '\(body)' is not a list of numbers") }
    return GridAxis(name: parts[0], values: values.map { $0! })
  }
}
