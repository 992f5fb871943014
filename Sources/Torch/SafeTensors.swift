import Common
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The safetensors format: 8-byte little-endian header length N, N bytes of JSON
/// (`name -> {dtype, shape, data_offsets}` plus optional `__metadata__` of strings),
/// then the raw little-endian tensor data.
public enum SafeTensors {
  public struct Entry: Equatable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let begin: Int, end: Int
  }

  /// Writes `tensors` (in order) and `metadata` atomically: temp file, fsync, rename.
  public static func write(_ tensors: [(String, Tensor)], metadata: [String: String] = [:], to url: URL) throws {
    var header: [String: Any] = [:]
    if !metadata.isEmpty { header["__metadata__"] = metadata }
    var blobs: [Data] = []
    var offset = 0
    for (name, t) in tensors {
      if header[name] != nil || name == "__metadata__" { throw TorchError("duplicate or reserved tensor name '\(name)'") }
      let cpu = try t.detach()
      let data = try cpu.bytes()
      header[name] = ["dtype": t.dtype.safetensorsName, "shape": t.shape, "data_offsets": [offset, offset + data.count]]
      offset += data.count
      blobs.append(data)
    }
    var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
    // Pad with spaces so the data section starts 8-byte aligned, as the reference writer does.
    while (8 + json.count) % 8 != 0 { json.append(0x20) }
    var out = Data(capacity: 8 + json.count + offset)
    var n = UInt64(json.count).littleEndian
    withUnsafeBytes(of: &n) { out.append(contentsOf: $0) }
    out.append(json)
    for b in blobs { out.append(b) }
    try AtomicFile.write(out, to: url)
  }

  /// Convenience: a model's or state dict's tensors.
  public static func write(_ state: StateDict, metadata: [String: String] = [:], to url: URL) throws {
    try write(Array(state), metadata: metadata, to: url)
  }

  /// Reads every tensor into CPU memory.
  public static func read(_ url: URL) throws -> (tensors: StateDict, metadata: [String: String]) {
    let f = try SafeTensorsFile(url)
    var sd = StateDict()
    for e in f.entries { sd[e.name] = try f.tensor(e.name) }
    return (sd, f.metadata)
  }
}

/// A safetensors file opened by memory mapping: the header is parsed and validated up
/// front; tensor bytes are touched only when a tensor is asked for.
public final class SafeTensorsFile {
  public let url: URL
  public let entries: [SafeTensors.Entry]
  public let metadata: [String: String]
  private let base: UnsafeMutableRawPointer?
  private let size: Int
  private let dataStart: Int
  private let index: [String: Int]

  public init(_ url: URL) throws {
    self.url = url
    let path = url.path
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw TorchError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { throw TorchError("cannot stat \(path)") }
    let fileSize = Int(st.st_size)
    size = fileSize
    func bad(_ why: String) -> TorchError { TorchError("\(path) is not a valid safetensors file: \(why)") }
    guard fileSize >= 8 else { throw bad("it has \(fileSize) bytes, fewer than the 8-byte header length") }
    guard let m = mmap(nil, fileSize, PROT_READ, MAP_PRIVATE, fd, 0), m != MAP_FAILED else {
      throw TorchError("cannot map \(path): \(String(cString: strerror(errno)))")
    }
    base = m
    var ok = false
    defer { if !ok { munmap(m, fileSize) } }

    let n = Int(UInt64(littleEndian: m.loadUnaligned(as: UInt64.self)))
    guard n > 0, n <= 100_000_000, 8 + n <= fileSize else {
      throw bad("header length \(n) does not fit in the file (\(fileSize) bytes); the file may be truncated")
    }
    dataStart = 8 + n
    let headerData = Data(bytes: m + 8, count: n)
    guard let obj = try? JSONSerialization.jsonObject(with: headerData), let header = obj as? [String: Any] else {
      throw bad("the header is not a JSON object")
    }
    var meta: [String: String] = [:]
    if let md = header["__metadata__"] {
      guard let d = md as? [String: Any] else { throw bad("__metadata__ is not an object of strings") }
      for (k, v) in d {
        guard let s = v as? String else { throw bad("__metadata__ value for '\(k)' is not a string") }
        meta[k] = s
      }
    }
    metadata = meta
    var es: [SafeTensors.Entry] = []
    let dataSize = fileSize - 8 - n
    for (name, v) in header where name != "__metadata__" {
      guard let d = v as? [String: Any], let dt = d["dtype"] as? String,
            let shp = d["shape"] as? [Any], let offs = d["data_offsets"] as? [Any], offs.count == 2 else {
        throw bad("entry '\(name)' lacks dtype, shape or data_offsets")
      }
      guard let dtype = DType(safetensorsName: dt) else { throw bad("entry '\(name)' has unsupported dtype \(dt)") }
      let shape = try shp.map { x -> Int in
        guard let i = (x as? NSNumber)?.intValue, i >= 0 else { throw bad("entry '\(name)' has a bad shape") }
        return i
      }
      guard let b = (offs[0] as? NSNumber)?.intValue, let e = (offs[1] as? NSNumber)?.intValue, 0 <= b, b <= e else {
        throw bad("entry '\(name)' has bad data_offsets")
      }
      // Checked arithmetic (not `*`): under -Ounchecked an overflow would wrap silently and a
      // 2^32 x 2^32 shape would pass as a small tensor.
      var need = dtype.itemSize
      for d in shape {
        let (p, overflow) = need.multipliedReportingOverflow(by: d)
        guard !overflow else { throw bad("entry '\(name)' has shape \(shape), whose size in bytes overflows a 64-bit count") }
        need = p
      }
      guard e - b == need else { throw bad("entry '\(name)' spans \(e - b) bytes but \(dtype) \(shape) needs \(need)") }
      guard e <= dataSize else { throw bad("entry '\(name)' ends at byte \(e) past the data section (\(dataSize) bytes); truncated file?") }
      es.append(.init(name: name, dtype: dtype, shape: shape, begin: b, end: e))
    }
    es.sort { ($0.begin, $0.name) < ($1.begin, $1.name) }
    entries = es
    index = Dictionary(uniqueKeysWithValues: es.enumerated().map { ($1.name, $0) })
    ok = true
  }

  deinit { if let base { munmap(base, size) } }

  public var names: [String] { entries.map(\.name) }
  public func entry(_ name: String) -> SafeTensors.Entry? { index[name].map { entries[$0] } }

  /// A CPU tensor with a copy of the named tensor's bytes.
  public func tensor(_ name: String) throws -> Tensor {
    guard let e = entry(name) else { throw TorchError("\(url.path) has no tensor named '\(name)'") }
    let ptr = UnsafeRawBufferPointer(start: base! + dataStart + e.begin, count: e.end - e.begin)
    return try Tensor(bytes: ptr, shape: e.shape, dtype: e.dtype)
  }
}

