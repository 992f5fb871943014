import ArgumentParser
import Experiment
import Foundation

struct ConfigCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "config", abstract: "Show the documented defaults, or check and resolve a config file.",
    subcommands: [ConfigDefaults.self, ConfigResolve.self])
}

struct ConfigDefaults: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "defaults", abstract: "Print every config key with its default and meaning.")
  func run() throws { print(Config.documentedDefaults) }
}

struct ConfigResolve: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "resolve", abstract: "Validate CONFIG (defaults <- file <- --set) and print the resolved YAML.")
  @Argument(help: "The study config (YAML).") var config: String
  @Option(name: .customLong("set"), help: "Override a key: key.path=value (repeatable).") var overrides: [String] = []
  @Flag(help: "Also run `cxr run`'s preflight: every path, name, label file, the pretrained file and the test set.")
  var check = false
  func run() throws {
    let c = try Config.load(URL(fileURLWithPath: config), overrides: overrides)
    if check {
      let study = try Study(c)
      try StudyRun(study: study).preflight()
    }
    print(c.resolvedYAML(), terminator: "")
  }
}
