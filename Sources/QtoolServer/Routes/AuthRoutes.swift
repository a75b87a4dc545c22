import Foundation
import QtoolCore
import QtoolEngine
import QtoolStore

/// `/api/v1/auth/*`: login, refresh, logout, me.
enum AuthRoutes {
  struct Login: Codable, Sendable {
    var username: String
    var password: String
  }

  struct Refresh: Codable, Sendable {
    var refreshToken: String
    enum CodingKeys: String, CodingKey { case refreshToken = "refresh_token" }
  }

  struct LoggedOut: Codable, Sendable {
    var loggedOut = true
    enum CodingKeys: String, CodingKey { case loggedOut = "logged_out" }
  }

  /// Who the credentials stand for.
  struct Me: Codable, Sendable {
    var kind: String
    var name: String
    var role: String?
    var scopes: [String]
  }

  static var routes: [Route] {
    [
      Route("POST", "/api/v1/auth/login", "login", scope: nil, rate: .auth) { service, request in
        let login = try request.decode(Login.self)
        return .ok(try await service.authenticator.login(username: login.username, password: login.password), message: "logged in")
      },
      Route("POST", "/api/v1/auth/refresh", "refresh", scope: nil, rate: .auth) { service, request in
        .ok(try await service.authenticator.refresh(try request.decode(Refresh.self).refreshToken), message: "refreshed")
      },
      Route("POST", "/api/v1/auth/logout", "logout", scope: nil, rate: .auth) { service, request in
        try service.authenticator.logout(try request.decode(Refresh.self).refreshToken)
        return .ok(LoggedOut(), message: "logged out")
      },
      Route("GET", "/api/v1/auth/me", "me", scope: nil, authenticated: true) { _, request in
        let principal = request.principal!
        return .ok(
          Me(kind: principal.kind.rawValue, name: principal.name, role: principal.role?.rawValue, scopes: principal.scopes.map(\.rawValue).sorted()))
      },
    ]
  }
}

/// `/api/v1/admin/*`: users, tokens and the audit log, for admins.
enum AdminRoutes {
  static var routes: [Route] {
    [
      Route("GET", "/api/v1/admin/users", "listUsers", scope: .admin) { service, request in
        let (page, size) = try request.paging()
        return .ok(Page(try service.auth.users(), page: page, size: size))
      },
      Route("GET", "/api/v1/admin/tokens", "listTokens", scope: .admin) { service, request in
        let (page, size) = try request.paging()
        return .ok(Page(try service.auth.tokens(), page: page, size: size))
      },
      Route("GET", "/api/v1/admin/audit", "listAudit", scope: .admin) { service, request in
        let (page, size) = try request.paging()
        let (rows, total) = try service.database.auditLog(limit: size, offset: (page - 1) * size)
        return .ok(Page(items: rows.map(AuditEntry.init), total: total, page: page, size: size))
      },
    ]
  }

  struct AuditEntry: Codable, Sendable {
    var id: Int64
    var at: String
    var actor: String
    var action: String
    var target: String?
    var status: Int
    var requestID: String?
    var ip: String?
    enum CodingKeys: String, CodingKey { case id, at, actor, action, target, status, requestID = "request_id", ip }

    init(_ record: AuditRecord) {
      id = record.id
      at = APIJSON.timestamp(record.at)
      actor = record.actor
      action = record.action
      target = record.target
      status = record.status
      requestID = record.requestID
      ip = record.ip
    }
  }
}

extension APIService {
  var auth: AuthOperations { AuthOperations(database: database, clock: clock, bcryptCost: configuration.bcryptCost) }
}
