import Foundation

/// README.txt at the root of a synthetic study: what it is, where things are, and each
/// schema's error rates, both chosen and as measured in this very study.
enum SynthReadme {
  static func pct(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }

  static func text(plan: SynthPlan, measured: [String: [String: MeasuredRates]], mimicImages: Int) -> String {
    let frontal = plan.mimic.reduce(0) { $0 + $1.images.filter { $0.view == "PA" || $0.view == "AP" }.count }
    let subjects = Set(plan.mimic.map(\.subjectID)).count
    let ptxTrain = plan.mimic.filter { $0.truth.pneumothorax != nil }.count
    let fxTrain = plan.mimic.filter { $0.truth.fracture != nil }.count
    let ptxTest = plan.candid.filter { $0.truth.pneumothorax != nil }.count
    let fxTest = plan.candid.filter { $0.truth.fracture != nil }.count
    let tubeTrain = plan.mimic.filter { $0.truth.chestTube != nil }.count
    let tubeTest = plan.candid.filter { $0.truth.chestTube != nil }.count
    let viewsTest = Dictionary(grouping: plan.candid, by: \.view).mapValues(\.count)
    var s = SyntheticStudy.marker + "\n\n"
    s += """
    Seed \(plan.seed), size \(plan.size.rawValue). Made by `cxr synth`; the same seed and size give
    byte-identical files. Nothing here comes from a patient: images are drawn by a program,
    reports and labels are generated from what was drawn.

    LAYOUT
      mimic/      MIMIC-CXR-JPG-like training set: files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg
                  (8-bit grayscale JPEG, min-max scaled and histogram-equalized like
                  MIMIC-CXR-JPG, quality 95, COM marker "SYNTHETIC ...") and
                  mimic-cxr-2.0.0-metadata.csv.gz (the real columns; ViewPosition PA, AP,
                  LATERAL or blank). \(subjects) patients, \(plan.mimic.count) studies, \(mimicImages) images
                  (\(frontal) frontal). Studies with pneumothorax: \(ptxTrain); with fracture: \(fxTrain);
                  with a chest tube: \(tubeTrain).
      candid/     CANDID-PTX-like test set: dataset/<SOPInstanceUID>.dcm (DICOM Part 10, CR,
                  Explicit VR Little Endian, not equalized; MONOCHROME2 and MONOCHROME1,
                  8- and 16-bit, some with RescaleSlope/Intercept other than 1/0; ImageComments
                  "SYNTHETIC ..."), Pneumothorax_reports.csv (SOPInstanceUID, StudyInstanceUID,
                  filename P<patient>_..., EncodedPixels, Report), acute_rib_fracture.csv
                  and chest_tube.csv (anon_SOPUID, annotation_id, mask_rle; positive images
                  only). \(plan.candid.count) images, \(ptxTest) with pneumothorax, \(fxTest) with fracture,
                  \(tubeTest) with a chest tube. ViewPosition (0018,5101): \(viewsTest["PA", default: 0]) PA, \(viewsTest["AP", default: 0]) AP,
                  \(viewsTest["", default: 0]) absent (drawn for \(pct(SynthPlan.absentViewShare))); AP for \(pct(SynthPlan.apShareWithChestTube)) of images with a chest tube
                  (portable films of treated patients), \(pct(SynthPlan.apShareWithPneumothorax)) of other pneumothoraces, \(pct(SynthPlan.apShare)) of the rest.
                  Masks: SIIM RLE, pairs (gap, length), gaps counted from the end of the previous
                  run (the first from pixel 0), pixels numbered column-major; -1 = no mask.
      labels/mimic/synthetic-<schema>.csv   labels of the training studies
      labels/candid/synthetic-<schema>.csv  the same labellers applied to the test reports
      labels/mimic/labeller-rates.csv       each labeller's sensitivity and specificity on the
                                            training reports (U-ones, blank = negative): what
                                            cxr labels compare estimates without the truth

    IMAGES
      Frontal images show lungs with markings, mediastinum, heart, spine and ribs, plus noise.
      Pneumothorax: one lung collapsed toward the hilum, leaving a crescent of air with no lung
      markings under the chest wall, widest at the apex, edged by a thin bright pleural line.
      Fracture: 2 to 4 consecutive rib bands broken at about the same place, with a gap and the
      lateral fragments dropped by about half a rib spacing. Chest tube: a thin bright tube that
      enters through the lateral chest wall low on one side and curves up to the apex, with
      side holes near its tip; drawn with \(pct(SynthPlan.chestTubeWithPneumothorax)) of pneumothoraces (on their side: treated
      ones; \(pct(SynthPlan.chestTubeWithLargest)) of the largest, falling with the size to \(pct(SynthPlan.chestTubeWithSmallest)) of the
      smallest, which are watched) and \(pct(SynthPlan.chestTubeWithoutPneumothorax)) of other images, in both sets, so a classifier can learn the tube
      as a shortcut (the evaluation's chest tube subgroups show it); reports mention it and
      label it Support Devices. Image left = the patient's right. The masks cover the
      air crescent, boxes around the breaks and the tube. Lateral images carry no sign. Only
      these findings are drawn; the other CheXpert findings exist in the labels only.
      Prevalence per report: pneumothorax \(pct(SynthPlan.pneumothoraxPrevalence)), fracture \(pct(SynthPlan.fracturePrevalence)).

    LABEL FILES
      CheXpert format: subject_id, study_id, then the 14 findings; 1.0 positive, 0.0
      negative, -1.0 uncertain, blank not mentioned. For candid/ files subject_id is the
      patient number of the file name (P<patient>_) and study_id is the image's
      SOPInstanceUID (each CANDID image has its own report).
      RadPrompter format (schema llm_cot): "#Key: value" lines, then "index" (study_id for
      mimic/, SOPInstanceUID for candid/) and "<finding>_response" columns (snake_case, e.g.
      pneumothorax_response, fracture_response), all quoted, values Present / Absent / Uncertain.

    SCHEMAS AND THEIR ERRORS (pneumothorax and fracture; chosen rate -> measured here,
    over training and test reports together; uncertain is drawn first, then miss/over-call)

    """
    for schema in SyntheticStudy.schemas {
      s += "  \(schema.name) (\(schema.format.rawValue)): \(schema.summary)\n"
      for finding in ["Pneumothorax", "Fracture"] {
        let r = schema.rates(finding)!
        let m = measured[schema.name]?[finding] ?? MeasuredRates()
        let subtle = finding == "Fracture" ? "two-rib fractures" : "small pneumothoraces"
        let miss = r.subtleMiss.map { "\(pct(r.miss)) (\(pct($0)) for \(subtle))" } ?? pct(r.miss)
        s += "    \(finding): missed \(miss) -> \(pct(m.missRate)) of \(m.positives); "
        s += "over-called \(pct(r.falsePositive)) -> \(pct(m.falsePositiveRate)) of \(m.negatives); "
        s += "uncertain \(pct(r.uncertain)) -> \(pct(m.uncertainRate))\n"
      }
      s += "    other findings flipped: \(pct(schema.otherFlip))\n"
    }
    s += """

    A missed positive is written blank (70 %) or 0.0 (30 %); a true negative is written 0.0
    when the report mentions it, else blank. No Finding is 1.0 when nothing but support
    devices is positive or uncertain, else blank.

    """
    return s
  }
}
