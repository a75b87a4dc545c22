import CCurl
import Foundation

/// Reads a Server-Sent Events stream with libcurl (`signals tail -f --server`): one GET that
/// stays open, each event handed over as soon as its blank line arrives. Runs on the calling
/// thread (curl's multi interface, polled every 100 ms so that a cancellation or a closed
/// stdout ends it promptly).
public enum EventStream {
  public struct Event: Sendable, Equatable {
    /// The `id:` field (nil when the event has none).
    public var id: String?
    /// The `event:` field (`message` by default).
    public var type: String
    public var data: String
  }

  /// How a stream ended.
  public enum End: Sendable, Equatable {
    /// The server closed it (or a handler asked to stop).
    case closed
    /// `shouldStop` said so.
    case stopped
    /// The server answered with another status than 200: the status and the body.
    case status(Int, String)
    /// The connection failed or stalled.
    case failed(String)
  }

  /// Opens `url` with `headers` and calls `onEvent` for each event until the stream ends, the
  /// handler returns false, or `shouldStop` returns true. No data (not even the server's
  /// keep-alive comments) for `stallSeconds` is a failure.
  /// No event is this long (a signal is about a kilobyte): more without a blank line is not an
  /// event stream, and is not buffered further.
  public static let maxEventBytes = 1 << 20

  public static func read(
    url: String, headers: [String], connectTimeout: Int = 10, stallSeconds: Int = 45, userAgent: String = "qtool", shouldStop: () -> Bool,
    onEvent: (Event) throws -> Bool
  ) throws -> End {
    guard let easy = curl_easy_init() else { return .failed("cannot start a transfer") }
    let state = Unmanaged.passRetained(TransferState())
    defer { state.release() }
    qtool_curl_setopt_str(easy, CURLOPT_URL, url)
    qtool_curl_setopt_write(easy, CURLOPT_WRITEFUNCTION, curlWriteCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_WRITEDATA, state.toOpaque())
    qtool_curl_setopt_write(easy, CURLOPT_HEADERFUNCTION, curlHeaderCallback)
    qtool_curl_setopt_ptr(easy, CURLOPT_HEADERDATA, state.toOpaque())
    qtool_curl_setopt_str(easy, CURLOPT_USERAGENT, userAgent)
    qtool_curl_setopt_str(easy, CURLOPT_PROTOCOLS_STR, "http,https")
    qtool_curl_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
    qtool_curl_setopt_long(easy, CURLOPT_CONNECTTIMEOUT, connectTimeout)
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_LIMIT, 1)
    qtool_curl_setopt_long(easy, CURLOPT_LOW_SPEED_TIME, stallSeconds)
    var list: UnsafeMutablePointer<curl_slist>?
    for header in headers + ["Accept: text/event-stream"] { list = curl_slist_append(list, header) }
    if let list { qtool_curl_setopt_ptr(easy, CURLOPT_HTTPHEADER, UnsafeMutableRawPointer(list)) }
    let multi = curl_multi_init()
    curl_multi_add_handle(multi, easy)
    defer {
      curl_multi_remove_handle(multi, easy)
      curl_easy_cleanup(easy)
      curl_multi_cleanup(multi)
      if let list { curl_slist_free_all(list) }
    }
    let transfer = state.takeUnretainedValue()
    // Memory stays bounded whatever the server sends: an error answer is read whole up to this,
    // a stream is drained every round (a tail of 10,000 signals can arrive in one round).
    transfer.limit = 64 << 20
    var pending = Data()
    var result: CURLcode?
    while true {
      var running: Int32 = 0
      curl_multi_perform(multi, &running)
      var remaining: Int32 = 0
      while let message = curl_multi_info_read(multi, &remaining) {
        if message.pointee.msg == CURLMSG_DONE { result = message.pointee.data.result }
      }
      var status = 0
      qtool_curl_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
      if status != 0, status != 200 {
        // An error answer: read it whole (it is small), then report it.
        if result != nil || running == 0 { return .status(status, String(decoding: transfer.body, as: UTF8.self)) }
      } else if !transfer.body.isEmpty {
        // Another server's 200 (a web page, a proxy's notice) is not read as an empty stream.
        let type = transfer.headers["content-type"] ?? ""
        guard type.lowercased().hasPrefix("text/event-stream") else {
          return .failed("it answered \(type.isEmpty ? "without a Content-Type" : type), not an event stream")
        }
        pending.append(transfer.body)
        transfer.body.removeAll(keepingCapacity: true)
        // Events are read in place and the read part dropped once: a burst of thousands of
        // events (a long tail) is one pass, not one copy of the rest per event.
        var consumed = pending.startIndex
        defer { pending.removeSubrange(pending.startIndex..<consumed) }
        while let event = nextEvent(pending, from: &consumed) {
          if try !onEvent(event) { return .closed }
        }
        if pending.endIndex - consumed > maxEventBytes { return .failed("an event longer than \(maxEventBytes >> 20) MB: not a signal stream") }
      }
      if transfer.exceeded { return .failed("more than 64 MB in one read: not a signal stream") }
      if let result {
        if result == CURLE_OK { return .closed }
        return .failed(String(cString: curl_easy_strerror(result)))
      }
      if running == 0 { return .closed }
      if shouldStop() { return .stopped }
      var descriptors: Int32 = 0
      curl_multi_poll(multi, nil, 0, 100, &descriptors)
    }
  }

  /// The first whole event (ended by a blank line) of `buffer` at or after `start`, which moves
  /// past it; comments and events without data are skipped (an event with only an `id:` still
  /// counts: it moves the id).
  static func nextEvent(_ buffer: Data, from start: inout Data.Index) -> Event? {
    while true {
      guard let end = blockEnd(buffer, from: start) else { return nil }
      let block = String(decoding: buffer[start..<end.start], as: UTF8.self)
      start = end.end
      var id: String?
      var type = "message"
      var data: [String] = []
      var fields = false
      for rawLine in block.split(separator: "\n", omittingEmptySubsequences: false) {
        let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
        if line.isEmpty || line.hasPrefix(":") { continue }
        let (name, value): (Substring, Substring)
        if let colon = line.firstIndex(of: ":") {
          name = line[..<colon]
          var rest = line[line.index(after: colon)...]
          if rest.hasPrefix(" ") { rest = rest.dropFirst() }
          value = rest
        } else {
          (name, value) = (line, "")
        }
        switch name {
        case "id": id = String(value)
        case "event": type = String(value)
        case "data": data.append(String(value))
        default: continue
        }
        fields = true
      }
      if fields, id != nil || !data.isEmpty { return Event(id: id, type: type, data: data.joined(separator: "\n")) }
    }
  }

  /// Where the first blank line is: the end of the block's text and of the separator.
  private static func blockEnd(_ buffer: Data, from start: Data.Index) -> (start: Data.Index, end: Data.Index)? {
    var index = start
    var previousNewline: Data.Index?
    while index < buffer.endIndex {
      let byte = buffer[index]
      if byte == 10 {
        if let previous = previousNewline { return (previous, index + 1) }
        previousNewline = index
      } else if byte != 13 {
        previousNewline = nil
      }
      index += 1
    }
    return nil
  }
}
