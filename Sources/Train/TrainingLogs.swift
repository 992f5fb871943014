import Common
import Evaluate
import Foundation

/// TensorBoard's event files, written without TensorFlow: a TFRecord stream (length, masked
/// CRC-32C of the length, the record, masked CRC-32C of the record) of `Event` protocol
/// buffers (tensorflow/core/util/event.proto), hand-encoded because only five fields of two
/// messages are needed and a protobuf toolchain would cost more than the encoder:
///   Event { double wall_time = 1; int64 step = 2; string file_version = 3;
///           Summary summary = 5; SessionLog session_log = 7 }
///   Summary { repeated Value value = 1 }   Value { string tag = 1; float simple_value = 2 }
///   SessionLog { SessionStatus status = 1 }   (START = 1)
/// Each process run opens a file of its own; a resumed training starts its file with a
/// SessionLog START at the step it resumes from, which makes TensorBoard drop the scalars the
/// interrupted run had written after that step (they were logged, then lost with the weights).
public final class TensorBoardEvents {
  public let url: URL
  private let handle: FileHandle

  /// Opens `<folder>/events.out.tfevents.<seconds>.<host>.<pid>`; `resumedAt` is the step a
  /// resumed training continues from.
  public init(folder: URL, resumedAt: Int? = nil) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let now = Date().timeIntervalSince1970
    // PyTorch's SummaryWriter's names (time, host, pid, a counter): TensorBoard reads a
    // folder's files in name order, so a later file of the same process sorts after.
    var n = TensorBoardEvents.counter.next(), candidate: URL
    repeat {
      candidate = folder.appendingPathComponent("events.out.tfevents.\(Int(now)).\(ProcessInfo.processInfo.hostName).\(getpid()).\(n)")
      n = TensorBoardEvents.counter.next()
    } while FileManager.default.fileExists(atPath: candidate.path)
    url = candidate
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
      throw FileError("cannot create TensorBoard event file \(url.path)")
    }
    handle = try FileHandle(forWritingTo: url)
    var first = Proto()
    first.double(1, now); first.int(2, 0); first.string(3, "brain.Event:2")
    try write(first.bytes)
    if let step = resumedAt {
      // TensorBoard keeps what earlier files logged before this event's step.
      var log = Proto(); log.int(1, 1)
      var e = Proto()
      e.double(1, now); e.int(2, Int64(step + 1)); e.message(7, log)
      try write(e.bytes)
    }
  }

  deinit { try? handle.close() }

  final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0
    func next() -> Int { lock.lock(); defer { lock.unlock() }; value += 1; return value - 1 }
  }
  static let counter = Counter()

  /// Scalars of one step, as one event.
  public func scalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Double = Date().timeIntervalSince1970) throws {
    let finiteValues = values.filter { $0.value.isFinite }
    guard !finiteValues.isEmpty else { return }
    var summary = Proto()
    for v in finiteValues {
      var value = Proto()
      value.string(1, v.tag); value.float(2, Float(v.value))
      summary.message(1, value)
    }
    var e = Proto()
    e.double(1, wallTime); e.int(2, Int64(step)); e.message(5, summary)
    try write(e.bytes)
  }

  func write(_ record: [UInt8]) throws {
    var length = UInt64(record.count).littleEndian
    let lengthBytes = withUnsafeBytes(of: &length) { Array($0) }
    var out = lengthBytes
    out += le32(CRC32C.masked(lengthBytes))
    out += record
    out += le32(CRC32C.masked(record))
    try handle.write(contentsOf: out)
  }

  func le32(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
}

/// The few protocol-buffer encodings the events need (wire types 0, 1, 2, 5).
struct Proto {
  var bytes: [UInt8] = []
  mutating func varint(_ v: UInt64) {
    var v = v
    while v >= 0x80 { bytes.append(UInt8(v & 0x7f) | 0x80); v >>= 7 }
    bytes.append(UInt8(v))
  }
  mutating func key(_ field: Int, _ wire: UInt64) { varint(UInt64(field) << 3 | wire) }
  mutating func int(_ field: Int, _ v: Int64) { key(field, 0); varint(UInt64(bitPattern: v)) }
  mutating func double(_ field: Int, _ v: Double) {
    key(field, 1)
    for i in 0..<8 { bytes.append(UInt8(v.bitPattern >> (8 * UInt64(i)) & 0xff)) }
  }
  mutating func float(_ field: Int, _ v: Float) {
    key(field, 5)
    for i in 0..<4 { bytes.append(UInt8(v.bitPattern >> (8 * UInt32(i)) & 0xff)) }
  }
  mutating func string(_ field: Int, _ s: String) { let b = Array(s.utf8); key(field, 2); varint(UInt64(b.count)); bytes += b }
  mutating func message(_ field: Int, _ m: Proto) { key(field, 2); varint(UInt64(m.bytes.count)); bytes += m.bytes }
}

/// CRC-32C (Castagnoli), as TFRecord frames use it, and its "masked" form.
enum CRC32C {
  static let table: [UInt32] = (0..<256).map { i -> UInt32 in
    var c = UInt32(i)
    for _ in 0..<8 { c = c & 1 != 0 ? 0x82F6_3B78 ^ (c >> 1) : c >> 1 }
    return c
  }
  static func checksum(_ data: [UInt8]) -> UInt32 {
    var c: UInt32 = 0xFFFF_FFFF
    for b in data { c = table[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
    return c ^ 0xFFFF_FFFF
  }
  static func masked(_ data: [UInt8]) -> UInt32 {
    let c = checksum(data)
    return ((c >> 15) | (c << 17)) &+ 0xA282_EAD8
  }
}

/// `summary.csv`, as timm writes one: a row per epoch (step, train loss, learning rate, the
/// tuning split's loss and AUROC/AUPRC of the raw and EMA weights, time and speed), made from
/// `metrics.jsonl`'s epoch records, so after a resume it holds exactly the logged epochs.
enum SummaryCSV {
  static let columns = ["epoch", "step", "train_loss", "lr", "tune_loss_raw", "tune_auroc_raw", "tune_auprc_raw",
                        "tune_loss_ema", "tune_auroc_ema", "tune_auprc_ema", "seconds", "images_per_s"]

  static func write(from metrics: URL, to url: URL) throws {
    let text = (try? String(contentsOf: metrics, encoding: .utf8)) ?? ""
    let dec = JSONDecoder()
    var rows = [columns]
    for line in text.split(separator: "\n") {
      guard let r = try? dec.decode(EpochRecord.self, from: Data(line.utf8)), r.type == "epoch" else { continue }
      func n(_ x: Double?) -> String { x.map { String($0) } ?? "" }
      rows.append([String(r.epoch), String(r.step), n(r.trainLoss), n(r.lr),
                   n(r.raw?.loss), n(r.raw?.aurocMean), n(r.raw?.auprcMean),
                   n(r.ema?.loss), n(r.ema?.aurocMean), n(r.ema?.auprcMean), n(r.seconds), n(r.imagesPerSecond)])
    }
    try AtomicFile.write(rows.map { $0.joined(separator: ",") }.joined(separator: "\n") + "\n", to: url)
  }
}

/// A run folder's training history as the evaluation report draws it: one point per epoch
/// record of `metrics.jsonl` (the last record of an epoch wins, as after a resume).
public enum TrainingHistory {
  /// Nil when the file is missing or holds no epoch yet.
  public static func curves(model: String, metrics url: URL) -> TrainingCurves? {
    guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
    var byEpoch: [Int: EpochRecord] = [:]
    let dec = JSONDecoder()
    for line in text.split(separator: "\n") {
      guard let r = try? dec.decode(EpochRecord.self, from: Data(line.utf8)), r.type == "epoch" else { continue }
      byEpoch[r.epoch] = r
    }
    guard !byEpoch.isEmpty else { return nil }
    let records = byEpoch.keys.sorted().map { byEpoch[$0]! }
    return TrainingCurves(model: model, source: url.path, epochs: records.map(\.epoch), trainLoss: records.map(\.trainLoss),
                          tuneLossRaw: records.map { $0.raw?.loss }, tuneLossEMA: records.map { $0.ema?.loss },
                          tuneAUROCRaw: records.map { $0.raw?.aurocMean }, tuneAUROCEMA: records.map { $0.ema?.aurocMean },
                          learningRate: records.map(\.lr))
  }
}
