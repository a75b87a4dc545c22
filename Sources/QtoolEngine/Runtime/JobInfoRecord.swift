import QtoolStore

extension JobOperations {
  /// A job's row as `jobs show` and the API give it (for streams reading rows themselves).
  public static func info(_ record: JobRecord, now: Int64) -> JobInfo { JobInfo(record, now: now) }

  /// The jobs of one kind (or all), newest first, paged: the page and how many there are.
  public func page(statuses: [String], kinds: [String], page: Int, size: Int) throws -> (items: [JobInfo], total: Int) {
    let all = try list(JobFilter(statuses: statuses, kinds: kinds, limit: 100_000))
    let start = min(all.count, (page - 1) * size)
    return (Array(all[start..<min(all.count, start + size)]), all.count)
  }
}
