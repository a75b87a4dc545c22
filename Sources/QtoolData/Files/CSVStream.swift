import Dispatch
import Foundation
import QtoolCore

/// CSV text parsed in pieces of about 4 MB of whole lines, each by a parser of its own on any
/// free core, while more text is appended (as an archive unpacks). The result is that of
/// parsing the whole text at once; errors name the line in the whole text.
///
/// Memory stays bounded by the bars kept, not by the text: a few pieces wait for a parser at
/// most (`append` blocks until one is free), a line may not be longer than the layout's
/// `maxLineLength`, and the first error stops `append` instead of reading on to the end.
public final class CSVStream {
  static let pieceSize = 4 << 20
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
  /// Pieces handed out and not yet parsed.
  private let slots = DispatchSemaphore(value: max(2, ProcessInfo.processInfo.activeProcessorCount + 1))
  private let failed = Flag()

  private final class Piece: @unchecked Sendable {
    // Written by its parser, read after the group is waited for.
    var outcome: Result<(result: CSVBarReader.Result, lines: Int), any Error>?
  }

  private final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
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

  private var maxLineLength: Int { layout?.maxLineLength ?? min(max(options.maxLineLength, 64), Self.pieceSize) }

  public func append(_ bytes: UnsafeRawBufferPointer) throws {
    pending.append(contentsOf: bytes)
    var start = 0
    while pending.count - start >= Self.pieceSize {
      // The last line end within a piece's length; none means a line longer than any allowed.
      let limit = start + Self.pieceSize
      guard let newline = pending[start..<limit].lastIndex(of: 10) else {
        pending = []
        throw firstError(orLineTooLongAfterPieces: true)
      }
      try dispatch(start..<(newline + 1))
      start = newline + 1
    }
    pending.removeFirst(start)
    if failed.isSet {
      pending = []
      throw firstError(orLineTooLongAfterPieces: false)
    }
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
      case .failure(let error):
        throw Self.renumbered(error, linesBefore: linesBefore)
      }
    }
    return combined
  }

  /// Once every piece handed out is parsed: the first error among them, in the order of the
  /// text; else (`orLineTooLongAfterPieces`) that the line after them is too long.
  private func firstError(orLineTooLongAfterPieces: Bool) -> any Error {
    group.wait()
    var linesBefore = 0
    for piece in pieces {
      switch piece.outcome! {
      case .success(let parsed): linesBefore += parsed.lines
      case .failure(let error): return Self.renumbered(error, linesBefore: linesBefore)
      }
    }
    return CSVError.row(file: file, line: linesBefore + 1, reason: CSVBarReader.lineTooLong(maxLineLength))
  }

  /// Lines are counted within a piece; its first line is the text's next.
  private static func renumbered(_ error: any Error, linesBefore: Int) -> any Error {
    switch error {
    case CSVError.row(let file, let line, let reason): return CSVError.row(file: file, line: linesBefore + line, reason: reason)
    case CSVError.cell(let file, let line, let column, let reason):
      return CSVError.cell(file: file, line: linesBefore + line, column: column, reason: reason)
    default: return error
    }
  }

  /// Hands `range` of the pending text, whole lines, to a parser.
  private func dispatch(_ range: Range<Int>) throws {
    if layout == nil {
      let firstLine = pending[range].prefix { $0 != 10 }
      guard firstLine.count <= maxLineLength else {
        throw CSVError.row(file: file, line: 1, reason: CSVBarReader.lineTooLong(maxLineLength))
      }
      let text = String(decoding: firstLine, as: UTF8.self)
      guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { throw CSVError.empty(file: file) }
      layout = try CSVBarReader.detect(firstLine: text, options: options, file: file)
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(range.count + 1)
    bytes.append(contentsOf: pending[range])
    bytes.append(0)  // strtod stops at the NUL after the last field
    let text = bytes
    let piece = Piece()
    let (layout, file, startsFile, slots, failed, cancellation) = (layout!, file, pieces.isEmpty, slots, failed, cancellation)
    pieces.append(piece)
    slots.wait()
    queue.async(group: group) {
      defer { slots.signal() }
      piece.outcome = Result {
        try cancellation.check()
        return try text.withUnsafeBufferPointer { buffer in
          try CSVBarReader.parse(buffer, range: 0..<(buffer.count - 1), startsFile: startsFile, layout: layout, file: file)
        }
      }
      if case .failure = piece.outcome { failed.set() }
    }
  }
}
