import Foundation
import QtoolArgs
import QtoolCore
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

  /// Digits after the point of a number as written, exponent included (`0.05` and `5e-2` → 2,
  /// `5` → 0); nil past what a double keeps.
  private static func decimals(_ text: Substring) -> Int? {
    guard let decimal = Decimal(string: text.trimmingCharacters(in: .whitespaces), locale: Locale(identifier: "en_US_POSIX")) else { return nil }
    let digits = max(0, -decimal.exponent)
    return digits <= 15 ? digits : nil
  }

  /// `--grid fast=5..50:1` (from, to inclusive, step) or `--grid fast=5,10,20`.
  static func axis(_ text: String, _ arguments: ParsedArguments) throws -> GridAxis {
    func usage(_ message: String) -> UsageError { UsageError(message, commandPath: arguments.commandPath) }
    let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
    guard parts.count == 2, !parts[0].isEmpty else { throw usage("--grid: expected name=FROM..TO:STEP or name=a,b,c, got '\(text)'") }
    let body = parts[1]
    let values: [Double]
    if let range = body.range(of: "..") {
      let lower = Double(body[..<range.lowerBound])
      let rest = body[range.upperBound...].split(separator: ":", maxSplits: 1)
      let upper = rest.first.flatMap { Double($0) }
      let step = rest.count > 1 ? Double(rest[1]) : 1
      guard let lower, let upper, let step, lower.isFinite, upper.isFinite, step.isFinite, step > 0, upper >= lower else {
        throw usage("--grid \(parts[0]): expected FROM..TO:STEP of finite numbers with FROM ≤ TO and STEP > 0, got '\(body)'")
      }
      // Counted in doubles first: 0..1e300:1e-300 has more values than an Int holds.
      let span = ((upper - lower) / step + 1e-9).rounded(.down)
      guard span.isFinite, span < 100_000 else {
        throw usage(
          "--grid \(parts[0]): \(span.isFinite ? DisplayFormat.count(span + 1) + " values" : "more values than can be counted") — the most is 100,000")
      }
      // 0.1 + 2 × 0.1 is 0.30000000000000004: each value is rounded to the decimals FROM and
      // STEP are written with, so the grid runs, stores and shows k = 0.3, and --where 'k == 0.3'
      // finds it.
      let written = [body[..<range.lowerBound], rest.count > 1 ? rest[1] : "1"].map(decimals)
      let scale = written.contains(nil) ? nil : pow(10, Double(written.map { $0! }.max()!))
      values = (0...Int(span)).map { index in
        let value = lower + Double(index) * step
        // Past 2^52 a scaled double has no fraction left to round away.
        guard let scale, abs(value * scale) < 0x1p52 else { return value }
        return (value * scale).rounded() / scale
      }
    } else {
      let listed = body.split(separator: ",").map { Double($0) }
      guard !listed.isEmpty, listed.allSatisfy({ $0 != nil }) else { throw usage("--grid \(parts[0]): '\(body)' is not a list of numbers") }
      values = listed.map { $0! }
    }
    return GridAxis(name: parts[0], values: values)
  }
}
