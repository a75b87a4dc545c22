import QtoolCore
import QtoolStore

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

/// A file descriptor written with write(2). A closed pipe (`qtool … | head`) ends the process
/// quietly with status 0, as ripgrep and git do, instead of crashing on SIGPIPE.
final class OutputStream: @unchecked Sendable {
  static let standardOutput = OutputStream(fd: 1)
  static let standardError = OutputStream(fd: 2)

  let fd: Int32
  init(fd: Int32) { self.fd = fd }

  var isTerminal: Bool { isatty(fd) == 1 }

  func write(_ text: String) {
    var text = text
    text.withUTF8 { buffer in
      var offset = 0
      while offset < buffer.count {
        let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
        if written < 0 {
          if errno == EINTR { continue }
          if errno == EPIPE { _exit(0) }
          // A result that cannot be written is a failure, not a success with nothing shown.
          let reason = String(cString: strerror(errno))
          if fd != 2 {
            let message = "qtool: error: cannot write to \(fd == 1 ? "standard output" : "descriptor \(fd)"): \(reason)\n"
            _ = message.withCString { Glibc.write(2, $0, strlen($0)) }
          }
          TemporaryFiles.removeAll()
          _exit(ExitStatus.ioError.rawValue)
        }
        offset += written
      }
    }
  }

  func line(_ text: String = "") { write(text + "\n") }
}
