import CXGBoost
import Foundation
import Synchronization

/// XGBoost prints its warnings and notes through this callback instead of stdout (it prints to
/// stdout without one). A file-scope C-convention function: XGBoost may call it from its own
/// threads, and a closure from `main.swift` crashes there (SWIFT-NOTES).
let xgboostLogCallback: @convention(c) (UnsafePointer<CChar>?) -> Void = { message in
  guard let message else { return }
  XGBoostLog.append(String(cString: message))
}

/// The library's messages since they were last drained, for the training report; kept per
/// thread, as XGBoost logs on the thread that called it.
enum XGBoostLog {
  private static let messages = Mutex<[(thread: UInt, text: String)]>([])

  static var thread: UInt { UInt(pthread_self()) }
  /// Installs the callback for the calling thread: XGBoost keeps its log callback per thread,
  /// so every thread that calls into it (a job's, a test's) installs it before it does.
  /// Loads the library first: this is the first call of every path into it.
  static func install() throws(XGBoostUnavailable) {
    _ = try XGBoostLibrary.load().XGBRegisterLogCallback(xgboostLogCallback)
  }

  static func append(_ message: String) {
    let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !text.isEmpty else { return }
    let thread = thread
    messages.withLock { list in
      if list.count < 1000 { list.append((thread, text)) }
    }
  }

  /// The messages this thread logged since its last call, oldest first.
  static func drain() -> [String] {
    let thread = thread
    return messages.withLock { list in
      defer { list.removeAll { $0.thread == thread } }
      return list.filter { $0.thread == thread }.map(\.text)
    }
  }
}
