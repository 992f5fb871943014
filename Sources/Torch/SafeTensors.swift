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
    var header = Header(metadata: metadata)
    var blobs: [Data] = []
    var offset = 0
    for (name, t) in tensors {
      if header.tensors[name] != nil || name == Header.metadataKey {
        throw TorchError("duplicate or reserved tensor name '\(name)'")
      }
      let cpu = try t.detach()
      let data = try cpu.bytes()
      header.tensors[name] = TensorInfo(dtype: t.dtype.safetensorsName, shape: t.shape,
                                        dataOffsets: [offset, offset + data.count])
      offset += data.count
      blobs.append(data)
    }
    var json = try header.encoded()
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

  /// One tensor's entry in the JSON header. Fields a writer adds beyond these are ignored.
  struct TensorInfo: Codable, Equatable {
    var dtype: String
    var shape: [Int]
    var dataOffsets: [Int]
    enum CodingKeys: String, CodingKey { case dtype, shape, dataOffsets = "data_offsets" }
  }

  /// The JSON header: `name -> TensorInfo` plus the optional `__metadata__` string map, in one
  /// object whose key order carries no meaning.
  struct Header {
    static let metadataKey = "__metadata__"
    var metadata: [String: String] = [:]
    var tensors: [String: TensorInfo] = [:]

    /// A reason the header is unusable, worded for "<path> is not a valid safetensors file: ...".
    struct Invalid: Error { let why: String }

    init(metadata: [String: String] = [:]) { self.metadata = metadata }

    /// Parses the header's JSON; a malformed one throws `Invalid` naming the key at fault.
    init(json: Data) throws {
      let decoded: Decoded
      do { decoded = try JSONDecoder().decode(Decoded.self, from: json) } catch let e as Invalid { throw e } catch {
        throw Invalid(why: "the header is not a JSON object")
      }
      metadata = decoded.metadata
      tensors = decoded.tensors
    }

    /// The header's JSON. Keys follow the order of the writer this replaced (Foundation's
    /// `JSONSerialization` with `.sortedKeys` on Linux: numeric, case-insensitive), so that a
    /// checkpoint written again from the same tensors is byte-identical to one written before;
    /// each entry's own keys sort bytewise (`data_offsets`, `dtype`, `shape`) as they did.
    func encoded() throws -> Data {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      var members: [(String, Data)] = []
      if !metadata.isEmpty {
        var meta = Data("{".utf8)
        for (i, k) in metadata.keys.sorted(by: Header.precedes).enumerated() {
          if i > 0 { meta.append(UInt8(ascii: ",")) }
          meta.append(try encoder.encode(k))
          meta.append(UInt8(ascii: ":"))
          meta.append(try encoder.encode(metadata[k]!))
        }
        meta.append(UInt8(ascii: "}"))
        members.append((Header.metadataKey, meta))
      }
      for (name, info) in tensors { members.append((name, try encoder.encode(info))) }
      members.sort { Header.precedes($0.0, $1.0) }
      var out = Data("{".utf8)
      for (i, (k, v)) in members.enumerated() {
        if i > 0 { out.append(UInt8(ascii: ",")) }
        out.append(try encoder.encode(k))
        out.append(UInt8(ascii: ":"))
        out.append(v)
      }
      out.append(UInt8(ascii: "}"))
      return out
    }

    static func precedes(_ a: String, _ b: String) -> Bool {
      a.compare(b, options: [.numeric, .caseInsensitive, .forcedOrdering], range: a.startIndex..<a.endIndex,
                locale: NSLocale.system) == .orderedAscending
    }

    /// The decoding side: one object whose keys are tensor names, plus `__metadata__`.
    private struct Decoded: Decodable {
      var metadata: [String: String] = [:]
      var tensors: [String: TensorInfo] = [:]

      init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        for key in c.allKeys {
          if key.stringValue == Header.metadataKey {
            guard let m = try? c.nestedContainer(keyedBy: AnyKey.self, forKey: key) else {
              throw Invalid(why: "__metadata__ is not an object of strings")
            }
            for k in m.allKeys {
              guard let v = try? m.decode(String.self, forKey: k) else {
                throw Invalid(why: "__metadata__ value for '\(k.stringValue)' is not a string")
              }
              metadata[k.stringValue] = v
            }
          } else {
            guard let info = try? c.decode(TensorInfo.self, forKey: key), info.dataOffsets.count == 2 else {
              throw Invalid(why: "entry '\(key.stringValue)' lacks dtype, shape or data_offsets")
            }
            tensors[key.stringValue] = info
          }
        }
      }
    }

    private struct AnyKey: CodingKey {
      var stringValue: String
      var intValue: Int? { nil }
      init(stringValue: String) { self.stringValue = stringValue }
      init?(intValue: Int) { nil }
    }
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
    let header: SafeTensors.Header
    do { header = try SafeTensors.Header(json: Data(bytes: m + 8, count: n)) } catch let e as SafeTensors.Header.Invalid {
      throw bad(e.why)
    }
    metadata = header.metadata
    var es: [SafeTensors.Entry] = []
    let dataSize = fileSize - 8 - n
    for (name, info) in header.tensors {
      guard let dtype = DType(safetensorsName: info.dtype) else {
        throw bad("entry '\(name)' has unsupported dtype \(info.dtype)")
      }
      let shape = info.shape
      guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("entry '\(name)' has a bad shape") }
      let b = info.dataOffsets[0], e = info.dataOffsets[1]
      guard 0 <= b, b <= e else { throw bad("entry '\(name)' has bad data_offsets") }
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

