import Foundation
import QtoolTestSupport
import Testing

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
