import Dispatch
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// Ctrl-C exits 130 after removing files still being written under temporary names; SQLite
/// rolls back any open transaction on the next open, so nothing half-written is visible.
/// SIGPIPE is ignored so a closed stdout is seen as EPIPE and handled quietly by OutputStream.
enum Signals {
  nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

  static func install() {
    signal(SIGPIPE, SIG_IGN)
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        TemporaryFiles.removeAll()
        if OutputStream.standardError.isTerminal { OutputStream.standardError.write("\r\u{1B}[2K") }
        OutputStream.standardError.write(number == SIGINT ? "qtool: interrupted\n" : "qtool: terminated\n")
        _exit(number == SIGINT ? 130 : 143)
      }
      source.resume()
      sources.append(source)
    }
  }
}
