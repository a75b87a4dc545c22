import Foundation
import QtoolCore
import QtoolData
import QtoolStore

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
    case dataset, parent, barsIn = "bars_in", barsOut = "bars_out", timeframe, columns, steps, contentHash = "content_hash"
  }
}

extension DataOperations {
  /// Derives `output` from `name` by `operations`; the new dataset records its parent, the
  /// operations as applied (with fitted parameters) and its content hash.
  public func preprocess(name: String, operations: [PreprocessOperation], output: String, replace: Bool) throws -> PreprocessReport {
    guard !operations.isEmpty else { throw PreprocessError.invalid("no operations: give --op … or --pipeline FILE.json") }
    guard output != name else { throw PreprocessError.invalid("--out must name a new dataset, not the input '\(name)'") }
    let parent = try database.dataset(named: name)
    let input = Frame(
      bars: try database.bars(datasetID: parent.id), timeframe: parent.parsedTimeframe, calendar: parent.parsedCalendar,
      extra: try database.columns(datasetID: parent.id))
    let (result, applied, steps) = try Preprocessor.apply(operations, to: input)
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    let pipeline = String(decoding: try encoder.encode(["operations": applied]), as: UTF8.self)
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
    try database.storeDerived(definition, bars: result.bars, columns: columns, contentHash: hash, replace: replace)
    return PreprocessReport(
      dataset: output, parent: parent.name, barsIn: input.count, barsOut: result.count, timeframe: result.timeframe.description,
      columns: ["open", "high", "low", "close", "volume"] + result.extraNames, steps: steps, contentHash: hash)
  }

  /// Operations from a pipeline file: `{"operations": […]}`.
  public static func readPipeline(path: String) throws -> [PreprocessOperation] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw OperationError.notFound("cannot read pipeline file \(path)")
    }
    struct Pipeline: Decodable { var operations: [PreprocessOperation] }
    do {
      return try JSONDecoder().decode(Pipeline.self, from: data).operations
    } catch {
      throw PreprocessError.invalid("\(path) is not a pipeline ({\"operations\": [{\"type\": …}, …]}): \(error)")
    }
  }
}
