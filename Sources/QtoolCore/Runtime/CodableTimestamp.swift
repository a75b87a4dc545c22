/// An optional instant in a Codable request or result: epoch milliseconds in Swift, an
/// ISO-8601 UTC string in JSON (`"2024-01-01"` or `"2024-01-01T12:00:00Z"`; a number is read
/// as epoch milliseconds). Absent and null both mean none.
@propertyWrapper
public struct ISOTimestamp: Codable, Sendable, Equatable, Hashable {
  public var wrappedValue: Int64?

  public init(wrappedValue: Int64?) { self.wrappedValue = wrappedValue }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.singleValueContainer()
    if container.decodeNil() {
      wrappedValue = nil
    } else if let milliseconds = try? container.decode(Int64.self) {
      wrappedValue = milliseconds
    } else {
      let text = try container.decode(String.self)
      guard let parsed = TimestampParser.parse(text) else {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO-8601 date or time")
      }
      wrappedValue = parsed
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    if let wrappedValue { try container.encode(UTCCalendar.format(wrappedValue, alwaysTime: true)) } else { try container.encodeNil() }
  }
}

extension KeyedDecodingContainer {
  /// A missing key is a nil timestamp, as for a plain optional.
  public func decode(_ type: ISOTimestamp.Type, forKey key: Key) throws -> ISOTimestamp {
    try decodeIfPresent(type, forKey: key) ?? ISOTimestamp(wrappedValue: nil)
  }
}
