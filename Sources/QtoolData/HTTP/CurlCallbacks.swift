import CCurl
import Foundation

/// Per-transfer state, reached from curl's callbacks through an unmanaged pointer.
final class TransferState {
  var body = Data()
  var headers: [String: String] = [:]
  var statusLine = ""
  /// Every `Location` header seen, in order (the redirect chain).
  var locations: [String] = []
  /// The most body bytes to accept; the transfer is aborted past it.
  var limit: Int?
  /// Set when the body went past `limit`.
  var exceeded = false
  let started = Date()

  init(limit: Int? = nil) { self.limit = limit }

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
  if let limit = state.limit, state.body.count + length > limit {
    // Returning less than given makes curl stop with CURLE_WRITE_ERROR: memory stays bounded.
    state.exceeded = true
    return 0
  }
  pointer.withMemoryRebound(to: UInt8.self, capacity: length) { state.body.append($0, count: length) }
  return length
}

let curlHeaderCallback: curl_write_callback = { pointer, size, count, userData in
  guard let pointer, let userData else { return 0 }
  let state = Unmanaged<TransferState>.fromOpaque(userData).takeUnretainedValue()
  let length = size * count
  // Trimmed as bytes: Foundation's trimmingCharacters cost more than the rest of a small transfer.
  pointer.withMemoryRebound(to: UInt8.self, capacity: length) { start in
    let bytes = UnsafeBufferPointer(start: start, count: length)
    func isSpace(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 10 || byte == 13 }
    func trimmed(_ range: Range<Int>) -> String {
      var (low, high) = (range.lowerBound, range.upperBound)
      while low < high, isSpace(bytes[low]) { low += 1 }
      while high > low, isSpace(bytes[high - 1]) { high -= 1 }
      return String(decoding: UnsafeBufferPointer(rebasing: bytes[low..<high]), as: UTF8.self)
    }
    let line = trimmed(0..<length)
    if line.hasPrefix("HTTP/") {
      // A new response (after a redirect or 100-continue): keep only the last one's headers.
      state.headers = [:]
      state.statusLine = line
    } else if let colon = bytes.firstIndex(of: UInt8(ascii: ":")) {
      let name = trimmed(0..<colon).lowercased()
      let value = trimmed((colon + 1)..<length)
      state.headers[name] = value
      if name == "location" { state.locations.append(value) }
    }
  }
  return length
}
