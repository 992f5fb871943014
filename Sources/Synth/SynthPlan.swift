import Common
import Data
import Foundation

/// How big a synthetic study is.
public enum SynthSize: String, CaseIterable, Sendable {
  /// For tests: a few dozen small images.
  case tiny
  /// For the demo: about a thousand training images (~770 frontal), 240 test images.
  case small
  /// A few thousand training images.
  case medium

  var subjects: Int { switch self { case .tiny: return 10; case .small: return 300; case .medium: return 1100 } }
  var studiesPerSubject: ClosedRange<Int> { self == .tiny ? 1...2 : 1...4 }
  var trainWidth: Int { switch self { case .tiny: return 48; case .small: return 128; case .medium: return 256 } }
  var trainHeights: ClosedRange<Int> {
    switch self { case .tiny: return 48...56; case .small: return 128...160; case .medium: return 256...300 }
  }
  var testImages: Int { switch self { case .tiny: return 16; case .small: return 240; case .medium: return 800 } }
  var testSide: Int { switch self { case .tiny: return 48; case .small: return 160; case .medium: return 256 } }
}

/// One MIMIC-CXR-JPG-like image.
struct MimicImagePlan {
  var dicomID: String
  /// PA, AP, LATERAL or blank (as in the real metadata).
  var view: String
  var spec: ImageSpec
}

/// One MIMIC-CXR-JPG-like study (one report, so one row per label file).
struct MimicStudyPlan {
  var subjectID: Int
  var studyID: Int
  var date: String
  var time: String
  var truth: ReportTruth
  var images: [MimicImagePlan]
}

/// How a CANDID-PTX-like DICOM stores its pixels.
struct DicomVariant: Equatable {
  var bitsAllocated: Int
  var bitsStored: Int
  var photometric: DicomImage.Photometric
  var slope: Double
  var intercept: Double
  /// Stored value = round(low + span * detector response) (inverted for MONOCHROME1).
  var low: Double
  var span: Double

  static let all: [(variant: DicomVariant, weight: Double)] = [
    (DicomVariant(bitsAllocated: 16, bitsStored: 12, photometric: .monochrome2, slope: 1, intercept: 0, low: 300, span: 3000), 0.45),
    (DicomVariant(bitsAllocated: 16, bitsStored: 16, photometric: .monochrome2, slope: 0.5, intercept: -1024, low: 4000, span: 50000), 0.15),
    (DicomVariant(bitsAllocated: 16, bitsStored: 12, photometric: .monochrome1, slope: 1, intercept: 0, low: 300, span: 3000), 0.15),
    (DicomVariant(bitsAllocated: 16, bitsStored: 14, photometric: .monochrome1, slope: 2, intercept: -100, low: 1000, span: 12000), 0.15),
    (DicomVariant(bitsAllocated: 8, bitsStored: 8, photometric: .monochrome2, slope: 1, intercept: 0, low: 10, span: 220), 0.10),
  ]

  /// Stored values for rendered intensities: a detector-like curve (so the file is not
  /// equalized), scaled into this variant's range, inverted for MONOCHROME1.
  func stored(_ pixels: [Float]) -> [UInt16] {
    let maxStored = Double((1 << bitsStored) - 1)
    return pixels.map { p in
      let v = min(max(low + span * pow(Double(p), 0.8), 0), maxStored).rounded()
      return UInt16(photometric == .monochrome1 ? maxStored - v : v)
    }
  }
}

/// One CANDID-PTX-like image (its own report).
struct CandidImagePlan {
  var patient: Int
  var studyUID: String
  var seriesUID: String
  var sopUID: String
  var filename: String
  var view: String
  var variant: DicomVariant
  var truth: ReportTruth
  var report: String
  var spec: ImageSpec
}

/// Everything a study will hold, decided before any pixel is drawn.
struct SynthPlan {
  var seed: UInt64
  var size: SynthSize
  var mimic: [MimicStudyPlan]
  var candid: [CandidImagePlan]

  static let pneumothoraxPrevalence = 0.3
  static let fracturePrevalence = 0.3
  /// Chest tubes as real data has them: mostly with (treated) pneumothoraces, rarely without,
  /// in the training and test sets alike, so a classifier can learn the tube as a shortcut.
  /// Large pneumothoraces are drained and small ones mostly watched, so the chance of a tube
  /// falls with the size, linearly from `chestTubeWithLargest` at the largest drawn to
  /// `chestTubeWithSmallest` at the smallest (on average `chestTubeWithPneumothorax`): the
  /// pneumothoraces without a tube are the subtle ones, where a tube-led classifier fails.
  static let chestTubeWithLargest = 0.85
  static let chestTubeWithSmallest = 0.15
  static let chestTubeWithPneumothorax = (chestTubeWithLargest + chestTubeWithSmallest) / 2
  static let chestTubeWithoutPneumothorax = 0.03

  /// The chance that a pneumothorax of this size has a chest tube (see `chestTubeWithLargest`).
  static func chestTubeChance(_ p: PneumothoraxSign) -> Double {
    let sizes = PneumothoraxSign.collapseRange
    let smallness = (p.collapse - sizes.lowerBound) / (sizes.upperBound - sizes.lowerBound)
    return chestTubeWithLargest + (chestTubeWithSmallest - chestTubeWithLargest) * smallness
  }

  /// The test set's View Position as real data has it: mostly PA; AP (portable films) for a
  /// share, more often for treated patients (a chest tube) and pneumothoraces; absent from a few
  /// headers. So the evaluation's view-position subgroups mix the tube shortcut in, as they would.
  static let apShare = 0.15
  static let apShareWithPneumothorax = 0.4
  static let apShareWithChestTube = 0.7
  static let absentViewShare = 0.02

  /// Image `index`'s view, from a stream of its own ("candid-view"), so drawing it changes no
  /// other draw of the plan: a seed's images and labels stay what they were. "" means absent.
  static func candidView(seed: UInt64, index: Int, truth: ReportTruth) -> String {
    var rng = SplitMix64(seed: seed, stream: "candid-view", index: index)
    if rng.chance(absentViewShare) { return "" }
    let ap = truth.chestTube != nil ? apShareWithChestTube : truth.pneumothorax != nil ? apShareWithPneumothorax : apShare
    return rng.chance(ap) ? "AP" : "PA"
  }

  init(seed: UInt64, size: SynthSize) {
    self.seed = seed
    self.size = size
    mimic = SynthPlan.planMimic(seed: seed, size: size)
    candid = SynthPlan.planCandid(seed: seed, size: size)
  }

  static func drawTruth(_ rng: inout SplitMix64) -> ReportTruth {
    var ptx: PneumothoraxSign?
    if rng.chance(pneumothoraxPrevalence) {
      let sizes = PneumothoraxSign.collapseRange
      ptx = PneumothoraxSign(side: rng.int(0...1), collapse: rng.uniform(sizes.lowerBound, sizes.upperBound))
    }
    var fracture: FractureSign?
    if rng.chance(fracturePrevalence) {
      let u = rng.uniform()
      // Breaks lined up over 2-4 neighbouring ribs, the lateral fragments dropped by about half
      // a rib spacing: a sign that a from-scratch ConvNeXt learns at 64 px from several hundred
      // images (single-rib breaks with a small step were not learned at all, AUROC ~0.5).
      let halfSpacing = ChestRenderer.ribSpacing / 2 / ChestRenderer.ribHalfThickness
      fracture = FractureSign(side: rng.int(0...1), firstRib: rng.int(1...3), ribs: u < FractureSign.twoRibShare ? 2 : u < 0.8 ? 3 : 4,
                              position: rng.uniform(0.2, 0.32), gap: rng.uniform(0.07, 0.09),
                              displacement: rng.uniform(1.0, 1.15) * halfSpacing)
    }
    var tube: ChestTubeSign?
    if rng.chance(ptx.map(chestTubeChance) ?? chestTubeWithoutPneumothorax) {
      var side = 0
      if let p = ptx { side = p.side } else { side = rng.int(0...1) }
      tube = ChestTubeSign(side: side, entry: rng.uniform(0.25, 0.5), tip: rng.uniform(0.6, 0.8))
    }
    var present = Set<String>(), negated = Set<String>()
    for (name, prevalence) in SynthFindings.labelOnly {
      // A chest tube is a support device; other devices (lines, pacemakers) are not drawn.
      if name == "Support Devices", tube != nil { present.insert(name); continue }
      if rng.chance(prevalence) { present.insert(name) } else if rng.chance(0.15) { negated.insert(name) }
    }
    if ptx == nil, rng.chance(0.7) { negated.insert("Pneumothorax") }
    if fracture == nil, rng.chance(0.25) { negated.insert("Fracture") }
    return ReportTruth(pneumothorax: ptx, fracture: fracture, chestTube: tube, present: present, negated: negated)
  }

  static func hex(_ rng: inout SplitMix64, digits: Int) -> String {
    (0..<digits).map { _ in String(rng.int(0...15), radix: 16) }.joined()
  }

  static func planMimic(seed: UInt64, size: SynthSize) -> [MimicStudyPlan] {
    var rng = SplitMix64(seed: seed, stream: "mimic-plan")
    var studies: [MimicStudyPlan] = []
    var usedStudyIDs = Set<Int>()
    var subject = 10_000_000 + rng.int(0...999)
    let step = max(1, 8_000_000 / size.subjects)
    var imageIndex = 0
    for _ in 0..<size.subjects {
      subject += rng.int(1...step)
      var day = rng.int(0...(365 * 70))
      for _ in 0..<rng.int(size.studiesPerSubject) {
        var studyID: Int
        repeat { studyID = rng.int(50_000_000...59_999_999) } while !usedStudyIDs.insert(studyID).inserted
        day += rng.int(1...400)
        let date = String(format: "%04d%02d%02d", 2110 + day / 336, 1 + (day % 336) / 28, 1 + day % 28)
        let time = String(format: "%02d%02d%02d.%03d", rng.int(0...23), rng.int(0...59), rng.int(0...59), rng.int(0...999))
        let truth = drawTruth(&rng)
        let portable = rng.chance(0.4)
        var views = [portable ? "AP" : "PA"]
        if rng.chance(0.08) { views.append(portable ? "PA" : "AP") }
        if rng.chance(portable ? 0.15 : 0.55) { views.append("LATERAL") }
        if rng.chance(0.03) { views.append("") }
        var images: [MimicImagePlan] = []
        for view in views {
          let dicomID = (0..<5).map { _ in hex(&rng, digits: 8) }.joined(separator: "-")
          let height = rng.int(size.trainHeights)
          let spec = ImageSpec(width: size.trainWidth, height: height, lateral: view == "LATERAL",
                               pneumothorax: truth.pneumothorax, fracture: truth.fracture,
                               chestTube: view == "LATERAL" ? nil : truth.chestTube,
                               seed: SplitMix64.derive(seed, "mimic-image", imageIndex))
          imageIndex += 1
          images.append(MimicImagePlan(dicomID: dicomID, view: view, spec: spec))
        }
        studies.append(MimicStudyPlan(subjectID: subject, studyID: studyID, date: date, time: time,
                                      truth: truth, images: images))
      }
    }
    return studies
  }

  static func planCandid(seed: UInt64, size: SynthSize) -> [CandidImagePlan] {
    var rng = SplitMix64(seed: seed, stream: "candid-plan")
    var images: [CandidImagePlan] = []
    var usedPatients = Set<Int>()
    let totalWeight = DicomVariant.all.reduce(0) { $0 + $1.weight }
    while images.count < size.testImages {
      var patient: Int
      repeat { patient = rng.int(10_000...99_999) } while !usedPatients.insert(patient).inserted
      for k in 0..<rng.int(1...2) where images.count < size.testImages {
        let truth = drawTruth(&rng)
        var pick = rng.uniform() * totalWeight
        var variant = DicomVariant.all[0].variant
        for (v, w) in DicomVariant.all {
          if pick < w { variant = v; break }
          pick -= w
        }
        // This draw once chose the view; it stays, unused, so that every later draw of the plan
        // stream (UIDs, reports, variants) is what it was for a seed. The view has its own stream.
        _ = rng.uniform()
        let view = candidView(seed: seed, index: images.count, truth: truth)
        let spec = ImageSpec(width: size.testSide, height: size.testSide, lateral: false,
                             pneumothorax: truth.pneumothorax, fracture: truth.fracture, chestTube: truth.chestTube,
                             seed: SplitMix64.derive(seed, "candid-image", images.count))
        images.append(CandidImagePlan(
          patient: patient, studyUID: SynthEncoding.uid(&rng), seriesUID: SynthEncoding.uid(&rng),
          sopUID: SynthEncoding.uid(&rng), filename: "P\(patient)_\(k + 1)_synthetic.dcm", view: view,
          variant: variant, truth: truth, report: SynthReport.text(truth, rng: &rng), spec: spec))
      }
    }
    return images
  }
}

/// Short report texts that agree with the truth, as a radiologist might dictate them.
enum SynthReport {
  static func sideName(_ side: Int) -> String { side == 0 ? "right" : "left" }  // image left = patient right

  static func ordinal(_ n: Int) -> String {
    let suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th" : n % 10 == 1 ? "st" : n % 10 == 2 ? "nd" : n % 10 == 3 ? "rd" : "th"
    return "\(n)\(suffix)"
  }

  static func sentenceCase(_ name: String) -> String { name.prefix(1) + name.dropFirst().lowercased() }

  static func text(_ truth: ReportTruth, rng: inout SplitMix64) -> String {
    var findings: [String] = []
    var impression: [String] = []
    if let p = truth.pneumothorax {
      let extent = p.isSubtle ? "small" : p.collapse > 0.62 ? "moderate" : "large"
      findings.append("There is a \(extent) \(sideName(p.side)) apical pneumothorax with a visible pleural line.")
      impression.append("\(extent.capitalized) \(sideName(p.side)) pneumothorax.")
    } else if truth.negated.contains("Pneumothorax") {
      findings.append("No pneumothorax.")
    }
    if let f = truth.fracture {
      let ribs = (0..<f.ribs).map { ordinal(f.firstRib + 4 + $0) }
      let list = ribs.count == 1 ? ribs[0] : ribs.dropLast().joined(separator: ", ") + " and " + ribs.last!
      findings.append(f.isSubtle
        ? "Minimally displaced fractures of the \(sideName(f.side)) \(list) ribs."
        : "Acute displaced fractures of the \(sideName(f.side)) \(list) ribs.")
      impression.append(f.isSubtle ? "\(sideName(f.side).capitalized) \(list) rib fractures." : "Acute \(sideName(f.side)) rib fractures.")
    } else if truth.negated.contains("Fracture") {
      findings.append("No acute rib fracture.")
    }
    for (name, _) in SynthFindings.labelOnly {
      if truth.present.contains(name) {
        if name == "Support Devices", let tube = truth.chestTube {
          findings.append("A \(sideName(tube.side)) chest tube is in place, its tip at the apex.")
          continue
        }
        findings.append(name == "Support Devices" ? "Support devices in place." : name == "Pleural Other" ? "Pleural thickening is present." : "\(sentenceCase(name)) is present.")
      } else if truth.negated.contains(name) {
        findings.append(name == "Pleural Other" ? "No other pleural abnormality." : "No \(name.lowercased()).")
      }
    }
    if findings.isEmpty { findings.append("The lungs are clear.") }
    if impression.isEmpty { impression.append(rng.chance(0.5) ? "No acute cardiopulmonary process." : "No acute findings.") }
    return "SYNTHETIC REPORT (cxr synth; not a patient). FINDINGS: " + findings.joined(separator: " ") +
      " IMPRESSION: " + impression.joined(separator: " ")
  }
}
