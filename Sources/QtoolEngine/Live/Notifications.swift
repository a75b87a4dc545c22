import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// The kinds of notification channel.
public enum ChannelKind: String, Codable, Sendable, CaseIterable {
  /// JSON POSTed to a URL with Standard Webhooks headers (and an HMAC-SHA256 signature with a secret).
  case webhook
  /// A local program run with the event's JSON on stdin.
  case command
  /// Presets: a webhook whose body is a message from a template.
  case telegram, discord, slack
}

/// A channel's settings. Secrets are never stored: only the names of the environment variables
/// or files that hold them, read when a notification is sent.
public struct ChannelConfig: Codable, Sendable, Equatable {
  /// webhook, discord, slack: where to POST.
  public var url: String?
  /// discord, slack: an environment variable or a file holding the URL (it carries a token).
  public var urlEnv: String?
  public var urlFile: String?
  /// webhook: the signing secret's environment variable or file.
  public var secretEnv: String?
  public var secretFile: String?
  /// telegram: the bot token's environment variable or file, and the chat to write to.
  public var tokenEnv: String?
  public var tokenFile: String?
  public var chatID: String?
  /// command: run by /bin/sh -c.
  public var command: String?
  /// The message of the presets, with {type}, {action}, {symbol}, … (see `MessageTemplate`).
  public var template: String?
  public var timeoutMilliseconds: Int
  /// Attempts before the notification is dead (nil: `notify.max_attempts`).
  public var maxAttempts: Int?

  public init(
    url: String? = nil, urlEnv: String? = nil, urlFile: String? = nil, secretEnv: String? = nil, secretFile: String? = nil, tokenEnv: String? = nil,
    tokenFile: String? = nil, chatID: String? = nil, command: String? = nil, template: String? = nil, timeoutMilliseconds: Int = 10_000,
    maxAttempts: Int? = nil
  ) {
    self.url = url
    self.urlEnv = urlEnv
    self.urlFile = urlFile
    self.secretEnv = secretEnv
    self.secretFile = secretFile
    self.tokenEnv = tokenEnv
    self.tokenFile = tokenFile
    self.chatID = chatID
    self.command = command
    self.template = template
    self.timeoutMilliseconds = timeoutMilliseconds
    self.maxAttempts = maxAttempts
  }

  enum CodingKeys: String, CodingKey {
    case url, urlEnv = "url_env", urlFile = "url_file", secretEnv = "secret_env", secretFile = "secret_file", tokenEnv = "token_env"
    case tokenFile = "token_file", chatID = "chat_id", command, template, timeoutMilliseconds = "timeout_ms", maxAttempts = "max_attempts"
  }

  public init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    url = try container.decodeIfPresent(String.self, forKey: .url)
    urlEnv = try container.decodeIfPresent(String.self, forKey: .urlEnv)
    urlFile = try container.decodeIfPresent(String.self, forKey: .urlFile)
    secretEnv = try container.decodeIfPresent(String.self, forKey: .secretEnv)
    secretFile = try container.decodeIfPresent(String.self, forKey: .secretFile)
    tokenEnv = try container.decodeIfPresent(String.self, forKey: .tokenEnv)
    tokenFile = try container.decodeIfPresent(String.self, forKey: .tokenFile)
    chatID = try container.decodeIfPresent(String.self, forKey: .chatID)
    command = try container.decodeIfPresent(String.self, forKey: .command)
    template = try container.decodeIfPresent(String.self, forKey: .template)
    timeoutMilliseconds = try container.decodeIfPresent(Int.self, forKey: .timeoutMilliseconds) ?? 10_000
    maxAttempts = try container.decodeIfPresent(Int.self, forKey: .maxAttempts)
  }
}

/// How notifications are retried (`notify.*` settings).
public struct NotifySettings: Sendable, Equatable {
  /// Milliseconds before the first retry; doubled each attempt.
  public var retryBase: Int64 = 1_000
  /// The longest wait between attempts, a Retry-After included.
  public var retryCap: Int64 = 300_000
  public var maxAttempts = 8
  public var telegramURL = "https://api.telegram.org"

  public init() {}

  public init(settings: Settings) throws {
    retryBase = Int64(try settings.positiveNumber("notify.retry_base", 1) * 1000)
    retryCap = max(retryBase, Int64(try settings.positiveNumber("notify.retry_cap", 300) * 1000))
    maxAttempts = max(1, Int(try settings.positiveNumber("notify.max_attempts", 8, maximum: 100)))
    telegramURL = settings.value("notify.telegram_url") ?? telegramURL
  }

  /// The wait after failed attempt `attempt` (1 for the first): base·2ⁿ⁻¹ capped, with equal
  /// jitter (uniform in [half, whole]) so that many failures do not retry in step; a
  /// Retry-After given by the server is obeyed instead (capped too).
  public func delay(afterAttempt attempt: Int, retryAfter: Int64?) -> Int64 {
    if let retryAfter { return min(retryCap, max(0, retryAfter)) }
    let ceiling = min(Double(retryCap), Double(retryBase) * pow(2, Double(max(0, attempt - 1))))
    return Int64(Double.random(in: (ceiling / 2)...ceiling))
  }
}

/// What a delivery attempt came to.
public struct DeliveryResult: Sendable, Equatable {
  public enum Outcome: String, Sendable { case delivered, retry, dead }
  public var outcome: Outcome
  /// HTTP status or exit status.
  public var status: Int?
  public var latencyMilliseconds: Int64
  public var error: String?
  /// Milliseconds the server asked to wait (Retry-After).
  public var retryAfter: Int64?
}

/// The event a channel is sent: Standard Webhooks' `{type, timestamp, data}`.
struct NotificationEvent: Encodable {
  var type: String
  var timestamp: String
  var data: SignalInfo
}

/// Turning a notification into a request, and a response into an outcome.
enum Delivery {
  /// The JSON body of a signal's event (the same bytes on every attempt).
  static func eventBody(_ signal: SignalInfo, type: String = "signal.created") throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(NotificationEvent(type: type, timestamp: signal.createdAt, data: signal))
  }

  /// A secret from the environment variable or the file a channel names (a file's trailing
  /// line break dropped).
  static func secret(env: String?, file: String?, what: String, environment: [String: String]) throws -> String? {
    if let env {
      guard let value = environment[env], !value.isEmpty else {
        throw DeliveryProblem(
          "the \(what) is read from the environment variable \(env), which is not set in the environment of the process sending it")
      }
      return value
    }
    if let file {
      guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
        throw DeliveryProblem("the \(what) is read from \(file), which cannot be read")
      }
      let value = text.trimmingCharacters(in: .whitespacesAndNewlines)
      guard !value.isEmpty else { throw DeliveryProblem("the \(what) file \(file) is empty") }
      return value
    }
    return nil
  }

  /// The HTTP request of a notification for an http channel (all but `command`).
  static func request(
    channel: ChannelRecord, config: ChannelConfig, signal: SignalInfo, webhookID: String, now: Int64, settings: NotifySettings,
    environment: [String: String]
  ) throws -> HTTPRequest {
    let kind = ChannelKind(rawValue: channel.kind) ?? .webhook
    var headers = ["Content-Type": "application/json", "User-Agent": "qtool/\(VersionInfo.version)"]
    let body: Data
    let url: String
    switch kind {
    case .webhook:
      guard let target = config.url else { throw DeliveryProblem("the channel has no URL") }
      url = target
      body = try eventBody(signal)
      let timestamp = now / 1000
      headers["webhook-id"] = webhookID
      headers["webhook-timestamp"] = String(timestamp)
      if let secret = try secret(env: config.secretEnv, file: config.secretFile, what: "signing secret", environment: environment) {
        headers["webhook-signature"] = WebhookSignature.sign(secret: secret, id: webhookID, timestamp: timestamp, body: body)
      }
    case .slack, .discord:
      guard let target = try config.url ?? secret(env: config.urlEnv, file: config.urlFile, what: "webhook URL", environment: environment) else {
        throw DeliveryProblem("the channel has no URL")
      }
      url = target
      let text = MessageTemplate.render(config.template ?? MessageTemplate.standard, signal)
      body = try JSONSerialization.data(withJSONObject: kind == .slack ? ["text": text] : ["content": text], options: [.sortedKeys])
    case .telegram:
      guard let token = try secret(env: config.tokenEnv, file: config.tokenFile, what: "bot token", environment: environment) else {
        throw DeliveryProblem("the channel has no bot token")
      }
      guard let chat = config.chatID else { throw DeliveryProblem("the channel has no chat id") }
      let base = settings.telegramURL.hasSuffix("/") ? String(settings.telegramURL.dropLast()) : settings.telegramURL
      url = "\(base)/bot\(token)/sendMessage"
      let text = MessageTemplate.render(config.template ?? MessageTemplate.standard, signal)
      body = try JSONSerialization.data(withJSONObject: ["chat_id": chat, "text": text], options: [.sortedKeys])
    case .command:
      throw DeliveryProblem("a command channel is not sent over HTTP")
    }
    guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? "") else {
      throw DeliveryProblem("the channel's URL is not http(s)")
    }
    return HTTPRequest(url: url, headers: headers, maxBytes: 1 << 20, body: body, timeoutMilliseconds: config.timeoutMilliseconds)
  }

  /// What an HTTP answer means: 2xx delivered; 408, 429 and 5xx (and no answer) tried again;
  /// any other status given up at once.
  static func classify(_ result: Result<HTTPResponse, TransportError>, latency: Int64, now: Int64) -> DeliveryResult {
    switch result {
    case .success(let response):
      let status = response.status
      if (200..<300).contains(status) { return DeliveryResult(outcome: .delivered, status: status, latencyMilliseconds: latency) }
      let snippet = String(decoding: response.body.prefix(200), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
      let error = "HTTP \(status)" + (snippet.isEmpty ? "" : ": \(snippet)")
      if status == 408 || status == 429 || status >= 500 {
        return DeliveryResult(
          outcome: .retry, status: status, latencyMilliseconds: latency, error: error,
          retryAfter: response.headers["retry-after"].flatMap { retryAfter($0, now: now) })
      }
      let why = (300..<400).contains(status) ? error + " (redirects are not followed; update the channel's URL)" : error
      return DeliveryResult(outcome: .dead, status: status, latencyMilliseconds: latency, error: why)
    case .failure(let error):
      return DeliveryResult(outcome: error.isPermanent ? .dead : .retry, status: nil, latencyMilliseconds: latency, error: error.message)
    }
  }

  /// A Retry-After value in milliseconds: seconds, or an HTTP date.
  static func retryAfter(_ value: String, now: Int64) -> Int64? {
    let trimmed = value.trimmingCharacters(in: .whitespaces)
    // A hostile or broken server's 1e300 must not overflow: a day is more than any cap.
    if let seconds = Double(trimmed), seconds.isFinite, seconds >= 0 { return Int64(min(seconds, 86_400) * 1000) }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    guard let date = formatter.date(from: trimmed) else { return nil }
    return max(0, Int64(date.timeIntervalSince1970 * 1000) - now)
  }

  /// The test event `signals notify test` sends: a signal that is not stored.
  static func testSignal(now: Int64) -> SignalInfo {
    SignalInfo(
      SignalRecord(
        id: "test-" + JobRunner.randomHex(12), accountID: "test", runID: nil, strategyName: "qtool-test", strategyVersion: 0, symbol: "TEST",
        timeframe: "1d", source: nil, feed: "test", barTs: now / 86_400_000 * 86_400_000, type: "BUY", action: "enter_long", reason: "manual",
        strengthRaw: 100, strengthLevel: "strong", price: 100, indicators: "{}", late: false, suppressed: false, createdAt: now))
  }
}

/// A notification that cannot be sent as configured (a secret's variable is not set): given up
/// at once, with this reason.
struct DeliveryProblem: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// The text of the chat presets: `{type}`, `{action}`, `{reason}`, `{symbol}`, `{timeframe}`,
/// `{price}`, `{strength}`, `{level}`, `{strategy}`, `{version}`, `{bar}`, `{id}`, `{late}`.
public enum MessageTemplate {
  public static let standard =
    "{type} {symbol} {timeframe} · {action} ({reason}) @ {price} · strength {strength} ({level}) · {strategy} v{version} · bar {bar}{late}"
  public static let placeholders = [
    "type", "action", "reason", "symbol", "timeframe", "price", "strength", "level", "strategy", "version", "bar", "id", "late",
  ]

  public static func render(_ template: String, _ signal: SignalInfo) -> String {
    let values: [String: String] = [
      "type": signal.type, "action": signal.action, "reason": signal.reason, "symbol": signal.symbol, "timeframe": signal.timeframe,
      "price": signal.price.map { Self.number($0) } ?? "-", "strength": Self.number(signal.strengthRaw), "level": signal.strengthLevel,
      "strategy": signal.strategy, "version": String(signal.strategyVersion), "bar": signal.barTime, "id": signal.id,
      "late": signal.late ? " (late)" : "",
    ]
    var result = ""
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
      result += rest[..<open]
      let name = String(rest[rest.index(after: open)..<close])
      result += values[name] ?? "{\(name)}"
      rest = rest[rest.index(after: close)...]
    }
    return result + rest
  }

  /// Placeholders of `template` that mean nothing.
  public static func unknownPlaceholders(_ template: String) -> [String] {
    var unknown: [String] = []
    var rest = Substring(template)
    while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
      let name = String(rest[rest.index(after: open)..<close])
      if !placeholders.contains(name) { unknown.append(name) }
      rest = rest[rest.index(after: close)...]
    }
    return unknown
  }

  static func number(_ value: Double) -> String {
    guard value.isFinite else { return "-" }
    if value == value.rounded(), abs(value) < 1e12 { return String(Int64(value)) }
    var text = String(format: "%.6f", value)
    while text.hasSuffix("0") { text.removeLast() }
    if text.hasSuffix(".") { text.removeLast() }
    return text
  }
}
