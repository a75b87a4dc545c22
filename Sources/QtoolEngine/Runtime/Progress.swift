import QtoolCore
import Synchronization

/// What a progress event counts.
public enum ProgressUnit: String, Sendable, Codable {
  case items, bytes, bars, pages, files, combinations, windows, rounds
}

/// Where an operation is: the phase, how far through it, how fast, and named figures (an
/// epoch's loss, the best metric so far). The CLI draws it, a job stores it, the server streams it.
public struct ProgressEvent: Codable, Sendable, Equatable {
  public var phase: String
  public var done: Int
  public var total: Int?
  public var unit: ProgressUnit
  /// Units per second since the phase began.
  public var rate: Double?
  /// Seconds left at that rate, when the total is known.
  public var etaSeconds: Double?
  public var figures: [String: Double]
  /// The phase is over.
  public var finished: Bool

  public init(
    phase: String, done: Int, total: Int?, unit: ProgressUnit, rate: Double? = nil, etaSeconds: Double? = nil, figures: [String: Double] = [:],
    finished: Bool = false
  ) {
    self.phase = phase
    self.done = done
    self.total = total
    self.unit = unit
    self.rate = rate
    self.etaSeconds = etaSeconds
    self.figures = figures
    self.finished = finished
  }

  enum CodingKeys: String, CodingKey { case phase, done, total, unit, rate, etaSeconds = "eta_seconds", figures, finished }

  /// Every key always present (null when unknown): one shape for scripts.
  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(phase, forKey: .phase)
    try container.encode(done, forKey: .done)
    try container.encode(total, forKey: .total)
    try container.encode(unit, forKey: .unit)
    try container.encode(rate.flatMap { $0.isFinite ? $0 : nil }, forKey: .rate)
    try container.encode(etaSeconds.flatMap { $0.isFinite ? $0 : nil }, forKey: .etaSeconds)
    try container.encode(figures, forKey: .figures)
    try container.encode(finished, forKey: .finished)
  }
}

/// Receives progress events; called from whichever thread the operation reports on.
public protocol ProgressSink: Sendable {
  func emit(_ event: ProgressEvent)
}

/// Drops every event.
public struct SilentProgress: ProgressSink {
  public init() {}
  public func emit(_ event: ProgressEvent) {}
}

/// Sends every event to each of `sinks` (a terminal bar and a job's row).
public struct ProgressFanOut: ProgressSink {
  public var sinks: [any ProgressSink]
  public init(_ sinks: [any ProgressSink]) { self.sinks = sinks }
  public func emit(_ event: ProgressEvent) { for sink in sinks { sink.emit(event) } }
}

/// What an operation reports through: phases, counts and figures, turned into events with a
/// rate and an ETA measured on the operation's clock.
public final class ProgressTracker: Sendable {
  private struct Phase {
    var name = ""
    var total: Int?
    var unit = ProgressUnit.items
    var done = 0
    var started: Int64 = 0
    var figures: [String: Double] = [:]
  }

  let sink: any ProgressSink
  private let clock: any WallClock
  private let phase = Mutex(Phase())

  public init(sink: any ProgressSink, clock: any WallClock) {
    self.sink = sink
    self.clock = clock
  }

  /// A new phase of `total` units (nil when unknown).
  public func begin(_ name: String, total: Int?, unit: ProgressUnit) {
    change { $0 = Phase(name: name, total: total, unit: unit, done: 0, started: $1, figures: [:]) }
  }

  /// `done` units of the phase are complete.
  public func update(done: Int) { change { phase, _ in phase.done = done } }

  /// `done` units are complete of a total now known to be `total` (work that ended before its
  /// planned end: training stopped early).
  public func update(done: Int, total: Int?) {
    change { phase, _ in
      phase.done = done
      phase.total = total
    }
  }

  /// Adds `count` units to what is done (for work finishing on several threads).
  public func advance(by count: Int) { change { phase, _ in phase.done += count } }

  /// Sets named figures of the phase (e.g. `loss`), sent with this and later events.
  public func record(_ figures: [String: Double]) { change { phase, _ in phase.figures.merge(figures) { $1 } } }

  public func finish() { change(finished: true) { _, _ in } }

  /// Changes the phase (given the clock's now) and sends the event it makes.
  private func change(finished: Bool = false, _ body: (inout Phase, Int64) -> Void) {
    let now = clock.now()
    let event = phase.withLock { phase in
      body(&phase, now)
      return Self.event(phase, now: now, finished: finished)
    }
    sink.emit(event)
  }

  private static func event(_ phase: Phase, now: Int64, finished: Bool) -> ProgressEvent {
    let elapsed = Double(now - phase.started) / 1000
    let rate = elapsed > 0 ? Double(phase.done) / elapsed : nil
    let eta = rate.flatMap { rate in phase.total.map { total in rate > 0 ? Double(max(0, total - phase.done)) / rate : nil } ?? nil }
    return ProgressEvent(
      phase: phase.name, done: phase.done, total: phase.total, unit: phase.unit, rate: rate, etaSeconds: eta, figures: phase.figures,
      finished: finished)
  }
}
