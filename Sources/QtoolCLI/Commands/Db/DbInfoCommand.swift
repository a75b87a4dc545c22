import QtoolArgs
import QtoolCore
import QtoolEngine

enum DbInfoCommand: LeafCommand {
  static let readsOnly = true
  static let spec = CommandSpec(
    name: "info", abstract: "Show the store's path, size, schema version and row counts",
    options: [CommonOptions.json],
    examples: [Example("qtool db info --json", "Machine-readable facts about the store")])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let info = try StoreOperations(try context.operations()).info()
    if context.json {
      try context.printJSON(info)
      return .success
    }
    guard info.exists else {
      context.stdout.write(KeyValueList(pairs: [("path", info.path), ("store", "none yet: the first command that writes creates it")]).render())
      return .success
    }
    var pairs: [(String, String)] = [
      ("path", info.path),
      ("size", Format.bytes(info.fileBytes) + (info.walBytes > 0 ? " (+\(Format.bytes(info.walBytes)) WAL)" : "")),
      ("sqlite", info.sqliteVersion),
      ("journal", info.journalMode),
      ("pages", "\(info.pageCount) × \(info.pageSize) B, \(info.freePages) free"),
      ("migrations", info.appliedMigrations.joined(separator: ", ")),
    ]
    if !info.pendingMigrations.isEmpty { pairs.append(("pending", info.pendingMigrations.joined(separator: ", "))) }
    for (table, count) in info.rowCounts.sorted(by: { $0.key < $1.key }) {
      pairs.append(("rows." + table, "\(count)"))
    }
    context.stdout.write(KeyValueList(pairs: pairs).render())
    return .success
  }
}
