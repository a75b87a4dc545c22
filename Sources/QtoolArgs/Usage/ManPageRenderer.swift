import Foundation

/// Renders the roff man page (section 1) of the whole tree.
public struct ManPageRenderer: Sendable {
  /// A section the tree does not know about, such as EXIT STATUS or FILES.
  public struct Section: Sendable {
    public var title: String
    /// Paragraphs; a paragraph whose lines are `term\tdefinition` becomes a tagged list.
    public var body: [String]
    public init(title: String, body: [String]) {
      self.title = title
      self.body = body
    }
  }

  public let root: CommandSpec
  public let version: String
  public let extraSections: [Section]

  public init(root: CommandSpec, version: String, extraSections: [Section] = []) {
    self.root = root
    self.version = version
    self.extraSections = extraSections
  }

  public func render() -> String {
    var out: [String] = []
    let upper = root.name.uppercased()
    out.append(".TH \(upper) 1 \"\" \"\(root.name) \(escape(version))\" \"User Commands\"")
    out.append(".SH NAME")
    out.append("\(root.name) \\- \(escape(root.abstract))")
    out.append(".SH SYNOPSIS")
    out.append(".B \(root.name)")
    out.append("[\\fIglobal options\\fR] \\fIcommand\\fR [\\fIoptions\\fR] [\\fIarguments\\fR]")
    out.append(".SH DESCRIPTION")
    out += paragraphs(root.discussion)
    out.append(".SH GLOBAL OPTIONS")
    for option in root.options where !option.isHidden { out += optionItem(option) }
    out.append(".SH COMMANDS")
    for (path, command) in root.walk() {
      out.append(".SS \"\(root.name) \(path.joined(separator: " "))\"")
      out.append(escape(command.abstract))
      if !command.isGroup {
        out.append(".PP")
        out.append(".B " + escape(HelpRenderer(root: root).usageLine(for: path).replacingOccurrences(of: "Usage: ", with: "")))
      }
      if !command.discussion.isEmpty { out += paragraphs(command.discussion) }
      for positional in command.positionals {
        out.append(".TP")
        out.append("\\fI\(escape(positional.usage))\\fR")
        out.append(escape(positional.help + HelpRenderer.choicesNote(positional.type)))
      }
      for option in command.options where !option.isHidden { out += optionItem(option) }
      for example in command.examples {
        out.append(".PP")
        out.append(escape(example.explanation) + ":")
        out.append(".RS 4")
        out.append(".nf")
        out.append("$ " + escape(example.command))
        out.append(".fi")
        out.append(".RE")
      }
    }
    let variables = environmentVariables()
    // A caller-written ENVIRONMENT section replaces the one derived from the options.
    if !variables.isEmpty, !extraSections.contains(where: { $0.title.uppercased() == "ENVIRONMENT" }) {
      out.append(".SH ENVIRONMENT")
      for (variable, option) in variables {
        out.append(".TP")
        out.append(".B \(variable)")
        out.append("Default for \\fB\\-\\-\(option.long)\\fR: " + escape(option.help))
      }
    }
    for section in extraSections {
      out.append(".SH \(section.title.uppercased())")
      for paragraph in section.body {
        let lines = paragraph.split(separator: "\n").map(String.init)
        if lines.allSatisfy({ $0.contains("\t") }) {
          for line in lines {
            let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
            out.append(".TP")
            out.append(".B " + escape(parts[0]))
            out.append(escape(parts[1]))
          }
        } else if lines.first?.hasPrefix(" ") == true {
          out.append(".PP")
          out.append(".nf")
          out += lines.map(escape)
          out.append(".fi")
        } else {
          out += paragraphs(paragraph)
        }
      }
    }
    return out.joined(separator: "\n") + "\n"
  }

  private func environmentVariables() -> [(String, OptionSpec)] {
    var seen = Set<String>()
    var result: [(String, OptionSpec)] = []
    let commands = [root] + root.walk().map(\.command)
    for command in commands {
      for option in command.options where !option.isHidden {
        if let variable = option.environment, seen.insert(variable).inserted {
          result.append((variable, option))
        }
      }
    }
    return result.sorted { $0.0 < $1.0 }
  }

  private func optionItem(_ option: OptionSpec) -> [String] {
    var term = option.short.map { "\\fB\\-\($0)\\fR, " } ?? ""
    term += "\\fB\\-\\-\(option.isNegatable ? "[no\\-]" : "")\(escape(option.long))\\fR"
    if option.takesValue { term += " \\fI\(escape(option.valueName ?? "value"))\\fR" }
    return [".TP", term, escape(HelpRenderer.optionHelp(option))]
  }

  private func paragraphs(_ text: String) -> [String] {
    var out: [String] = []
    for block in text.components(separatedBy: "\n\n") where !block.isEmpty {
      out.append(".PP")
      if block.hasPrefix(" ") {
        out.append(".nf")
        out += block.split(separator: "\n").map { escape(String($0)) }
        out.append(".fi")
      } else {
        out.append(escape(block.replacingOccurrences(of: "\n", with: " ")))
      }
    }
    return out
  }

  private func escape(_ text: String) -> String {
    var result = text.replacingOccurrences(of: "\\", with: "\\e").replacingOccurrences(of: "-", with: "\\-")
    if result.hasPrefix(".") || result.hasPrefix("'") { result = "\\&" + result }
    // groff reads ASCII; other characters go as \[uXXXX] escapes.
    guard result.unicodeScalars.contains(where: { !$0.isASCII }) else { return result }
    return result.unicodeScalars.map { scalar in
      guard !scalar.isASCII else { return String(scalar) }
      let hex = String(scalar.value, radix: 16, uppercase: true)
      return "\\[u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + "]"
    }.joined()
  }
}
