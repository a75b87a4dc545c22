import Foundation
import QtoolEngine
import Synchronization

/// A progress bar on stderr for TTYs: `backup  [#########-----]  63%  1.2k/1.9k pages  8.1k/s  ETA 0.1s`,
/// drawn from an operation's progress events. Redraws at most ten times a second; draws
/// nothing when stderr is not a terminal or with --quiet.
final class ProgressBar: ProgressSink {
  private struct State {
    var lastDraw = 0.0
    var drawn = false
  }

  private let state = Mutex(State())
  private let stream: OutputStream
  private let enabled: Bool

  init(stream: OutputStream, enabled: Bool) {
    self.stream = stream
    self.enabled = enabled
  }

  func emit(_ event: ProgressEvent) {
    guard enabled else { return }
    let now = Date().timeIntervalSinceReferenceDate
    let draw = state.withLock { state -> Bool in
      guard event.finished || now - state.lastDraw >= 0.1 else { return false }
      state.lastDraw = now
      let wasDrawn = state.drawn
      state.drawn = !event.finished
      return !event.finished || wasDrawn
    }
    guard draw else { return }
    stream.write("\r\u{1B}[2K" + Self.render(event) + (event.finished ? "\n" : ""))
  }

  /// Clears a half-drawn line, e.g. before an error message.
  func clear() {
    guard enabled else { return }
    let drawn = state.withLock { state -> Bool in
      defer { state.drawn = false }
      return state.drawn
    }
    if drawn { stream.write("\r\u{1B}[2K") }
  }

  static func render(_ event: ProgressEvent) -> String {
    let amount = { (value: Int) in event.unit == .bytes ? Format.bytes(value) : Format.compact(Double(value)) }
    let rate = event.rate ?? 0
    let rateText = event.unit == .bytes ? Format.bytes(Int(rate)) + "/s" : Format.compact(rate) + "/s"
    let figures = event.figures.sorted { $0.key < $1.key }.map { "\($0.key) \(Format.compact($0.value))" }.joined(separator: "  ")
    let tail = figures.isEmpty ? "" : "  " + figures
    guard let total = event.total, total > 0 else {
      return "\(event.phase)  \(amount(event.done)) \(event.unit.rawValue)  \(rateText)" + tail
    }
    let fraction = min(1, Double(event.done) / Double(total))
    let width = 24
    let filled = Int(fraction * Double(width))
    let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
    let percent = Int((fraction * 100).rounded(.down))
    return
      "\(event.phase)  [\(bar)] \(percent)%  \(amount(event.done))/\(amount(total)) \(event.unit.rawValue)  \(rateText)  ETA \(Format.duration(event.etaSeconds ?? 0))"
      + tail
  }
}
