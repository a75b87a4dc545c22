import Foundation
import QtoolEngine
import Synchronization

/// A progress bar on stderr for TTYs: `backup  [#########-----]  63%  1.2k/1.9k pages  8.1k/s  ETA 0.1s`.
/// Redraws at most ten times a second; draws nothing when stderr is not a terminal or with --quiet.
final class ProgressBar: ProgressReporter {
  private struct State {
    var label = ""
    var total: Int?
    var unit = ProgressUnit.items
    var done = 0
    var started = Date()
    var lastDraw = Date.distantPast
    var drawn = false
  }

  private let state = Mutex(State())
  private let stream: OutputStream
  private let enabled: Bool

  init(stream: OutputStream, enabled: Bool) {
    self.stream = stream
    self.enabled = enabled
  }

  func begin(_ label: String, total: Int?, unit: ProgressUnit) {
    state.withLock { $0 = State(label: label, total: total, unit: unit, started: Date()) }
  }

  func update(done: Int) {
    guard enabled else { return }
    let line: String? = state.withLock { state in
      state.done = done
      let now = Date()
      guard now.timeIntervalSince(state.lastDraw) >= 0.1 else { return nil }
      state.lastDraw = now
      state.drawn = true
      return Self.render(state, now: now)
    }
    if let line { stream.write("\r\u{1B}[2K" + line) }
  }

  func finish() {
    guard enabled else { return }
    let (drawn, line): (Bool, String) = state.withLock { state in (state.drawn, Self.render(state, now: Date())) }
    if drawn { stream.write("\r\u{1B}[2K" + line + "\n") }
  }

  /// Clears a half-drawn line, e.g. before an error message.
  func clear() {
    if enabled, state.withLock({ $0.drawn }) { stream.write("\r\u{1B}[2K") }
  }

  private static func render(_ state: State, now: Date) -> String {
    let elapsed = max(now.timeIntervalSince(state.started), 0.001)
    let rate = Double(state.done) / elapsed
    let amount = { (value: Int) in state.unit == .bytes ? Format.bytes(value) : Format.compact(Double(value)) }
    let rateText = state.unit == .bytes ? Format.bytes(Int(rate)) + "/s" : Format.compact(rate) + "/s"
    guard let total = state.total, total > 0 else {
      return "\(state.label)  \(amount(state.done)) \(state.unit.rawValue)  \(rateText)"
    }
    let fraction = min(1, Double(state.done) / Double(total))
    let width = 24
    let filled = Int(fraction * Double(width))
    let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
    let remaining = rate > 0 ? Double(total - state.done) / rate : 0
    let percent = Int((fraction * 100).rounded(.down))
    return
      "\(state.label)  [\(bar)] \(percent)%  \(amount(state.done))/\(amount(total)) \(state.unit.rawValue)  \(rateText)  ETA \(Format.duration(remaining))"
  }
}
