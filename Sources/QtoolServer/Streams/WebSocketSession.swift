import Foundation
import HTTPTypes
import HummingbirdWebSocket
import Logging
import NIOCore
import QtoolCore
import QtoolEngine

/// `/api/v1/ws`: a client subscribes to channels and gets their events, in the messages of the
/// platform seeds: `{"type": "subscribe"|"unsubscribe"|"ping", "channel": …}` in;
/// `subscribed`, `unsubscribed`, `pong`, `error` and one message per event out
/// (`{"type": "job", "channel": "job:…", "id": …, "data": {…}, "timestamp": …}`).
enum WebSocketSession {
  struct Incoming: Decodable {
    var type: String
    var channel: String?
    var lastEventID: Int64?
    enum CodingKeys: String, CodingKey { case type, channel, lastEventID = "last_event_id" }
  }

  struct Outgoing: Encodable {
    var type: String
    var channel: String?
    var id: Int64?
    var data: AnyPayload?
    var timestamp: String
  }

  struct ErrorData: Encodable {
    var code: String
    var message: String
  }

  /// Runs a session for `principal` until the client closes or the server stops.
  static func run(
    service: APIService, principal: Principal, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter, logger: Logger
  ) async {
    let (messages, sender) = AsyncStream<String>.makeStream(bufferingPolicy: .bufferingNewest(4096))
    service.metrics.webSocketConnections.increment()
    defer { service.metrics.webSocketConnections.decrement() }
    let encoder = APIJSON.encoder
    @Sendable func send(_ message: Outgoing) {
      if let data = try? encoder.encode(message) { sender.yield(String(decoding: data, as: UTF8.self)) }
    }
    @Sendable func now() -> String { APIJSON.timestamp(service.clock.now()) }

    await withTaskGroup(of: Void.self) { group in
      // One writer: every message goes out through it, in order.
      group.addTask {
        for await text in messages {
          do { try await outbound.write(.text(text)) } catch { break }
        }
      }
      var subscriptions: [String: (EventHub.Subscription, Task<Void, Never>)] = [:]
      do {
        for try await message in inbound.messages(maxSize: 64 * 1024) {
          guard case .text(let text) = message, let incoming = try? APIJSON.decoder.decode(Incoming.self, from: Data(text.utf8)) else {
            send(Outgoing(type: "error", data: AnyPayload(ErrorData(code: "invalid_message", message: "send JSON: {\"type\": \"subscribe\", \"channel\": \"jobs\"}")), timestamp: now()))
            continue
          }
          switch incoming.type {
          case "ping":
            send(Outgoing(type: "pong", timestamp: now()))
          case "subscribe":
            guard let channel = incoming.channel, StreamChannel.validate(channel) else {
              send(
                Outgoing(
                  type: "error", channel: incoming.channel,
                  data: AnyPayload(ErrorData(code: "unknown_channel", message: "channels: jobs, job:{id}, signals, strategy:{name}")),
                  timestamp: now()))
              continue
            }
            let scope = StreamChannel.scope(channel)
            guard principal.has(scope) else {
              send(
                Outgoing(
                  type: "error", channel: channel, data: AnyPayload(ErrorData(code: "missing_scope", message: "needs \(scope.rawValue)")),
                  timestamp: now()))
              continue
            }
            if subscriptions[channel] != nil {
              send(Outgoing(type: "subscribed", channel: channel, timestamp: now()))
              continue
            }
            let subscription = service.hub.subscribe(after: incoming.lastEventID) { StreamChannel.matches(subscribed: channel, published: $0) }
            send(Outgoing(type: "subscribed", channel: channel, id: subscription.position, timestamp: now()))
            let forward = Task {
              for event in subscription.replay {
                send(Outgoing(type: event.type, channel: StreamChannel.label(subscribed: channel, published: event.channel), id: event.id, data: AnyPayload(RawJSON(data: event.data)), timestamp: now()))
              }
              for await event in subscription.events where event.type != "ping" {
                send(Outgoing(type: event.type, channel: StreamChannel.label(subscribed: channel, published: event.channel), id: event.id, data: AnyPayload(RawJSON(data: event.data)), timestamp: now()))
              }
            }
            subscriptions[channel] = (subscription, forward)
            service.metrics.streamSubscribers.increment()
          case "unsubscribe":
            guard let channel = incoming.channel, let (subscription, forward) = subscriptions.removeValue(forKey: channel) else {
              send(Outgoing(type: "error", channel: incoming.channel, data: AnyPayload(ErrorData(code: "not_subscribed", message: "not subscribed to that channel")), timestamp: now()))
              continue
            }
            subscription.close()
            forward.cancel()
            service.metrics.streamSubscribers.decrement()
            send(Outgoing(type: "unsubscribed", channel: channel, timestamp: now()))
          default:
            send(Outgoing(type: "error", data: AnyPayload(ErrorData(code: "unknown_type", message: "types: subscribe, unsubscribe, ping")), timestamp: now()))
          }
        }
      } catch {
        logger.debug("websocket closed: \(error)")
      }
      for (subscription, forward) in subscriptions.values {
        subscription.close()
        forward.cancel()
        service.metrics.streamSubscribers.decrement()
      }
      sender.finish()
    }
  }
}

/// JSON text already encoded, written as it is.
struct RawJSON: Encodable {
  var data: Data
  func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode((try? JSONDecoder().decode(JSONValue.self, from: data)) ?? .null)
  }
}
