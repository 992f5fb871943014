import ArgumentParser
import Data
import Foundation

struct InspectImage: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "image",
    abstract: "Preprocess one image as training does, write it as an 8-bit PNG and print statistics.")
  @Argument(help: "A JPEG, PNG or DICOM file.") var file: String
  @Option(help: "Side of the square model input.") var size = 512
  @Flag(help: "Histogram-equalize (for sources not equalized already, e.g. CANDID-PTX DICOMs).") var equalize = false
  @Option(help: "Where to write the PNG of what the model sees.") var out: String

  func validate() throws {
    guard size > 0 else { throw ValidationError("--size must be positive (got \(size))") }
  }

  func run() throws {
    let url = URL(fileURLWithPath: file)
    let settings = PreprocessSettings(size: size, equalize: equalize)
    let src = try ImageDecoder.load(url, targetLongestSide: size)
    let pre = Preprocess.apply(src, settings)
    let eight = Preprocess.toUInt8(pre)
    try PNGCodec.writeGray8(eight, width: size, height: size, to: URL(fileURLWithPath: out))
    let model = pre.map { Double($0) / 255 * 2 - 1 }
    let n = Double(model.count)
    let mean = model.reduce(0, +) / n
    let std = (model.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n).squareRoot()
    let resized = Preprocess.resizedSize(width: src.originalWidth, height: src.originalHeight, longest: size)
    print("file: \(url.path)")
    print("format: \(src.format.rawValue) (\(src.notes.joined(separator: ", ")))")
    print("original size: \(src.originalWidth)x\(src.originalHeight)")
    print("decoded size: \(src.pixels.width)x\(src.pixels.height)")
    print("resized to: \(resized.width)x\(resized.height), padded to \(size)x\(size)")
    print("equalized: \(equalize ? "yes" : "no")")
    print(String(format: "model input [-1, 1]: min %.4f max %.4f mean %.4f std %.4f", model.min() ?? 0, model.max() ?? 0, mean, std))
    print("written: \(out) (8-bit, (x + 1) / 2 * 255)")
  }
}
