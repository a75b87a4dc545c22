extension VerifyReport {
  /// The calendar months (`2024-03`) holding a problem — a bad bar, or a gap's missing bars —
  /// in time order: what to download again (`data download --full` over them) to repair.
  public func refetchMonths(timeframe: Timeframe) -> [String] {
    var months = Set<Int>()
    func month(_ timestamp: Int64) -> Int {
      let (year, month, _, _) = UTCCalendar.components(timestamp)
      return year * 12 + (month - 1)
    }
    for finding in problems {
      if let until = finding.until, finding.kind == .gap {
        // The missing bars lie after the bar before the gap and before the bar after it.
        let first = month(timeframe.next(after: finding.timestamp))
        let last = month(until - 1)
        if first <= last { for m in first...last { months.insert(m) } }
      } else {
        months.insert(month(finding.timestamp))
      }
    }
    return months.sorted().map { m in
      let (year, month) = (m / 12, m % 12 + 1)
      return "\(year)-\(month < 10 ? "0" : "")\(month)"
    }
  }
}
