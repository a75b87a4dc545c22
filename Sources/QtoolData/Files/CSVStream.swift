import Dispatch
import Foundation
import QtoolCore

/// CSV text parsed in pieces of about 4 MB of whole lines, each by a parser of its own on any
/// free core, while more text is appended (as an archive unpacks). The result is that of
/// parsing the whole text at once; errors name the line in the whole text.
public final class CSVStream {
  private static let pieceSize = 4 << 20
  private let options: CSVOptions
  private let file: String
  private var layout: CSVLayout?
  /// Text not yet handed to a parser: less than a piece, or an unfinished line.
  private var pending: [UInt8] = []
  private var pieces: [Piece] = []
  private let group = DispatchGroup()
  private let queue = DispatchQueue(label: "qtool.csv-stream", attributes: .concurrent)
  /// Once cancelled, pieces not yet parsed are skipped and `finish()` stops waiting and throws.
  public var cancellation: CancellationToken = .never

  private final class Piece: @unchecked Sendable {
    // Written by its parser, read after the group is waited for.
    var outcome: Result<(result: CSVBarReader.Result, lines: Int), any Error>?
  }

  /// The layout is worked out from the first line with `options`.
  public init(options: CSVOptions, file: String) {
    self.options = options
    self.file = file
  }

  public init(layout: CSVLayout, file: String) {
    self.options = CSVOptions()
    self.layout = layout
    self.file = file
  }

  public func append(_ bytes: UnsafeRawBufferPointer) throws {
    pending.append(contentsOf: bytes)
    var start = 0
    while pending.count - start >= Self.pieceSize {
      // The last line end within a piece's length, or the first after it for a longer line.
      let limit = start + Self.pieceSize
      guard let newline = pending[start..<limit].lastIndex(of: 10) ?? pending[limit...].firstIndex(of: 10) else { break }
      try dispatch(start..<(newline + 1))
      start = newline + 1
    }
    pending.removeFirst(start)
  }

  /// The bars of the whole text, once every byte has been appended.
  public func finish() throws -> CSVBarReader.Result {
    if !pending.isEmpty || pieces.isEmpty { try dispatch(pending.indices) }
    pending = []
    // Parsing the pieces still in flight can take most of a second for a large file: wait in
    // slices, so a cancelled import stops within one.
    while group.wait(timeout: .now() + .milliseconds(20)) == .timedOut { try cancellation.check() }
    try cancellation.check()
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

  /// Hands `range` of the pending text, whole lines, to a parser.
  private func dispatch(_ range: Range<Int>) throws {
    if layout == nil {
      let firstLine = String(decoding: pending[range].prefix { $0 != 10 }, as: UTF8.self)
      guard !firstLine.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw CSVError.empty(file: file) }
      layout = try CSVBarReader.detect(firstLine: firstLine, options: options, file: file)
    }
    var bytes = Array(pending[range])
    bytes.append(0)  // strtod stops at the NUL after the last field
    let text = bytes
    let piece = Piece()
    let (layout, file, startsFile, cancellation) = (layout!, file, pieces.isEmpty, cancellation)
    pieces.append(piece)
    queue.async(group: group) {
      piece.outcome = Result {
        try cancellation.check()
        return try text.withUnsafeBufferPointer { buffer in
          try CSVBarReader.parse(buffer, range: 0..<(buffer.count - 1), startsFile: startsFile, layout: layout, file: file)
        }
      }
    }
  }
}
