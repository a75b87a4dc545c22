/// "Did you mean …?" for names users type: datasets, strategies, metrics, functions.
public enum Similarity {
  /// The candidate closest to `word` if it is close enough to be a typo (case-insensitive match first).
  public static func closest(to word: String, among candidates: [String]) -> String? {
    if let exact = candidates.first(where: { $0.lowercased() == word.lowercased() }) { return exact }
    guard let best = candidates.min(by: { editDistance(word, $0) < editDistance(word, $1) }) else { return nil }
    return editDistance(word, best) <= max(2, word.count / 3) ? best : nil
  }

  /// Levenshtein distance over Unicode scalars.
  public static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.unicodeScalars)
    let b = Array(b.unicodeScalars)
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
    var row = Array(0...b.count)
    for i in 1...a.count {
      var diagonal = row[0]
      row[0] = i
      for j in 1...b.count {
        let above = row[j]
        row[j] = min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1))
        diagonal = above
      }
    }
    return row[b.count]
  }
}
