import QtoolArgs
import QtoolCore
import QtoolEngine
import QtoolStore

enum SignalsNotifyAddCommand: LeafCommand {
  static let spec = CommandSpec(
    name: "add", abstract: "Add a notification channel",
    discussion: """
      Every signal a runner stores that the channel's filters match is sent to it, from a \
      delivery task that never holds up a decision: connection errors, timeouts, 408, 429 \
      (Retry-After obeyed) and 5xx are tried again with exponential back-off and jitter \
      (notify.retry_base, notify.retry_cap) up to --max-attempts; any other 4xx gives up at \
      once. Every attempt is recorded (`signals notify history`). Late signals are sent only \
      with --include-late; suppressed ones (a paused strategy) never.

      webhook: the event's JSON POSTed to --url with Standard Webhooks headers: webhook-id (the \
      signal's id, the same on every attempt, so a receiver drops repeats), webhook-timestamp, \
      and with --secret-env or --secret-file an HMAC-SHA256 webhook-signature (v1,base64; a \
      whsec_ secret is base64 of the key). command: /bin/sh -c COMMAND with the event's JSON on \
      stdin, killed after --timeout. telegram, discord, slack: a message from --template \
      (placeholders {type} {action} {reason} {symbol} {timeframe} {price} {strength} {level} \
      {strategy} {version} {bar} {id} {late}). Secrets are never stored: a channel names the \
      environment variable or file the runner reads them from.
      """,
    options: [
      .value("kind", .choice(ChannelKind.allCases.map(\.rawValue)), valueName: "kind", help: "The kind of channel.", required: true),
      .value("url", valueName: "url", help: "webhook: the http(s) URL to POST to."),
      .value("url-env", valueName: "var", help: "discord, slack: the environment variable holding the webhook URL."),
      .value("url-file", .path(.namedFile(extensions: [])), valueName: "file", help: "discord, slack: the file holding the webhook URL."),
      .value("secret-env", valueName: "var", help: "webhook: the environment variable holding the signing secret."),
      .value("secret-file", .path(.namedFile(extensions: [])), valueName: "file", help: "webhook: the file holding the signing secret."),
      .value("token-env", valueName: "var", help: "telegram: the environment variable holding the bot token."),
      .value("token-file", .path(.namedFile(extensions: [])), valueName: "file", help: "telegram: the file holding the bot token."),
      .value("chat-id", valueName: "id", help: "telegram: the chat to write to."),
      .value("command", valueName: "command", help: "command: what to run (by /bin/sh -c), the event's JSON on its stdin."),
      .value("template", valueName: "text", help: "telegram, discord, slack: the message, with {type}, {symbol}, {price}, …"),
      .value("timeout", valueName: "time", help: "How long one attempt may take, e.g. 10s or 800ms.", defaultValue: "10s"),
      .value("max-attempts", .int, valueName: "n", help: "Attempts before giving up (default: notify.max_attempts, 8)."),
      .flag("include-late", help: "Send late signals too."),
    ] + SignalFilterOptions.options + [CommonOptions.json],
    positionals: [PositionalSpec("name", help: "The channel's name.")],
    examples: [
      Example("qtool signals notify add hook --kind webhook --url https://example.com/qtool --secret-env QTOOL_HOOK_SECRET", "Signed webhooks"),
      Example("qtool signals notify add desk --kind slack --url-env SLACK_WEBHOOK_URL --type buy --min-strength 80", "Strong buys to Slack"),
      Example(
        "qtool signals notify add local --kind command --command 'notify-send qtool \"$QTOOL_SIGNAL_TYPE $QTOOL_SIGNAL_SYMBOL\"'",
        "A desktop notification"),
    ])

  static func run(_ context: CommandContext) throws -> ExitStatus {
    let arguments = context.arguments
    let kind = ChannelKind(rawValue: arguments.string("kind")!)!
    let timeout = try LiveOptions.milliseconds(arguments.string("timeout") ?? "10s", option: "timeout", arguments)
    guard timeout >= 1, timeout <= 300_000 else { throw UsageError("--timeout: expected 1ms to 5m", commandPath: arguments.commandPath) }
    if let attempts = arguments.int("max-attempts"), !(1...100).contains(attempts) {
      throw UsageError("--max-attempts: expected 1 to 100", commandPath: arguments.commandPath)
    }
    let operations = LiveOperations(try context.operations())
    var filter = try SignalFilterOptions.filter(context, now: operations.context.clock.now())
    filter.since = nil
    let config = ChannelConfig(
      url: arguments.string("url"), urlEnv: arguments.string("url-env"), urlFile: arguments.string("url-file"),
      secretEnv: arguments.string("secret-env"),
      secretFile: arguments.string("secret-file"), tokenEnv: arguments.string("token-env"), tokenFile: arguments.string("token-file"),
      chatID: arguments.string("chat-id"), command: arguments.string("command"), template: arguments.string("template"),
      timeoutMilliseconds: Int(timeout), maxAttempts: arguments.int("max-attempts"))
    let channel = try operations.addChannel(
      ChannelRequest(name: arguments.string("name")!, kind: kind, config: config, filter: filter, includeLate: arguments.flag("include-late")))
    if context.json {
      try context.printJSON(channel)
    } else {
      context.note("added \(channel.kind) channel \(channel.name)")
      context.note("send it a test event with `qtool signals notify test \(channel.name)`")
    }
    return .success
  }
}
