import Crypto
import Foundation

/// Standard Webhooks signatures (https://www.standardwebhooks.com): the receiver recomputes
/// HMAC-SHA256 over `id.timestamp.body` with the shared secret and compares.
public enum WebhookSignature {
  /// `v1,` + base64(HMAC-SHA256(key, "id.timestamp.body")). A `whsec_` secret is base64 of
  /// the key's bytes (as Standard Webhooks issues them); any other secret is its UTF-8 bytes.
  ///
  /// ```swift
  /// let header = WebhookSignature.sign(secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", id: "msg_1", timestamp: 1_614_265_330, body: body)
  /// ```
  public static func sign(secret: String, id: String, timestamp: Int64, body: Data) -> String {
    let keyBytes: Data
    if secret.hasPrefix("whsec_"), let decoded = Data(base64Encoded: String(secret.dropFirst(6))) {
      keyBytes = decoded
    } else {
      keyBytes = Data(secret.utf8)
    }
    var message = Data("\(id).\(timestamp).".utf8)
    message.append(body)
    let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: keyBytes))
    return "v1," + Data(mac).base64EncodedString()
  }
}
