import Dispatch
import Foundation
import QtoolCore

/// CSV text handed over a piece at a time (as an archive is unpacked), parsed while more
/// arrives: every 4 MB of whole lines goes to a parser of its own on another core, so
/// decompression and parsing overlap. The result is `CSVBarReader.read`'s over the whole text.
public final class CSVStream {
  private static let pieceSize = 4 << 20
  private let options: CSVOptions
  private let file: String
  private var layout: CSVLayout?
  /// Bytes not yet handed to a parser: less than a piece, or an unfinished line.
  private var pending: [UInt8] = []
  private var pieces: [Piece] = []
  private let group = DispatchGroup()
  private let queue = DispatchQueue(label: "qtool.csv-stream", attributes: .concurrent)

  private final class Piece: @unchecked Sendable {
    // Written by its parser, read after the group is waited for.
    var outcome: Result<(result: CSVBarReader.Result, lines: Int), any Error>?
  }

  public init(options: CSVOptions, file: String) {
    self.options = options
    self.file = file
  }

  public func append(_ bytes: UnsafeRawBufferPointer) throws {
    pending.append(contentsOf: bytes)
    if pending.count >= Self.pieceSize { try dispatch(final: false) }
  }

  /// The bars of the whole text, once every byte has been appended.
  public func finish() throws -> CSVBarReader.Result {
    if !pending.isEmpty || pieces.isEmpty { try dispatch(final: true) }
    group.wait()
    var combined = CSVBarReader.Result(series: BarSeries(), skippedRows: 0)
    var linesBefore = 0
    for piece in pieces {
      switch piece.outcome! {
      case .success(let parsed):
        combined.series.append(contentsOf: parsed.result.series)
        combined.skippedRows += parsed.result.skippedRows
        linesBefore += parsed.lines
      case .failure(CSVError.row(let file, let line, let reason)):
        // Lines are counted within the piece; its first line is the text's next.
        throw CSVError.row(file: file, line: linesBefore + line, reason: reason)
      case .failure(let error):
        throw error
      }
    }
    return combined
  }

  /// Hands the whole lines pending (all of them when `final`) to a parser.
  private func dispatch(final: Bool) throws {
    let cut = final ? pending.count : (pending.lastIndex(of: 10).map { $0 + 1 } ?? 0)
    guard cut > 0 || (final && pieces.isEmpty) else { return }
    if layout == nil {
      let firstLine = String(decoding: pending.prefix { $0 != 10 }, as: UTF8.self)
      guard !firstLine.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw CSVError.empty(file: file) }
      layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: file)
    }
    var bytes = Array(pending[..<cut])
    bytes.append(0)  // strtod stops at the NUL after the last field
    let text = bytes
    pending.removeFirst(cut)
    let piece = Piece()
    let (layout, file, startsFile) = (layout!, file, pieces.isEmpty)
    pieces.append(piece)
    queue.async(group: group) {
      piece.outcome = Result {
        try text.withUnsafeBufferPointer { buffer in
          try CSVBarReader.parse(buffer, range: 0..<(buffer.count - 1), startsFile: startsFile, layout: layout, file: file)
        }
      }
    }
  }
}
