import Foundation
import Logging
import QtoolArgs
import QtoolCore
import QtoolEngine

/// The entry point: parse, dispatch to one leaf command, turn errors into messages and exit codes.
public enum QtoolCLI {
  public static func main(arguments: [String] = Array(CommandLine.arguments.dropFirst())) -> Never {
    FileArgument.reserveStandardDescriptors()
    Signals.install()
    ProcessTuning.keepFreedMemory()
    // Logs are diagnostics: stderr, never mixed into results on stdout.
    LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
    exit(run(arguments: arguments, environment: ProcessInfo.processInfo.environment))
  }

  static func run(arguments: [String], environment: [String: String]) -> Int32 {
    let stdout = OutputStream.standardOutput
    let stderr = OutputStream.standardError
    // Known before parsing, so that a usage error is reported as JSON too.
    let wantsJSON = arguments.contains("--json")
    let parser = Parser(root: CommandTree.root, environment: environment)
    do {
      switch try parser.parse(arguments) {
      case .help(let path):
        stdout.write(HelpRenderer(root: CommandTree.root).help(for: path))
        return ExitStatus.success.rawValue
      case .version:
        stdout.line("qtool \(VersionInfo.version)")
        return ExitStatus.success.rawValue
      case .run(let parsed):
        guard let command = CommandTree.leaf(at: parsed.commandPath) else {
          stderr.line("qtool: internal error: no handler for '\(parsed.commandPath.joined(separator: " "))'")
          return ExitStatus.software.rawValue
        }
        let context = CommandContext(arguments: parsed, environment: environment, readsOnly: command.readsOnly)
        defer { context.finish() }
        do {
          return try command.run(context).rawValue
        } catch let error as UsageError {
          throw error
        } catch let error as any QtoolError {
          context.clearProgress()
          report(error, json: wantsJSON, stderr: stderr)
          return error.exitStatus.rawValue
        }
      }
    } catch let error as UsageError {
      reportUsage(error, stderr: stderr)
      if wantsJSON { stderr.line(ErrorOutput.json(ErrorOutput.usageReport(error))) }
      return ExitStatus.usage.rawValue
    } catch {
      let wrapped = ErrorReport(code: "internal", category: .internal, message: "\(error)")
      stderr.line("qtool: error: \(Terminal.printable("\(error)"))")
      if wantsJSON { stderr.line(ErrorOutput.json(wrapped)) }
      return ExitStatus.failure.rawValue
    }
  }

  static func report(_ error: any QtoolError, json: Bool, stderr: OutputStream) {
    if let cancelled = error as? OperationCancelled {
      stderr.line(cancelled.reason == .terminate ? "qtool: terminated" : cancelled.reason == .interrupt ? "qtool: interrupted" : "qtool: cancelled")
    } else {
      stderr.line("qtool: error: \(Terminal.printable(ErrorOutput.text(error)))")
    }
    if json { stderr.line(ErrorOutput.json(ErrorOutput.report(error))) }
  }

  static func reportUsage(_ error: UsageError, stderr: OutputStream) {
    let renderer = HelpRenderer(root: CommandTree.root)
    stderr.line("qtool: error: \(Terminal.printable(InputQuote.shorten(error.message)))")
    stderr.line(renderer.usageLine(for: error.commandPath))
    stderr.line("Run '\((["qtool"] + error.commandPath).joined(separator: " ")) --help' for more.")
  }
}
