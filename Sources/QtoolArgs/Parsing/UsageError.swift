/// A command line that does not fit the command tree. The CLI prints it with the usage
/// line of `commandPath` and exits 64 (EX_USAGE).
public struct UsageError: Error, Equatable, CustomStringConvertible {
  public var message: String
  /// The command whose usage line applies (names from the root, root excluded).
  public var commandPath: [String]

  public init(_ message: String, commandPath: [String]) {
    self.message = message
    self.commandPath = commandPath
  }

  public var description: String { message }
}

/// "Did you mean …?" by edit distance.
public enum Suggestion {
  /// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
  static func closest(to word: String, among candidates: [String]) -> String? {
    let scored = candidates.map { ($0, editDistance(word, $0)) }
    guard let best = scored.min(by: { $0.1 < $1.1 }) else { return nil }
    let limit = max(2, word.count / 3)
    if best.1 <= limit { return best.0 }
    if let prefixed = candidates.first(where: { $0.hasPrefix(word) && word.count >= 3 }) { return prefixed }
    return nil
  }

  public static func didYouMean(_ word: String, among candidates: [String], prefix: String = "") -> String {
    guard let match = closest(to: word, among: candidates) else { return "" }
    return " — did you mean '\(prefix)\(match)'?"
  }

  /// Levenshtein distance over Unicode scalars.
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
      current[0] = i
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
      }
      swap(&previous, &current)
    }
    return previous[b.count]
  }
}
