import Foundation
import CXGBoost
import Synchronization

/// XGBoost prints its warnings and notes through this callback instead of stdout (it prints to
/// stdout without one). A file-scope C-convention function: XGBoost may call it from its own
/// threads, and a closure from `main.swift` crashes there (SWIFT-NOTES).
let xgboostLogCallback: @convention(c) (UnsafePointer<CChar>?) -> Void = { message in
  guard let message else { return }
  XGBoostLog.append(String(cString: message))
}

/// The library's messages since they were last drained, for the training report.
enum XGBoostLog {
  private static let messages = Mutex<[String]>([])
  private static let installed = Mutex(false)

  /// Installs the callback once per process.
  static func install() {
    installed.withLock { done in
      guard !done else { return }
      XGBRegisterLogCallback(xgboostLogCallback)
      done = true
    }
  }

  static func append(_ message: String) {
    let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
    guard !text.isEmpty else { return }
    messages.withLock { list in
      if list.count < 100 { list.append(text) }
    }
  }

  /// The messages logged since the last call, oldest first.
  static func drain() -> [String] {
    messages.withLock { list in
      defer { list = [] }
      return list
    }
  }
}
