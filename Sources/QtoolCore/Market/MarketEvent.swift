/// A corporate action kept with a dataset: a split (`value` like `4:1`) or a dividend (amount).
public struct MarketEvent: Codable, Sendable, Equatable, Hashable {
  public var type: String
  public var date: String
  public var value: String

  public init(type: String, date: String, value: String) {
    self.type = type
    self.date = date
    self.value = value
  }
}
