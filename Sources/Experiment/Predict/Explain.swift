import Common
import Data
import Foundation
import Models
import Torch

/// Grad-CAM files for images (`cxr explain`, and the study's `explain:<schema>` stage): each image
/// is decoded and preprocessed exactly as `cxr predict` does (the checkpoint's size and
/// equalization, scaled to [-1, 1]), the map is `GradCAM`'s (float32, no autocast), and per
/// finding three files are written:
///
/// - `<stem>.overlay.png`: the preprocessed grey image with the normalized map blended in
///   viridis (colour-blind safe; dark = low, yellow = high), RGB, the model input's size;
/// - `<stem>.cam.png`: the normalized upsampled map as 16-bit grey (value / 65535);
/// - `<stem>.json`: what made it (`Record`).
///
/// Nothing is overwritten: when any file to be written exists, nothing is written and the error
/// names it. Each file is written atomically (temp file + rename).
public struct Explain {
  public var preprocess: PreprocessSettings
  public var device: Device = .cpu
  /// Weight of the colour map in the overlay (0: the grey image only).
  public var alpha: Float = 0.45

  public init(preprocess: PreprocessSettings) { self.preprocess = preprocess }

  /// What one overlay shows, in `<stem>.json`.
  public struct Record: Codable, Equatable, Sendable {
    public var tool = "cxr explain"
    public var method = "Grad-CAM: relu(sum_c mean_ij(d logit / d A_c) * A_c) at the layer, bilinear (align_corners=False) to the input, normalized (x - min) / (max - min)"
    public var weights: String
    public var weightsSHA256: String
    public var image: String
    public var imageID: String
    public var finding: String
    public var probability: Double
    public var logit: Double
    public var layer: String
    public var inputSize: Int
    public var equalize: Bool
    /// The map at the layer's resolution (row-major, camHeight x camWidth), before scaling.
    public var camHeight: Int
    public var camWidth: Int
    public var cam: [Float]
    /// Smallest and largest values of the upsampled map: the 16-bit PNG holds
    /// (map - cam_min) / (cam_max - cam_min) * 65535 (all 0 when they are equal).
    public var camMin: Float
    public var camMax: Float
    /// Where the upsampled map peaks, in the model input's pixels ([x, y]); nil when flat.
    public var peak: [Int]?
    public var overlay: String
    public var camPNG: String
    public var device: String

    enum CodingKeys: String, CodingKey {
      case tool, method, weights, weightsSHA256 = "weights_sha256", image, imageID = "image_id", finding, probability, logit, layer
      case inputSize = "input_size", equalize, camHeight = "cam_height", camWidth = "cam_width", cam, camMin = "cam_min"
      case camMax = "cam_max", peak, overlay, camPNG = "cam_png", device
    }
  }

  /// The preprocessed image in [0, 255] (size x size, what the model sees before scaling) and the
  /// model input [1, 1, size, size] in [-1, 1].
  public func input(_ url: URL) throws -> (pixels: [Float], tensor: Tensor) {
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw FileError("\(url.path) does not exist; give a JPEG, PNG or DICOM file")
    }
    let pixels: [Float]
    do {
      pixels = Preprocess.apply(try ImageDecoder.load(url, targetLongestSide: preprocess.size), preprocess)
    } catch let e as ImageError {
      throw FileError("\(url.path) cannot be read as an image: \(e.reason); give a JPEG, PNG or DICOM file")
    }
    var scaled = [Float](repeating: 0, count: pixels.count)
    pixels.withUnsafeBufferPointer { p in scaled.withUnsafeMutableBufferPointer { Preprocess.scaleToModelRange(p, into: $0) } }
    let t = try scaled.withUnsafeBytes { try Tensor(bytes: $0, shape: [1, 1, preprocess.size, preprocess.size], dtype: .float32) }
    return (pixels, t)
  }

  /// A file name part for a finding or id: letters, digits, `.`, `-`, `_` kept, others `_`.
  public static func fileSafe(_ s: String) -> String {
    String(s.map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" })
  }

  /// Maps of `image` for `findings` (indices into `loaded.findings`) with `model` already on
  /// `device`; writes `<out>/<stem(finding)>.{overlay.png,cam.png,json}` and returns the records.
  public func run(_ loaded: LoadedModel, weights: URL, weightsSHA256: String, image: URL, id: String, findings: [Int],
                  out: URL, stem: (String) -> String) throws -> [Record] {
    let names = findings.map { stem(loaded.findings[$0]) }
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: out.path, isDirectory: &isDir), !isDir.boolValue {
      throw FileError("\(out.path) is a file; give a folder for the Grad-CAM files (nothing was written)")
    }
    for n in names {
      for suffix in [".overlay.png", ".cam.png", ".json"] {
        let u = out.appendingPathComponent(n + suffix)
        if fm.fileExists(atPath: u.path) {
          throw FileError("\(u.path) already exists; cxr explain never overwrites its outputs: choose another --out or move the old files away (nothing was written)")
        }
      }
    }
    let (pixels, x) = try input(image)
    let maps = try GradCAM(model: loaded.model).maps(x, findings: findings)[0]
    try fm.createDirectory(at: out, withIntermediateDirectories: true)
    var records: [Record] = []
    for (map, name) in zip(maps, names) {
      let size = preprocess.size
      let overlay = out.appendingPathComponent(name + ".overlay.png"), camPNG = out.appendingPathComponent(name + ".cam.png")
      try Self.atomically(overlay) { try PNGCodec.writeRGB8(Self.overlay(gray: pixels, map: map.normalized, alpha: alpha), width: size, height: size, to: $0) }
      try Self.atomically(camPNG) {
        try PNGCodec.writeGray16(map.normalized.map { UInt16(($0 * 65535).rounded()) }, width: size, height: size, to: $0)
      }
      let record = Record(weights: weights.path, weightsSHA256: weightsSHA256, image: image.path, imageID: id,
                          finding: loaded.findings[map.finding], probability: map.probability, logit: map.logit, layer: GradCAM.layer,
                          inputSize: size, equalize: preprocess.equalize, camHeight: map.height, camWidth: map.width, cam: map.raw,
                          camMin: map.upsampled.min() ?? 0, camMax: map.upsampled.max() ?? 0, peak: map.peak.map { [$0.x, $0.y] },
                          overlay: overlay.lastPathComponent, camPNG: camPNG.lastPathComponent, device: device.description)
      let enc = JSONEncoder()
      enc.outputFormatting = [.prettyPrinted, .sortedKeys]
      try AtomicFile.write(try enc.encode(record), to: out.appendingPathComponent(name + ".json"))
      records.append(record)
    }
    return records
  }

  /// Writes through `body` to a temp file beside `url`, then renames it into place.
  static func atomically(_ url: URL, _ body: (URL) throws -> Void) throws {
    let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
    do {
      try body(tmp)
      guard rename(tmp.path, url.path) == 0 else {
        throw FileError("cannot rename \(tmp.path) to \(url.path): \(String(cString: strerror(errno)))")
      }
    } catch {
      try? FileManager.default.removeItem(at: tmp)
      throw error
    }
  }

  /// RGB bytes: (1 - alpha * m) * grey + alpha * m * viridis(m) per pixel, m the normalized map,
  /// so that where the map is ~0 the image shows unchanged.
  public static func overlay(gray: [Float], map: [Float], alpha: Float) -> [UInt8] {
    precondition(gray.count == map.count)
    var out = [UInt8](repeating: 0, count: 3 * gray.count)
    for i in 0..<gray.count {
      let m = max(0, min(1, map[i])), g = max(0, min(255, gray[i]))
      let c = viridis(m), a = alpha * (0.25 + 0.75 * m)
      out[3 * i] = UInt8((1 - a) * g + a * c.0 * 255 + 0.5)
      out[3 * i + 1] = UInt8((1 - a) * g + a * c.1 * 255 + 0.5)
      out[3 * i + 2] = UInt8((1 - a) * g + a * c.2 * 255 + 0.5)
    }
    return out
  }

  /// matplotlib's viridis (a perceptually uniform, colour-blind-safe map) as the degree-6
  /// polynomial fit of Matt Zucker's (public domain), within about 1 % of the table; t in [0, 1].
  public static func viridis(_ t: Float) -> (Float, Float, Float) {
    let c: [(Float, Float, Float)] = [
      (0.2777273272234177, 0.005407344544966578, 0.3340998053353061),
      (0.1050930431085774, 1.404613529898575, 1.384590162594685),
      (-0.3308618287255563, 0.214847559468213, 0.09509516302823659),
      (-4.634230498983486, -5.799100973351585, -19.33244095627987),
      (6.228269936347081, 14.17993336680509, 56.69055260068105),
      (4.776384997670288, -13.74514537774601, -65.35303263337234),
      (-5.435455855934631, 4.645852612178535, 26.3124352495832),
    ]
    var r: Float = 0, g: Float = 0, b: Float = 0
    for k in stride(from: 6, through: 0, by: -1) { r = r * t + c[k].0; g = g * t + c[k].1; b = b * t + c[k].2 }
    return (max(0, min(1, r)), max(0, min(1, g)), max(0, min(1, b)))
  }
}
