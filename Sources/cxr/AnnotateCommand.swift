import ArgumentParser
import Foundation

#if CXR_NO_ANNOTATE
/// The GPU bundle is built without the annotation web app (Package.swift).
struct AnnotateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "annotate", abstract: "Not in this build (the GPU bundle).")
  func run() throws { throw ValidationError("cxr annotate is not part of the GPU bundle; run it from a development build of cxr") }
}
#else
import Annotate
import Common
import Label
import Logging

struct AnnotateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "annotate",
    abstract: "The human reference standard: sample reports, two readers each, adjudication, export for `cxr agree`.",
    discussion: """
      A project is one SQLite file. `init` samples and assigns reports, `user add` adds people, `serve` runs the \
      web app (loopback by default), `export` writes the file `cxr agree --human` reads, `audit` the audit log.
      """,
    subcommands: [AnnotateInit.self, AnnotateUser.self, AnnotateServe.self, AnnotateExport.self, AnnotateAudit.self])
}

struct AnnotateInit: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "init",
    abstract: "Make a project: sample reports (stratified by a schema's labels) and give each to two annotators.")

  @Argument(help: "The project file to create (never overwritten).") var project: String
  @Option(help: "A CSV with an id and a report text column, or MIMIC-CXR's report folder (files/pXX/pSUBJECT/sSTUDY.txt; ids are study ids, text the impression, else findings, else the last section, as in `cxr label`).")
  var reports: String
  @Option(help: "Id column of the reports CSV.") var idColumn = "id"
  @Option(help: "Report text column of the reports CSV.") var textColumn = "text"
  @Option(help: "Comma-separated findings to annotate.") var findings: String
  @Option(help: "Number of reports to sample.") var sample: Int
  @Option(help: "A schema's label file (id + one column per finding) to stratify the sample by.") var stratifyBy: String?
  @Option(help: "Sampling seed.") var seed: UInt64 = 0
  @Option(help: "Comma-separated annotator names (at least two; each report goes to two of them).") var annotators: String

  func run() throws {
    do {
      let list = findings.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
      guard !list.isEmpty else { throw FileError("--findings is empty; give e.g. --findings Pneumothorax,Fracture") }
      guard Set(list).count == list.count else { throw FileError("--findings names a finding twice: \(findings)") }
      let names = annotators.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
      var isDir: ObjCBool = false
      let rows: [(id: String, text: String)]
      var labelID = idColumn
      if FileManager.default.fileExists(atPath: reports, isDirectory: &isDir), isDir.boolValue {
        // MIMIC-CXR's report tree, read and sectioned exactly as `cxr label` does.
        let set = try ReportSet.mimic(URL(fileURLWithPath: reports))
        rows = set.reports.map { ($0.idColumns.last!, $0.text) }
        labelID = "study_id"
        if set.emptySkipped > 0 { print("note: \(set.emptySkipped) report(s) of \(reports) have no text after section choice and were left out") }
      } else {
        rows = try Sampling.readReports(URL(fileURLWithPath: reports), idColumn: idColumn, textColumn: textColumn)
      }
      let strata = try stratifyBy.map { try Sampling.readStrata(URL(fileURLWithPath: $0), findings: list, idColumn: labelID) }
      let plan = try Sampling.plan(reports: rows, strata: strata, sample: sample, annotators: names, seed: seed,
                                   reportsSource: reports, labelSource: stratifyBy)
      try Project.create(project, plan: plan, findings: list, seed: seed, source: reports)
      print("made \(project): \(plan.reports.count) of \(rows.count) reports, findings \(list.joined(separator: ", ")), seed \(seed)")
      for s in plan.strata { print("  stratum \(s.stratum): \(s.drawn) of \(s.available)") }
      var load: [String: Int] = [:]
      for a in plan.assignments { load[a.annotator, default: 0] += 1 }
      print("  reads: " + names.map { "\($0) \(load[$0] ?? 0)" }.joined(separator: ", "))
      print("next: cxr annotate user add NAME --role annotator|adjudicator|admin \(project)")
    }
  }
}

struct AnnotateUser: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "user", abstract: "Manage the project's users.",
                                                  subcommands: [AnnotateUserAdd.self])
}

extension Project.Role: ExpressibleByArgument {}

struct AnnotateUserAdd: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "add",
    abstract: "Add a user. The password comes from CXR_ANNOTATE_PASSWORD or a prompt; only a bcrypt hash is stored.")

  @Argument(help: "User name (an annotator's name as given to `init --annotators`).") var name: String
  @Option(help: "annotator, adjudicator or admin.") var role: Project.Role
  @Option(help: "The project file.") var project: String
  @Option(help: ArgumentHelp("bcrypt cost, 4 to 15 (default 12; below 10 only for tests).", visibility: .hidden)) var bcryptCost: UInt8 = Project.defaultBcryptCost

  func run() throws {
    do {
      guard (4...15).contains(bcryptCost) else { throw FileError("--bcrypt-cost must be 4...15, got \(bcryptCost)") }
      let p = try Project.open(project)
      defer { try? p.close() }
      let password: String
      if let env = ProcessInfo.processInfo.environment["CXR_ANNOTATE_PASSWORD"] {
        password = env
      } else {
        guard isatty(0) != 0 else {
          throw FileError("no password: set CXR_ANNOTATE_PASSWORD or run `cxr annotate user add` in a terminal to be asked")
        }
        guard let a = getpass("password for \(name): ").map({ String(cString: $0) }),
              let b = getpass("again: ").map({ String(cString: $0) }) else { throw FileError("no password given") }
        guard a == b else { throw FileError("the two passwords differ; run the command again") }
        password = a
      }
      try p.addUser(name: name, role: role, password: password, cost: bcryptCost)
      print("added \(role.rawValue) '\(name)' to \(project)")
      if role == .annotator, try !p.assignedAnnotators.contains(name) {
        FileHandle.standardError.write(Data("note: '\(name)' has no reports assigned (the project's annotators are \(try p.assignedAnnotators.joined(separator: ", ")))\n".utf8))
      }
    }
  }
}

struct AnnotateServe: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve the annotation web app (127.0.0.1 unless --host says otherwise); SIGTERM or Ctrl-C stops it cleanly.")

  @Argument(help: "The project file.") var project: String
  @Option(help: "Address to bind; anything but loopback exposes patient reports to the network.") var host = "127.0.0.1"
  @Option(help: "Port (0: any free port, printed at start).") var port = 8080
  @Option(help: "PEM certificate chain for HTTPS.") var tlsCert: String?
  @Option(help: "PEM private key for HTTPS.") var tlsKey: String?
  @Option(help: "Minutes a sign-in lasts.") var sessionMinutes: Double = 480
  @Option(help: "Failed sign-ins per name or address in 5 minutes before they are refused.") var loginLimit = 5
  @Option(help: "Bootstrap rounds for the agreement CIs on the adjudication page.") var bootstrap = 1000
  @Option(help: "Log level: info (default; one line per request, never report text), debug, warning, error.") var logLevel = "info"

  func run() throws {
    do {
      guard (tlsCert == nil) == (tlsKey == nil) else { throw FileError("give both --tls-cert and --tls-key, or neither") }
      guard sessionMinutes > 0 else { throw FileError("--session-minutes must be positive, got \(sessionMinutes)") }
      guard let level = Logger.Level(rawValue: logLevel) else {
        throw FileError("--log-level must be one of trace, debug, info, notice, warning, error, critical; got '\(logLevel)'")
      }
      var options = ServeOptions()
      options.host = host; options.port = port; options.tlsCert = tlsCert; options.tlsKey = tlsKey
      options.sessionLifetime = sessionMinutes * 60; options.loginLimit = loginLimit; options.rounds = bootstrap
      options.logLevel = level
      let p = try Project.open(project)
      if !options.isLoopback && !options.tls {
        FileHandle.standardError.write(Data("warning: serving on \(host) without --tls-cert/--tls-key: passwords and patient reports cross the network unencrypted\n".utf8))
      }
      let scheme = options.tls ? "https" : "http"
      let done = DispatchSemaphore(value: 0)
      let failure = LockedBox<Error?>(nil)
      let path = project, host = host
      Task {
        do {
          try await AnnotateServer.serve(p, options: options) { port in
            FileHandle.standardError.write(Data("cxr annotate: serving \(path) on \(scheme)://\(host):\(port)/ (SIGTERM or Ctrl-C stops)\n".utf8))
          }
        } catch { failure.set(error) }
        done.signal()
      }
      done.wait()
      try? p.close()
      if let e = failure.get() {
        if let f = e as? FileError { throw f }
        throw FileError("cxr annotate serve on \(host):\(port) failed: \(e)")
      }
      FileHandle.standardError.write(Data("cxr annotate: stopped; \(project) closed\n".utf8))
    }
  }
}

final class LockedBox<T>: @unchecked Sendable {
  private var value: T
  private let lock = NSLock()
  init(_ v: T) { value = v }
  func set(_ v: T) { lock.lock(); value = v; lock.unlock() }
  func get() -> T { lock.lock(); defer { lock.unlock() }; return value }
}

struct AnnotateExport: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write the human reading as `cxr agree --human` reads it (readers' columns, final column, equivocal marked).",
    discussion: "Use with: cxr agree --human OUT --annotators {finding}_r1,{finding}_r2 --schema NAME=labels.csv --out DIR")

  @Argument(help: "The project file.") var project: String
  @Option(help: "The CSV to write (an existing file is replaced only if it is an unchanged earlier export).") var out: String

  func run() throws {
    do {
      let p = try Project.open(project)
      defer { try? p.close() }
      let (text, s) = try p.humanCSV()
      try p.writeExport(text, to: URL(fileURLWithPath: out), kind: "human")
      print("wrote \(s.rows) reports to \(out)")
      for f in try p.findings {
        print("  \(f): \(s.consensus[f]!) agreed, \(s.adjudicated[f]!) adjudicated, \(s.equivocal[f]!) equivocal, \(s.pending[f]!) open (blank)")
      }
    }
  }
}

struct AnnotateAudit: ParsableCommand {
  static let configuration = CommandConfiguration(commandName: "audit", abstract: "Export the audit log (who changed what, when, old -> new) as CSV.")

  @Argument(help: "The project file.") var project: String
  @Option(help: "The CSV to write (an existing file is replaced only if it is an unchanged earlier export).") var out: String

  func run() throws {
    do {
      let p = try Project.open(project)
      defer { try? p.close() }
      let text = try p.auditCSV()
      try p.writeExport(text, to: URL(fileURLWithPath: out), kind: "audit")
      print("wrote \(text.split(separator: "\n").count - 1) audit rows to \(out)")
    }
  }
}
#endif
