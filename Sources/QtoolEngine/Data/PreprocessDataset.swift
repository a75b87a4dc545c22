import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// `qtool data preprocess`: derive a dataset by a pipeline of operations.
public struct PreprocessRequest: Codable, Sendable, Equatable {
  public var dataset: String
  public var operations: [PreprocessOperation]
  public var output: String
  /// Replace `output` when it exists (a derived dataset only).
  public var replace: Bool
  /// Replace `output` even when it holds downloaded or imported bars.
  public var replaceOriginal: Bool
  public var wait: Bool

  public init(
    dataset: String, operations: [PreprocessOperation], output: String, replace: Bool = false, replaceOriginal: Bool = false, wait: Bool = false
  ) {
    self.replaceOriginal = replaceOriginal
    self.dataset = dataset
    self.operations = operations
    self.output = output
    self.replace = replace
    self.wait = wait
  }

  enum CodingKeys: String, CodingKey { case dataset, operations, output = "out", replace, replaceOriginal = "replace_original", wait }

  /// The flags may be left out of a request (false).
  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    dataset = try container.decode(String.self, forKey: .dataset)
    operations = try container.decode([PreprocessOperation].self, forKey: .operations)
    output = try container.decode(String.self, forKey: .output)
    replace = try container.decodeIfPresent(Bool.self, forKey: .replace) ?? false
    replaceOriginal = try container.decodeIfPresent(Bool.self, forKey: .replaceOriginal) ?? false
    wait = try container.decodeIfPresent(Bool.self, forKey: .wait) ?? false
  }
}

public struct PreprocessReport: Codable, Sendable {
  public var dataset: String
  public var parent: String
  public var barsIn: Int
  public var barsOut: Int
  public var timeframe: String
  public var columns: [String]
  public var steps: [Preprocessor.Step]
  public var contentHash: String

  enum CodingKeys: String, CodingKey {
    case dataset, parent, barsIn = "parent_bars", barsOut = "bars", timeframe, columns, steps, contentHash = "content_hash"
  }
}

extension DataOperations {
  /// Derives `output` from `name` by `operations`; the new dataset records its parent, the
  /// operations as applied (with fitted parameters) and its content hash.
  /// A job, holding the output dataset's lease.
  public func preprocess(_ request: PreprocessRequest) throws -> PreprocessReport {
    guard !request.operations.isEmpty else {
      throw OperationError.invalidArgument("no operations to apply", field: "operations", hint: "give operations with {op} or {pipeline}")
    }
    try Identifier.check(request.output, as: .dataset)
    guard request.output != request.dataset else {
      throw OperationError.invalidArgument("the output must be a new dataset, not the input '\(request.dataset)'", field: "out")
    }
    return try JobRunner.run(.preprocess, request: request, context: context, link: { ["dataset": .string($0.dataset)] }) { context in
      let lease = try context.leases.acquire(
        LeaseManager.datasetKey(request.output), holder: context.holder("preprocess"), wait: request.wait, cancellation: context.cancellation,
        clock: context.clock)
      defer { lease.release() }
      return try DataOperations(context).preprocessNow(
        name: request.dataset, operations: request.operations, output: request.output, replace: request.replace || request.replaceOriginal,
        replaceOriginal: request.replaceOriginal)
    }
  }

  func preprocessNow(name: String, operations: [PreprocessOperation], output: String, replace: Bool, replaceOriginal: Bool) throws -> PreprocessReport {
    let parent = try database.dataset(named: name)
    let input = Frame(
      bars: try database.bars(datasetID: parent.id), timeframe: parent.parsedTimeframe, calendar: parent.parsedCalendar,
      extra: try database.columns(datasetID: parent.id))
    let (result, applied, steps) = try Preprocessor.apply(operations, to: input)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    struct Pipeline: Encodable {
      var operations: [PreprocessOperation]
      /// What lets earlier bars see later ones: `backtest check` reports it.
      var lookAhead: [String]?
      enum CodingKeys: String, CodingKey { case operations, lookAhead = "look_ahead" }
    }
    let lookAhead = steps.compactMap(\.lookAhead)
    let pipeline = String(
      decoding: try encoder.encode(Pipeline(operations: applied, lookAhead: lookAhead.isEmpty ? nil : lookAhead)), as: UTF8.self)
    let columns = result.extraNames.map { (name: $0, values: result.extra[$0]!) }
    var hash = ContentHash.of(result.bars)
    if !columns.isEmpty {
      hash = ContentHash.sha256Hex(
        Data(
          (hash
            + columns.map {
              "\($0.name):"
                + ContentHash.of(
                  BarSeries(timestamps: result.bars.timestamps, open: $0.values, high: $0.values, low: $0.values, close: $0.values, volume: $0.values)
                )
            }.joined()).utf8))
      hash = "sha256:" + hash
    }
    let definition = DatasetDefinition(
      name: output, source: parent.source, symbol: parent.symbol, timeframe: result.timeframe, calendar: result.calendar,
      origin: "derived", parentID: parent.id, pipeline: pipeline)
    try context.cancellation.check()
    try database.storeDerived(definition, bars: result.bars, columns: columns, contentHash: hash, replace: replace, replaceOriginal: replaceOriginal)
    return PreprocessReport(
      dataset: output, parent: parent.name, barsIn: input.count, barsOut: result.count, timeframe: result.timeframe.description,
      columns: ["open", "high", "low", "close", "volume"] + result.extraNames, steps: steps, contentHash: hash)
  }

  /// Operations from a pipeline file: `{"operations": […]}`.
  public static func readPipeline(path: String) throws -> [PreprocessOperation] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw OperationError.notFound("cannot read pipeline file \(path)", code: "file_not_found", details: ["path": .string(path)])
    }
    struct Pipeline: Decodable { var operations: [PreprocessOperation] }
    do {
      return try JSONDecoder().decode(Pipeline.self, from: data).operations
    } catch {
      throw PreprocessError.invalid("\(path) is not a pipeline ({\"operations\": [{\"type\": …}, …]}): \(error)")
    }
  }
}
