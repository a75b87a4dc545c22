import Foundation
import QtoolTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `signals tail --server` against servers that are not a qtool signal stream: each is an error
/// (69) that says what came back — never an empty answer with exit 0, never a growing buffer.
@Suite struct RemoteTailHostileTests {
  static let stream = ["Content-Type": "text/event-stream"]

  func tail(_ reply: LoopbackServer.Reply) throws -> QtoolProcess.Result {
    let server = try LoopbackServer()
    defer { server.stop() }
    server.on("/api/v1/stream/signals") { _, _ in reply }
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    return try qtool.run(["signals", "tail", "--server", server.baseURL, "--token", "t"])
  }

  @Test func aWebPageIsNotAnEmptyStream() throws {
    let result = try tail(.text("<html>\n\n<body>proxy login</body>\n\n</html>", headers: ["Content-Type": "text/html"]))
    #expect(result.status == 69)
    #expect(result.stderr.contains("it answered text/html, not an event stream"), "\(result.stderr)")
  }

  @Test func aStreamClosedBeforeItCaughtUpIsNotAComplete() throws {
    let result = try tail(.text("retry: 1000\n\n", headers: Self.stream))
    #expect(result.status == 69)
    #expect(result.stderr.contains("ended the signal stream before it had sent the latest signals"), "\(result.stderr)")
  }

  @Test func aSignalQtoolCannotReadIsAnError() throws {
    let result = try tail(.text("id: 1\nevent: signal\ndata: {\"price\": NaN}\n\n", headers: Self.stream))
    #expect(result.status == 69)
    #expect(result.stderr.contains("sent a signal event qtool cannot read"), "\(result.stderr)")
    #expect(result.stdout.isEmpty)
  }

  @Test func anEventWithoutEndIsNotBuffered() throws {
    let result = try tail(LoopbackServer.Reply(headers: Self.stream, body: Data(repeating: UInt8(ascii: "x"), count: 3 << 20)))
    #expect(result.status == 69)
    #expect(result.stderr.contains("an event longer than 1 MB"), "\(result.stderr)")
  }
}

/// `signals tail -f --server` when the stream drops: a server that ends each stream after a
/// few signals, the last of them cut in the middle. The follower reconnects with Last-Event-ID
/// (the last signal it printed in full), prints every signal once and in order — what the
/// local tail prints — and says on stderr each time that it reconnects.
@Suite struct RemoteTailReconnectTests {
  @Test func aDroppedStreamResumesWithoutGapOrDuplicate() throws {
    let qtool = try QtoolProcess()
    defer { qtool.cleanUp() }
    let goog = QtoolProcess.packageRoot.appendingPathComponent("Fixtures/demo-GOOG-1d.csv").path
    #expect(try qtool.run(["data", "import", goog, "--symbol", "GOOG", "--timeframe", "1d", "-q"]).status == 0)
    #expect(try qtool.run(["strategy", "new", "goog-sma", "--template", "sma_crossover", "--symbol", "GOOG", "-o", "goog-sma.yaml"]).status == 0)
    #expect(try qtool.run(["strategy", "run", "goog-sma", "--feed", "replay", "-q"]).status == 0)
    let local = try qtool.run(["signals", "tail", "-n", "100000", "--json"]).stdout
    let lines = local.split(separator: "\n").map(String.init)
    #expect(lines.count >= 12)
    let ids = try lines.map { try #require(try jsonObject($0)["id"] as? String) }
    let event: @Sendable (Int) -> String = { index in "id: \(ids[index])\nevent: signal\ndata: \(lines[index])\n\n" }

    let server = try LoopbackServer()
    defer { server.stop() }
    server.on("/api/v1/stream/signals") { request, _ in
      let headers = ["Content-Type": "text/event-stream"]
      guard let last = request.headers["last-event-id"] else {
        // The first connection: the last 5 as the tail, caught-up, 2 more, and the end of the stream.
        let body = "retry: 1000\n\n" + (0..<5).map(event).joined() + "id: \(ids[4])\nevent: caught-up\ndata: {}\n\n" + (5..<7).map(event).joined()
        return .text(body, headers: headers)
      }
      guard let index = ids.firstIndex(of: last) else { return .text("{}", status: 400) }
      let next = Array((index + 1)..<min(ids.count, index + 5))
      let body = "retry: 1000\n\n" + next.map(event).joined()
      guard let cut = next.last, cut < ids.count - 1 else { return .text(body, headers: headers) }
      // The connection drops in the middle of the last event: it is sent again after the resume.
      return LoopbackServer.Reply(headers: headers, body: Data(body.utf8), cutAfter: body.utf8.count - event(cut).utf8.count / 2)
    }
    let follower = try BackgroundQtool(qtool, ["signals", "tail", "-f", "-n", "5", "--json", "--server", server.baseURL, "--token", "t"])
    let expected = lines
    let deadline = Date().addingTimeInterval(90)
    while Date() < deadline, follower.stdout.split(separator: "\n").count < expected.count { usleep(50_000) }
    usleep(300_000)
    follower.signal(SIGTERM)
    #expect(follower.wait() == 0)
    let printed = follower.stdout.split(separator: "\n").map(String.init)
    #expect(printed == expected, "every signal once, in order, as the local tail prints it")
    #expect(Set(printed).count == printed.count, "no duplicate")
    // Each reconnection resumed after the last signal printed in full.
    let resumed = server.requests.compactMap { $0.headers["last-event-id"] }
    #expect(resumed.first == ids[6], "\(resumed)")
    #expect(resumed.allSatisfy { ids.contains($0) })
    #expect(follower.stderr.contains("ended the signal stream; reconnecting in 1 s") || follower.stderr.contains("dropped"), "\(follower.stderr)")
    let notices = follower.stderr.split(separator: "\n").filter { $0.contains("reconnecting in") }
    #expect(notices.count >= resumed.count, "every reconnection is said: \(follower.stderr)")
  }
}
