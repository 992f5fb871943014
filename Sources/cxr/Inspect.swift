import ArgumentParser

/// `cxr inspect ...`: dry runs that show what cxr makes of a model, an image or a dataset.
struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show what cxr makes of a model, an image or a dataset.",
    subcommands: [InspectModel.self, InspectImage.self, InspectData.self])
}
