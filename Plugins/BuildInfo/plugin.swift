import Foundation
import PackagePlugin

/// Writes `BuildInfo.swift` (the cxr version from `git describe`) before every build, so every
/// checkpoint, prediction file and report can say which code made it. The script rewrites the
/// file only when the version changed, so an unchanged tree recompiles nothing.
@main
struct BuildInfoPlugin: BuildToolPlugin {
  func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
    let out = context.pluginWorkDirectoryURL.appending(path: "generated")
    let script = context.package.directoryURL.appending(path: "scripts/build-info.sh")
    return [.prebuildCommand(displayName: "cxr version from git",
                             executable: URL(fileURLWithPath: "/bin/sh"),
                             arguments: [script.path, context.package.directoryURL.path, out.path],
                             outputFilesDirectory: out)]
  }
}
