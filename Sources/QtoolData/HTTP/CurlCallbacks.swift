import CCurl
import Foundation

/// Per-transfer state, reached from curl's callbacks through an unmanaged pointer.
final class TransferState {
  var body = Data()
  var headers: [String: String] = [:]
  var statusLine = ""

  func reset() {
    body = Data()
    headers = [:]
  }
}

// File-scope C callbacks: closures defined in main.swift crashed under Swift 6 when curl
// called them from another thread (SWIFT-NOTES.md).
let curlWriteCallback: curl_write_callback = { pointer, size, count, userData in
  guard let pointer, let userData else { return 0 }
  let state = Unmanaged<TransferState>.fromOpaque(userData).takeUnretainedValue()
  let length = size * count
  pointer.withMemoryRebound(to: UInt8.self, capacity: length) { state.body.append($0, count: length) }
  return length
}

let curlHeaderCallback: curl_write_callback = { pointer, size, count, userData in
  guard let pointer, let userData else { return 0 }
  let state = Unmanaged<TransferState>.fromOpaque(userData).takeUnretainedValue()
  let length = size * count
  let line = pointer.withMemoryRebound(to: UInt8.self, capacity: length) {
    String(decoding: UnsafeBufferPointer(start: $0, count: length), as: UTF8.self)
  }.trimmingCharacters(in: .whitespacesAndNewlines)
  if line.hasPrefix("HTTP/") {
    // A new response (after a redirect or 100-continue): keep only the last one's headers.
    state.headers = [:]
    state.statusLine = line
  } else if let colon = line.firstIndex(of: ":") {
    let name = line[..<colon].lowercased()
    state.headers[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
  }
  return length
}
