import QtoolCore

/// A permission a route needs, after the permission table of the backtest service seed:
/// `group:action`. Users get theirs from their role; API tokens are created with a list.
public enum Scope: String, Sendable, CaseIterable, Codable, Comparable {
  case dataRead = "data:read"
  case dataWrite = "data:write"
  case strategiesRead = "strategies:read"
  case strategiesWrite = "strategies:write"
  case strategiesExecute = "strategies:execute"
  case backtestRead = "backtest:read"
  case backtestCreate = "backtest:create"
  case backtestDelete = "backtest:delete"
  case signalsRead = "signals:read"
  case signalsWrite = "signals:write"
  case trainRead = "train:read"
  case trainWrite = "train:write"
  case jobsRead = "jobs:read"
  case jobsCancel = "jobs:cancel"
  case admin

  public static func < (a: Scope, b: Scope) -> Bool { a.rawValue < b.rawValue }

  var isRead: Bool { rawValue.hasSuffix(":read") }

  /// Parses `data:read,backtest:*` (a `group:*` stands for every scope of the group; `*` for all).
  public static func parseList(_ text: String) throws -> [Scope] {
    var scopes = Set<Scope>()
    for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
      if item == "*" {
        scopes.formUnion(Scope.allCases)
      } else if item.hasSuffix(":*") {
        let group = item.dropLast(2)
        let matching = Scope.allCases.filter { $0.rawValue.hasPrefix(group + ":") }
        guard !matching.isEmpty else { throw unknown(item) }
        scopes.formUnion(matching)
      } else if let scope = Scope(rawValue: item) {
        scopes.insert(scope)
      } else {
        throw unknown(item)
      }
    }
    guard !scopes.isEmpty else {
      throw ServerError(.usage, code: "invalid_scopes", "no scopes given", details: ["field": "scopes"], hint: "known scopes: \(names)")
    }
    return scopes.sorted()
  }

  static var names: String { Scope.allCases.map(\.rawValue).joined(separator: ", ") }

  static func unknown(_ item: String) -> ServerError {
    ServerError(
      .usage, code: "invalid_scopes",
      "unknown scope '\(item)'" + (Similarity.closest(to: item, among: Scope.allCases.map(\.rawValue)).map { " — did you mean '\($0)'?" } ?? ""),
      details: ["field": "scopes", "scope": .string(item)], hint: "known scopes: \(names); group:* for a whole group")
  }
}

/// What a user may do. admin: everything; trader: everything but administration; viewer: read.
public enum Role: String, Sendable, CaseIterable, Codable {
  case admin, trader, viewer

  public var scopes: Set<Scope> {
    switch self {
    case .admin: return Set(Scope.allCases)
    case .trader: return Set(Scope.allCases).subtracting([.admin])
    case .viewer: return Set(Scope.allCases.filter(\.isRead))
    }
  }
}

/// Who a request acts for.
public struct Principal: Sendable, Equatable {
  public enum Kind: String, Sendable { case user, token }
  public var kind: Kind
  /// `user:alice` or `token:ci-nightly`: the audit log's actor and the rate limiter's key.
  public var id: String
  public var name: String
  public var role: Role?
  public var scopes: Set<Scope>

  public func has(_ scope: Scope) -> Bool { scopes.contains(scope) || scopes.contains(.admin) }
}
