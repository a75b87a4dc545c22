import Foundation
import QtoolCore
import QtoolData
import QtoolStore

/// How to submit a grid to Slurm (`backtest grid --slurm`).
public struct SlurmSettings: Codable, Sendable, Equatable {
  public var shards: Int
  public var partition: String?
  public var time: String?
  public var cpusPerTask: Int?
  /// More `#SBATCH` directives, e.g. `--mem=4G`.
  public var sbatchArguments: [String]
  /// A directory every node sees: the snapshot, spec, scripts, shard stores and logs go there.
  public var workDir: String
  /// The qtool binary the tasks run, and the store the merge step writes.
  public var executable: String
  public var store: String
  /// The grid's options as each task gives them after the spec (`--grid …`, `--where …`).
  public var gridArguments: [String]
  /// A walk-forward's `TRAIN/TEST` (its tasks run blocks of folds × combinations), or nil for a grid.
  public var walkForward: String?

  public init(
    shards: Int, partition: String? = nil, time: String? = nil, cpusPerTask: Int? = nil, sbatchArguments: [String] = [], workDir: String,
    executable: String, store: String, gridArguments: [String], walkForward: String? = nil
  ) {
    self.walkForward = walkForward
    self.shards = shards
    self.partition = partition
    self.time = time
    self.cpusPerTask = cpusPerTask
    self.sbatchArguments = sbatchArguments
    self.workDir = workDir
    self.executable = executable
    self.store = store
    self.gridArguments = gridArguments
  }
}

/// What a submission (or a resume) did, or with `dry_run` would do.
public struct SlurmSubmissionReport: Encodable, Sendable {
  public var gridID: String
  public var jobID: String?
  public var shards: Int
  public var combinations: Int
  public var workDir: String
  public var snapshot: String
  public var snapshotHash: String
  public var arrayScript: String
  public var mergeScript: String
  public var arrayJob: String?
  public var mergeJob: String?
  /// The shards submitted (all of them, or after a resume the missing ones).
  public var submitted: [Int]
  public var dryRun: Bool
  /// A walk-forward's `TRAIN/TEST` and folds (absent for a grid).
  public var walkForward: String?
  public var folds: Int?
  /// What the shards split, for people: `1,081 combinations`, or `9 folds × 1,081 combinations`.
  public var workItems: String {
    folds.map { "\(DisplayFormat.plural($0, "fold")) × \(DisplayFormat.plural(combinations, "combination"))" } ?? DisplayFormat.plural(combinations, "combination")
  }
  enum CodingKeys: String, CodingKey {
    case walkForward = "walk_forward", folds
    case gridID = "grid_id", jobID = "job_id", shards, combinations, workDir = "work_dir", snapshot, snapshotHash = "snapshot_hash"
    case arrayScript = "array_script", mergeScript = "merge_script", arrayJob = "array_job", mergeJob = "merge_job", submitted, dryRun = "dry_run"
  }
}

/// A Slurm-submitted grid's state: Slurm's own for what is queued or running, the shard stores
/// for what is done.
public struct SlurmGridStatus: Encodable, Sendable {
  public struct Task: Encodable, Sendable {
    public var shard: Int
    /// pending, running, done or failed.
    public var state: String
  }
  public var gridID: String
  public var arrayJob: String
  public var mergeJob: String
  public var workDir: String
  public var tasks: [Task]
  /// pending, running, done (the grid is in the store) or failed.
  public var merge: String
  enum CodingKeys: String, CodingKey { case gridID = "grid_id", arrayJob = "array_job", mergeJob = "merge_job", workDir = "work_dir", tasks, merge }
}

/// Submitting grids to Slurm as array jobs, and following them. Slurm schedules, retries and
/// accounts; qtool writes the snapshot and scripts, calls `sbatch`, and reads `squeue`.
public struct SlurmOperations: Sendable {
  public let context: OperationContext
  public init(_ context: OperationContext) { self.context = context }

  /// Writes the snapshot, spec and sbatch scripts to the work directory, submits the array job
  /// and a merge step that runs after it succeeds, and records one qtool job holding their
  /// Slurm ids. With `dryRun`, writes and submits nothing and returns the scripts.
  public func submit(_ request: GridRequest, slurm: SlurmSettings, dryRun: Bool) throws -> SlurmSubmissionReport {
    try BacktestOperations.checkRank(request.rank)
    _ = try GridShard(index: 1, count: slurm.shards)
    let sbatch = dryRun ? nil : try Self.tool("sbatch")
    let operations = BacktestOperations(context)
    let loaded = try StrategyLoader.resolve(request.strategy, database: context.database)
    let compiled = try CompiledStrategy(loaded.spec, capital: request.capital, origin: loaded.origin)
    let combinations = try BacktestOperations.combinations(request, known: compiled.parameters)
    let id = try BacktestOperations.shardedGridID(
      strategy: loaded.spec.name, request: request, shards: slurm.shards, walkForward: slurm.walkForward)
    let data: BacktestOperations.MarketData
    var folds: Int?
    if let walkForward = slurm.walkForward {
      // The walk-forward's own data and folds: refused here, before anything is submitted,
      // when the data is shorter than one window.
      let parts = walkForward.split(separator: "/").map(String.init)
      guard parts.count == 2, let train = PeriodLength(parts[0]), let test = PeriodLength(parts[1]) else {
        throw OperationError.invalidArgument("expected the walk-forward as TRAIN/TEST like 2y/6m, got '\(walkForward)'", field: "walk_forward")
      }
      let (warmup, expression) = try operations.longestWarmup(loaded, capital: request.capital, combinations: combinations)
      data = try operations.loadData(
        loaded.spec, dataset: request.dataset, from: request.from, to: request.to, allowGaps: request.allowGaps, warmup: warmup,
        noWarmup: request.noWarmup, expression: expression)
      let found = BacktestOperations.walkForwardFolds(data, train: train, test: test)
      guard !found.isEmpty else { throw BacktestOperations.shorterThanOneWindow(data.timestamps) }
      folds = found.count
    } else {
      let warms = request.from != nil && !request.noWarmup
      data = try operations.loadGridData(loaded, request: request, combinations: warms ? combinations : [])
    }
    let snapshots = SnapshotOperations(context)
    let (copies, hash) = try snapshots.plan(datasets: data.datasetName.split(separator: "+").map(String.init))
    let work = URL(fileURLWithPath: slurm.workDir).standardizedFileURL.path
    try Self.checkDirectives(slurm, work: work)
    try Self.checkWorkDirHoldsNoOtherGrid(work, id: id)
    var report = SlurmSubmissionReport(
      gridID: id, jobID: nil, shards: slurm.shards, combinations: combinations.count, workDir: work, snapshot: work + "/snapshot.db",
      snapshotHash: hash, arrayScript: "", mergeScript: "", submitted: Array(1...slurm.shards), dryRun: dryRun, walkForward: slurm.walkForward,
      folds: folds)
    let (arrayScript, mergeScript) = Self.scripts(id: id, slurm: slurm, work: work, hash: hash, workItems: report.workItems)
    report.arrayScript = arrayScript
    report.mergeScript = mergeScript
    guard let sbatch else { return report }
    struct Request: Encodable {
      var grid: GridRequest
      var slurm: SlurmSettings
    }
    return try JobRunner.run(
      .grid, request: Request(grid: request, slurm: slurm), context: context,
      link: { ["grid_id": .string($0.gridID), "slurm_array_job": .string($0.arrayJob ?? ""), "slurm_merge_job": .string($0.mergeJob ?? "")] }
    ) { context in
      for directory in [work, work + "/shards", work + "/logs"] {
        do {
          try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
          throw OperationError.cannotWrite("cannot create the work directory \(directory)", path: directory)
        }
      }
      let existing = try? QtoolDatabase.openSnapshot(path: report.snapshot).snapshotHash()
      if existing != hash {
        _ = try SnapshotOperations(context).write(copies, hash: hash, to: report.snapshot, overwrite: true, started: context.clock.now())
      }
      try Self.writeFile(loaded.text, to: work + "/spec.yaml")
      try Self.writeFile(arrayScript, to: work + "/grid.sbatch")
      try Self.writeFile(mergeScript, to: work + "/merge.sbatch")
      try context.cancellation.check()
      let arrayJob = try Self.sbatch(sbatch, [work + "/grid.sbatch"])
      let mergeJob = try Self.sbatch(sbatch, ["--dependency=afterok:\(arrayJob)", work + "/merge.sbatch"])
      try context.database.recordGridSubmission(
        GridSubmissionRecord(
          gridID: id, jobID: context.jobID, workDir: work, shards: slurm.shards, arrayJob: arrayJob, mergeJob: mergeJob,
          createdAt: context.clock.now()))
      report.jobID = context.jobID
      report.arrayJob = arrayJob
      report.mergeJob = mergeJob
      return report
    }
  }

  /// Resubmits only the shards of a submitted grid whose stores do not hold them (cancelled,
  /// failed, never run), and a new merge step after them.
  public func resume(gridID: String) throws -> SlurmSubmissionReport {
    guard let submission = try context.database.gridSubmission(gridID: gridID) else {
      throw OperationError.notFound(
        "grid \(gridID) was not submitted to Slurm from this store", code: "grid_submission_not_found", details: ["grid_id": .string(gridID)],
        hint: "run the missing shards with backtest grid … {shard} K/N and merge them")
    }
    guard try !context.database.hasGrid(id: gridID), try context.database.walkForwardRunReport(id: gridID) == nil else {
      throw OperationError(
        .alreadyExists, code: "grid_exists", "grid \(gridID) is already merged into the store; there is nothing to resume",
        details: ["grid_id": .string(gridID)], hint: "`qtool backtest grid show \(gridID)` shows it")
    }
    let sbatch = try Self.tool("sbatch")
    let work = submission.workDir
    let missing = try Self.missingShards(submission)
    let arrayScript = (try? String(contentsOfFile: work + "/grid.sbatch", encoding: .utf8)) ?? ""
    let mergeScript = (try? String(contentsOfFile: work + "/merge.sbatch", encoding: .utf8)) ?? ""
    let hash = (try? QtoolDatabase.openSnapshot(path: work + "/snapshot.db").snapshotHash()).flatMap { $0 } ?? ""
    var report = SlurmSubmissionReport(
      gridID: gridID, jobID: nil, shards: submission.shards, combinations: 0, workDir: work, snapshot: work + "/snapshot.db", snapshotHash: hash,
      arrayScript: arrayScript, mergeScript: mergeScript, submitted: missing, dryRun: false)
    struct Request: Encodable {
      var gridID: String
      var resume: [Int]
      enum CodingKeys: String, CodingKey { case gridID = "grid_id", resume }
    }
    return try JobRunner.run(
      .grid, request: Request(gridID: gridID, resume: missing), context: context,
      link: { ["grid_id": .string($0.gridID), "slurm_array_job": .string($0.arrayJob ?? ""), "slurm_merge_job": .string($0.mergeJob ?? "")] }
    ) { context in
      // The old merge step waits on an array that can no longer succeed: cancel it.
      if let scancel = try? Self.tool("scancel") { _ = try? Self.execute(scancel, [submission.mergeJob]) }
      var arrayJob = submission.arrayJob
      if !missing.isEmpty {
        arrayJob = try Self.sbatch(sbatch, ["--array=" + missing.map(String.init).joined(separator: ","), work + "/grid.sbatch"])
      }
      let mergeJob = try Self.sbatch(sbatch, (missing.isEmpty ? [] : ["--dependency=afterok:\(arrayJob)"]) + [work + "/merge.sbatch"])
      var record = submission
      record.history.append("\(submission.arrayJob)/\(submission.mergeJob)")
      record.jobID = context.jobID
      record.arrayJob = arrayJob
      record.mergeJob = mergeJob
      try context.database.recordGridSubmission(record)
      report.jobID = context.jobID
      report.arrayJob = arrayJob
      report.mergeJob = mergeJob
      return report
    }
  }

  /// The state of each task of a submitted grid: done when its shard store holds it, else
  /// pending or running as `squeue` says, else failed.
  public func status(_ submission: GridSubmissionRecord) throws -> SlurmGridStatus {
    var queued: [String: String] = [:]
    if let squeue = try? Self.tool("squeue") {
      let jobs = ([submission.arrayJob, submission.mergeJob] + submission.history.flatMap { $0.split(separator: "/").map(String.init) })
      if let output = try? Self.execute(squeue, ["-h", "-r", "-j", jobs.joined(separator: ","), "-o", "%i %T"]) {
        for line in output.split(separator: "\n") {
          let parts = line.split(separator: " ")
          if parts.count == 2 { queued[String(parts[0])] = parts[1].lowercased() }
        }
      }
    }
    let missing = Set(try Self.missingShards(submission))
    func state(_ slurm: String?) -> String? {
      guard let slurm else { return nil }
      switch slurm {
      case "pending", "configuring", "requeued", "resizing", "suspended": return "pending"
      case "running", "completing": return "running"
      default: return nil
      }
    }
    let tasks = (1...submission.shards).map { shard -> SlurmGridStatus.Task in
      guard missing.contains(shard) else { return SlurmGridStatus.Task(shard: shard, state: "done") }
      let ids = ([submission.arrayJob] + submission.history.map { String($0.split(separator: "/")[0]) }).map { "\($0)_\(shard)" }
      return SlurmGridStatus.Task(shard: shard, state: ids.lazy.compactMap { state(queued[$0]) }.first ?? "failed")
    }
    let merged = try context.database.hasGrid(id: submission.gridID) || context.database.walkForwardRunReport(id: submission.gridID) != nil
    return SlurmGridStatus(
      gridID: submission.gridID, arrayJob: submission.arrayJob, mergeJob: submission.mergeJob, workDir: submission.workDir, tasks: tasks,
      merge: merged ? "done" : state(queued[submission.mergeJob]) ?? "failed")
  }

  static func missingShards(_ submission: GridSubmissionRecord) throws -> [Int] {
    (1...submission.shards).filter { shard in
      let path = submission.workDir + "/shards/shard-\(shard).db"
      guard FileManager.default.fileExists(atPath: path), let store = try? QtoolDatabase.open(path: path, readOnly: true) else { return true }
      return !((try? store.gridShards(gridID: submission.gridID)) ?? []).contains { $0.shard == shard }
        && !((try? store.walkForwardShards(gridID: submission.gridID)) ?? []).contains { $0.shard == shard }
    }
  }

  /// What goes into an `#SBATCH` line must be one word on one line: sbatch splits a directive
  /// at white space (a work directory `/shared/my grid` would log to `/shared/my`), and a
  /// newline would start a directive nobody asked for.
  static func checkDirectives(_ slurm: SlurmSettings, work: String) throws {
    let given: [(String, String)] =
      [("work_dir", work)] + (slurm.partition.map { [("partition", $0)] } ?? []) + (slurm.time.map { [("time", $0)] } ?? [])
      + slurm.sbatchArguments.map { ("sbatch_arg", $0) }
    for (field, value) in given where value.isEmpty || value.contains(where: { $0.isWhitespace || $0.isNewline }) {
      throw OperationError.invalidArgument(
        "\(field.replacingOccurrences(of: "_", with: "-")) '\(value)' \(value.isEmpty ? "is empty" : "holds white space"), which an #SBATCH line cannot carry",
        field: field, hint: field == "work_dir" ? "choose a work directory whose path has no spaces" : "give one directive word per {sbatch_arg}")
    }
    // Slurm's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or no limit.
    if let time = slurm.time,
      !["UNLIMITED", "INFINITE"].contains(time.uppercased()),
      time.range(of: #"^([0-9]+-)?[0-9]+(:[0-9]+){0,2}$"#, options: .regularExpression) == nil
    {
      throw OperationError.invalidArgument(
        "time '\(time)' is not a Slurm time limit", field: "time", hint: "write minutes, HH:MM:SS or D-HH:MM:SS, e.g. 1:00:00")
    }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: work, isDirectory: &isDirectory), !isDirectory.boolValue {
      throw OperationError.invalidArgument("work-dir \(work) is a file, not a directory", field: "work_dir", hint: "give a directory (it is created when missing)")
    }
  }

  /// A work directory's merge step merges every store in its `shards/`: stores another grid
  /// left there would fail it for good, so a work directory serves one grid (and its resumes).
  static func checkWorkDirHoldsNoOtherGrid(_ work: String, id: String) throws {
    let shards = work + "/shards"
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: shards)) ?? []).filter { $0.hasSuffix(".db") }.sorted()
    for name in names {
      let path = shards + "/" + name
      guard let store = try? QtoolDatabase.open(path: path, readOnly: true) else { continue }
      let others = Set(((try? store.gridShards().map(\.gridID)) ?? []) + ((try? store.walkForwardShards().map(\.gridID)) ?? [])).subtracting([id])
      if let other = others.sorted().first {
        throw OperationError.invalidArgument(
          "the work directory \(work) already holds shards of grid \(other) (\(path)); its merge step would merge them with this grid's",
          field: "work_dir", hint: "give this grid its own --work-dir, or remove \(shards) once grid \(other) is merged")
      }
    }
  }

  static func scripts(id: String, slurm: SlurmSettings, work: String, hash: String, workItems: String) -> (array: String, merge: String) {
    func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    func directives(_ lines: [String]) -> String {
      (lines + (slurm.partition.map { ["--partition=\($0)"] } ?? []) + (slurm.time.map { ["--time=\($0)"] } ?? []) + slurm.sbatchArguments)
        .map { "#SBATCH \($0)\n" }.joined()
    }
    let array =
      "#!/bin/bash\n"
      + directives(
        ["--job-name=qtool-grid-\(id)", "--array=1-\(slurm.shards)", "--output=\(work)/logs/shard-%a.out"]
          + (slurm.cpusPerTask.map { ["--cpus-per-task=\($0)"] } ?? []))
        + """
        # qtool grid \(id): \(slurm.walkForward.map { "walk-forward \($0), " } ?? "")\(workItems) in \(slurm.shards) shards, snapshot \(hash).
        # Task K runs shard K into its own store; `sbatch --array=K` runs one shard again.
        set -eu
        exec \(quote(slurm.executable)) --db \(quote(work + "/shards/shard-"))"$SLURM_ARRAY_TASK_ID".db backtest grid run \(quote(work + "/spec.yaml")) \\
          \(slurm.gridArguments.map(quote).joined(separator: " ")) \\
          --shard auto --shards \(slurm.shards) --snapshot \(quote(work + "/snapshot.db")) --snapshot-hash \(hash) --jobs "${SLURM_CPUS_PER_TASK:-1}" --quiet

        """
    // A merged walk-forward's report (JSON) goes to a file by the shards as well as to the store.
    let reportNote = slurm.walkForward == nil ? "" : "; the walk-forward's report (JSON) goes to walk-forward.json"
    let reportOutput = slurm.walkForward == nil ? "" : " --json > \(quote(work + "/walk-forward.json"))"
    let merge =
      "#!/bin/bash\n" + directives(["--job-name=qtool-merge-\(id)", "--output=\(work)/logs/merge.out"])
        + """
        # qtool grid \(id): merges the \(slurm.shards) shard stores into \(slurm.store)\(reportNote).
        set -eu
        exec \(quote(slurm.executable)) --db \(quote(slurm.store)) backtest grid merge \(id) \(quote(work + "/shards"))/shard-*.db --quiet\(reportOutput)

        """
    return (array, merge)
  }

  static func writeFile(_ text: String, to path: String) throws {
    do {
      try AtomicFile.write(Data(text.utf8), to: path, overwrite: true)
    } catch {
      throw OperationError.cannotWrite("cannot write \(path): \(error)", path: path)
    }
  }

  /// The path of `name` on PATH, or an `unavailable` error (69) saying it is missing.
  static func tool(_ name: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for directory in path.split(separator: ":") {
      let candidate = "\(directory)/\(name)"
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    throw OperationError(
      .unavailable, code: "slurm_not_found", "\(name) is not on PATH: submitting to Slurm needs Slurm's client commands (sbatch, squeue, scancel)",
      details: ["command": .string(name)], hint: "run this on a Slurm login node, or install slurm-client")
  }

  /// Submits with `sbatch --parsable`; returns the Slurm job id.
  static func sbatch(_ sbatch: String, _ arguments: [String]) throws -> String {
    let output = try execute(sbatch, ["--parsable"] + arguments)
    let id = output.split(separator: "\n").last.map { String($0.split(separator: ";")[0]) }?.trimmingCharacters(in: .whitespaces) ?? ""
    guard !id.isEmpty, id.allSatisfy(\.isNumber) else {
      throw OperationError(.unavailable, code: "sbatch_failed", "sbatch answered '\(output)' instead of a job id")
    }
    return id
  }

  static func execute(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let errors = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      let name = URL(fileURLWithPath: executable).lastPathComponent
      throw OperationError(
        .unavailable, code: "slurm_command_failed",
        "\(name) failed (exit \(process.terminationStatus)): \(String(decoding: errors, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))",
        details: ["command": .string(name)])
    }
    return String(decoding: output, as: UTF8.self)
  }
}
