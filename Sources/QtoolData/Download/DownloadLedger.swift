import Foundation
import QtoolCore

/// What downloads have learned about a dataset, kept in its metadata JSON under `download`,
/// so that every run judges the same range the same way:
///
/// ```json
/// {"download": {"starts": "2021-02-01",
///               "holes": [{"from": "2024-03-01", "to": "2024-04-01", "missing": 31, "reason": "…"}],
///               "accepted": [{"from": "2023-03-24", "to": "2023-03-25"}],
///               "unverified": [{"file": "BTCUSDT-1d-2024-05.zip", "from": "2024-05-01", "to": "2024-06-01", "reason": "…"}]}}
/// ```
///
/// Times are ISO-8601 UTC; every `to` is exclusive.
public struct DownloadLedger: Codable, Sendable, Equatable {
  /// The source has nothing before this open time: earlier requests came back empty while
  /// later ones held bars. Later runs do not ask for earlier bars again (unless `--full`).
  public var starts: String?
  /// Ranges still missing after the last run, named again (and fetched again) by every run.
  public var holes: [Hole]
  /// Ranges the user accepted as missing (`--accept-missing`): not fetched, not a failure.
  public var accepted: [Period]
  /// Archives stored without their checksum (`--no-verify`).
  public var unverified: [Unverified]

  public struct Period: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    public init(_ range: Range<Int64>) {
      from = UTCCalendar.format(range.lowerBound)
      to = UTCCalendar.format(range.upperBound)
    }
    public init(from: String, to: String) {
      self.from = from
      self.to = to
    }
    public var range: Range<Int64>? {
      guard let lower = TimestampParser.parse(from), let upper = TimestampParser.parse(to), lower < upper else { return nil }
      return lower..<upper
    }
  }

  public struct Hole: Codable, Sendable, Equatable {
    public var from: String
    public var to: String
    /// Bars (24x7) or weekdays (weekdays calendar) missing.
    public var missing: Int
    public var reason: String
    public init(_ range: Range<Int64>, missing: Int, reason: String) {
      from = UTCCalendar.format(range.lowerBound)
      to = UTCCalendar.format(range.upperBound)
      self.missing = missing
      self.reason = reason
    }
    public var range: Range<Int64>? { Period(from: from, to: to).range }
  }

  public struct Unverified: Codable, Sendable, Equatable {
    public var file: String
    public var from: String
    public var to: String
    public var reason: String
    public init(file: String, from: String, to: String, reason: String) {
      self.file = file
      self.from = from
      self.to = to
      self.reason = reason
    }
  }

  public init(starts: String? = nil, holes: [Hole] = [], accepted: [Period] = [], unverified: [Unverified] = []) {
    self.starts = starts
    self.holes = holes
    self.accepted = accepted
    self.unverified = unverified
  }

  enum CodingKeys: String, CodingKey { case starts, holes, accepted, unverified }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    starts = try container.decodeIfPresent(String.self, forKey: .starts)
    holes = try container.decodeIfPresent([Hole].self, forKey: .holes) ?? []
    accepted = try container.decodeIfPresent([Period].self, forKey: .accepted) ?? []
    unverified = try container.decodeIfPresent([Unverified].self, forKey: .unverified) ?? []
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encodeIfPresent(starts, forKey: .starts)
    if !holes.isEmpty { try container.encode(holes, forKey: .holes) }
    if !accepted.isEmpty { try container.encode(accepted, forKey: .accepted) }
    if !unverified.isEmpty { try container.encode(unverified, forKey: .unverified) }
  }

  public var isEmpty: Bool { starts == nil && holes.isEmpty && accepted.isEmpty && unverified.isEmpty }

  public var startsAt: Int64? { starts.flatMap { TimestampParser.parse($0) } }
  public var acceptedRanges: [Range<Int64>] { accepted.compactMap(\.range) }

  /// The ledger in a dataset's metadata JSON (the `download` key), or an empty one.
  public static func read(metadata: String?) -> DownloadLedger {
    guard let metadata, let object = try? JSONSerialization.jsonObject(with: Data(metadata.utf8)) as? [String: Any],
      let ledger = object["download"], let data = try? JSONSerialization.data(withJSONObject: ledger),
      let decoded = try? JSONDecoder().decode(DownloadLedger.self, from: data)
    else { return DownloadLedger() }
    return decoded
  }

  /// The JSON of this ledger, for the `download` key.
  public func json() -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(self)) ?? Data("{}".utf8)
  }

  /// Adds accepted ranges, merging overlaps.
  public mutating func accept(_ ranges: [Range<Int64>]) {
    accepted = RangeSet64.union(acceptedRanges + ranges).map(Period.init)
  }
}

/// `--accept-missing` values: a month (`2024-03`), a day (`2024-03-05`), or `FROM..TO` with
/// any dates or times (`TO` exclusive).
public enum AcceptedPeriod {
  public static func parse(_ text: String) -> Range<Int64>? {
    let trimmed = text.trimmingCharacters(in: .whitespaces)
    if let separator = trimmed.range(of: "..") {
      guard let lower = TimestampParser.parse(String(trimmed[..<separator.lowerBound])),
        let upper = TimestampParser.parse(String(trimmed[separator.upperBound...])), lower < upper
      else { return nil }
      return lower..<upper
    }
    let parts = trimmed.split(separator: "-")
    if parts.count == 2, parts[0].count == 4, parts[1].count == 2, let year = Int(parts[0]), let month = Int(parts[1]), (1...12).contains(month) {
      let start = UTCCalendar.timestamp(year: year, month: month, day: 1)
      return start..<Timeframe(count: 1, unit: .month).next(after: start)
    }
    if parts.count == 3, let start = TimestampParser.parse(trimmed), start % UTCCalendar.dayMilliseconds == 0 {
      return start..<(start + UTCCalendar.dayMilliseconds)
    }
    return nil
  }
}

/// Half-open ranges of open times: union and difference.
public enum RangeSet64 {
  public static func union(_ ranges: [Range<Int64>]) -> [Range<Int64>] {
    var result: [Range<Int64>] = []
    for range in ranges.filter({ !$0.isEmpty }).sorted(by: { $0.lowerBound < $1.lowerBound }) {
      if let last = result.last, range.lowerBound <= last.upperBound {
        result[result.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
      } else {
        result.append(range)
      }
    }
    return result
  }

  /// `ranges` less every part covered by `removing`.
  public static func subtract(_ ranges: [Range<Int64>], _ removing: [Range<Int64>]) -> [Range<Int64>] {
    var result: [Range<Int64>] = []
    let cuts = union(removing)
    for range in union(ranges) {
      var pieces = [range]
      for cut in cuts {
        pieces = pieces.flatMap { piece -> [Range<Int64>] in
          guard cut.overlaps(piece) else { return [piece] }
          var kept: [Range<Int64>] = []
          if piece.lowerBound < cut.lowerBound { kept.append(piece.lowerBound..<cut.lowerBound) }
          if cut.upperBound < piece.upperBound { kept.append(cut.upperBound..<piece.upperBound) }
          return kept
        }
      }
      result += pieces
    }
    return result
  }

  public static func contains(_ ranges: [Range<Int64>], _ range: Range<Int64>) -> Bool {
    subtract([range], ranges).isEmpty
  }
}
