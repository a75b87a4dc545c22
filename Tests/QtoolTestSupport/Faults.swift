import Foundation
import QtoolData

/// The faults a real source shows, one handler each, for `LoopbackServer.on(…)`: they serve
/// the recorded responses of `../shared/data/` and then break them the way servers do.
///
/// ```swift
/// server.on(path: stooqPath, Fault.cutCloseDelimited(csv, dropLast: 4))
/// ```
public enum Fault {
  public typealias Handler = LoopbackServer.Handler

  /// The body without its last `dropLast` bytes and without a Content-Length: the connection
  /// closes early and HTTP cannot tell (Stooq ends its CSV by closing). `times` hits, then whole.
  public static func cutCloseDelimited(_ body: Data, dropLast: Int, times: Int = .max) -> Handler {
    { _, hit in
      LoopbackServer.Reply(body: hit <= times ? body.dropLast(dropLast) : body, closeDelimited: true)
    }
  }

  /// `status` with `body` for the first `times` hits, then falls through (to the files).
  public static func status(_ status: Int, _ body: String = "", headers: [String: String] = [:], times: Int = .max) -> Handler {
    { _, hit in hit <= times ? .text(body, status: status, headers: headers) : nil }
  }

  /// 429 (or `status`) with this `Retry-After` value for the first `times` hits, then `then`.
  public static func retryAfter(_ value: String, status: Int = 429, times: Int = 1, then: Data) -> Handler {
    { _, hit in
      hit <= times
        ? .text("{\"code\":-1003,\"msg\":\"Too many requests\"}", status: status, headers: ["Retry-After": value])
        : LoopbackServer.Reply(body: then)
    }
  }

  /// The body `bytes` at a time, `interval` seconds apart: never a stall, never done.
  public static func trickle(_ body: Data, bytes: Int = 1, interval: Double = 0.9) -> Handler {
    { _, _ in LoopbackServer.Reply(body: body, trickle: .init(bytes: bytes, interval: interval)) }
  }

  /// A JSON array of `bytes` bytes (a reply far larger than any page).
  public static func oversized(bytes: Int, closeDelimited: Bool = false) -> Handler {
    let row = Data("[1,\"1\",\"1\",\"1\",\"1\",\"1\",1,\"1\",1,\"1\",\"1\",\"0\"],".utf8)
    var body = Data("[".utf8)
    while body.count < bytes { body.append(row) }
    body.append(Data("[1,\"1\",\"1\",\"1\",\"1\",\"1\",1,\"1\",1,\"1\",\"1\",\"0\"]]".utf8))
    let reply = LoopbackServer.Reply(body: body, closeDelimited: closeDelimited)
    return { _, _ in reply }
  }

  /// A redirect to `target` (any scheme).
  public static func redirect(to target: String, status: Int = 302) -> Handler {
    { _, _ in LoopbackServer.Reply(status: status, headers: ["Location": target]) }
  }

  /// An HTML page with status 200, as CDNs and login walls answer.
  public static func htmlPage(status: Int = 200) -> Handler {
    { _, _ in
      .text("<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>", status: status)
    }
  }

  /// `Content-Encoding: gzip` with gzip data cut short (its Content-Length matches what is sent).
  public static func corruptGzip(_ body: Data) -> Handler {
    let compressed = gzip(body)
    let broken = compressed.prefix(compressed.count * 2 / 3)
    return { _, _ in LoopbackServer.Reply(headers: ["Content-Encoding": "gzip"], body: broken) }
  }

  /// `Content-Encoding: gzip` done right.
  public static func gzipped(_ body: Data) -> Handler {
    let compressed = gzip(body)
    return { _, _ in LoopbackServer.Reply(headers: ["Content-Encoding": "gzip"], body: compressed) }
  }

  /// Binance klines from `startTime`, at most `cap` of them whatever `limit` asks: a server
  /// that caps its pages. `klines(open)` makes one row.
  public static func capPages(_ cap: Int, step: Int64, until end: Int64, klines: @escaping @Sendable ([Int64]) -> String) -> Handler {
    { request, _ in
      guard let start = request.query["startTime"].flatMap(Int64.init) else { return .text("[]") }
      let last = min(end, (request.query["endTime"].flatMap(Int64.init) ?? end) + 1)
      var opens: [Int64] = []
      var t = start
      while t < last && opens.count < cap {
        opens.append(t)
        t += step
      }
      return .text(klines(opens))
    }
  }

  static func gzip(_ data: Data) -> Data {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-c", "-n"]
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try? process.run()
    let writer = Thread {
      input.fileHandleForWriting.write(data)
      try? input.fileHandleForWriting.close()
    }
    writer.start()
    let result = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return result
  }
}

extension LoopbackServer {
  /// Serves at `path` a zip holding `csv` under `name` (stored, uncompressed), and its
  /// `.CHECKSUM`, as Binance publishes them: for archives whose rows a test rewrites.
  public func serveArchive(path: String, name: String, csv: String) {
    let zip = StoredZip.make(name: name, data: Data(csv.utf8))
    on(path: path) { _, _ in LoopbackServer.Reply(body: zip) }
    on(path: path + ".CHECKSUM") { _, _ in .text("\(ContentHash.sha256Hex(zip))  \((path as NSString).lastPathComponent)") }
  }

  /// The CSV inside a recorded archive under `root`.
  public func recordedCSV(_ path: String) throws -> (name: String, text: String) {
    guard let root else { throw POSIXError(.ENOENT) }
    let data = try Data(contentsOf: root.appendingPathComponent(String(path.dropFirst())))
    let entry = try ArchiveReader.entries(data: data, label: path)[0]
    return (entry.name, String(decoding: entry.data, as: UTF8.self))
  }
}

/// A zip archive of one file, stored without compression: enough for libarchive, and
/// simple enough to write here.
public enum StoredZip {
  public static func make(name: String, data: Data) -> Data {
    let crc = crc32(data)
    let nameBytes = Data(name.utf8)
    var out = Data()
    func u16(_ v: Int) { out.append(contentsOf: [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)]) }
    func u32(_ v: UInt32) { out.append(contentsOf: (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) }) }
    // Local file header.
    u32(0x0403_4B50); u16(20); u16(0); u16(0); u16(0); u16(0x21)
    u32(crc); u32(UInt32(data.count)); u32(UInt32(data.count)); u16(nameBytes.count); u16(0)
    out.append(nameBytes)
    out.append(data)
    let central = out.count
    // Central directory.
    u32(0x0201_4B50); u16(20); u16(20); u16(0); u16(0); u16(0); u16(0x21)
    u32(crc); u32(UInt32(data.count)); u32(UInt32(data.count)); u16(nameBytes.count); u16(0); u16(0); u16(0); u16(0)
    u32(0o100644 << 16); u32(0)
    out.append(nameBytes)
    let centralSize = out.count - central
    // End of central directory.
    u32(0x0605_4B50); u16(0); u16(0); u16(1); u16(1); u32(UInt32(centralSize)); u32(UInt32(central)); u16(0)
    return out
  }

  static func crc32(_ data: Data) -> UInt32 {
    var table = [UInt32](repeating: 0, count: 256)
    for i in 0..<256 {
      var c = UInt32(i)
      for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
      table[i] = c
    }
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
  }
}
