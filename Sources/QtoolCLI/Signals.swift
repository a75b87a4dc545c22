import Dispatch
import QtoolCore
import QtoolStore

#if canImport(Glibc)
  import Glibc
#endif

/// Ctrl-C and SIGTERM cancel the running operation: it stops at its next block boundary,
/// rolls back what it has not committed and the command exits 130 (143 for SIGTERM). A second
/// signal forces: files still being written under temporary names are removed and the process
/// exits at once; SQLite rolls back any open transaction on the next open, so nothing
/// half-written is visible either way. SIGPIPE is ignored so a closed stdout is seen as EPIPE
/// and handled quietly by OutputStream.
enum Signals {
  /// The token of everything this process runs.
  static let cancellation = CancellationToken()
  nonisolated(unsafe) private static var sources: [any DispatchSourceSignal] = []

  static func install() {
    signal(SIGPIPE, SIG_IGN)
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler {
        let first = !cancellation.isCancelled
        cancellation.cancel(number == SIGINT ? .interrupt : .terminate)
        if first {
          if OutputStream.standardError.isTerminal { OutputStream.standardError.write("\r\u{1B}[2K") }
          if number == SIGINT, OutputStream.standardError.isTerminal {
            OutputStream.standardError.write("qtool: stopping… (Ctrl-C again to force)\n")
          }
          return
        }
        TemporaryFiles.removeAll()
        OutputStream.standardError.write(number == SIGINT ? "qtool: interrupted\n" : "qtool: terminated\n")
        _exit(number == SIGINT ? 130 : 143)
      }
      source.resume()
      sources.append(source)
    }
  }
}
