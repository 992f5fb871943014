import XCTest
import TestSupport
import Torch
@testable import Data

/// Small real images for loader and cache tests: `n` JPEG/PNG files of varying sizes.
enum LoaderFixtures {
  /// Written once per test process (starting the reference Python costs seconds).
  static let master: Result<URL, Error> = Result {
    let dir = try TestEnv.scratch("cxr-loader-master")
    try Python.run(#"""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(11)
    for i in range(20):
        h, w = int(rng.integers(20, 70)), int(rng.integers(20, 70))
        img = (rng.random((h, w)) * 255).astype(np.uint8)
        ext = "jpg" if i % 2 == 0 else "png"
        Image.fromarray(img).save(f"{sys.argv[1]}/img{i:02d}.{ext}", **({"quality": 95} if ext == "jpg" else {}))
    """#, args: [dir.path])
    return dir
  }

  static func name(_ i: Int) -> String { String(format: "img%02d.%@", i, i % 2 == 0 ? "jpg" : "png") }

  /// A fresh folder with copies of the first `count` (<= 20) images.
  static func write(count: Int) throws -> (dir: URL, files: [URL]) {
    let src = try master.get()
    let dir = try TestEnv.scratch("cxr-loader")
    let files = try (0..<count).map { i -> URL in
      let f = dir.appendingPathComponent(name(i))
      try FileManager.default.copyItem(at: src.appendingPathComponent(name(i)), to: f)
      return f
    }
    return (dir, files)
  }
}

final class LoaderTests: XCTestCase {
  func items(_ files: [URL]) -> [LoaderItem] {
    files.enumerated().map { i, f in
      LoaderItem(id: "id\(i)", path: f, targets: [Float(i % 2), Float(i % 3 == 0 ? 1 : 0)], mask: [1, i % 4 == 0 ? 0 : 1])
    }
  }

  func ids(_ loader: DataLoader, epoch: Int) throws -> [String] {
    let it = loader.epoch(epoch)
    var out: [String] = []
    while let b = try it.next() { out += b.ids }
    return out
  }

  func testOrderIsDeterministicForSeedAndEpoch() throws {
    let (_, files) = try LoaderFixtures.write(count: 11)
    let opts = LoaderOptions(batchSize: 3, preprocess: PreprocessSettings(size: 16), workers: 3, prefetch: 2, seed: 42)
    let a = try DataLoader(items: items(files), options: opts)
    let b = try DataLoader(items: items(files), options: opts)
    let e3 = try ids(a, epoch: 3)
    XCTAssertEqual(e3, try ids(b, epoch: 3))
    XCTAssertEqual(e3, try ids(a, epoch: 3))
    XCTAssertEqual(Set(e3), Set((0..<11).map { "id\($0)" }))
    XCTAssertEqual(e3.count, 11)
    XCTAssertNotEqual(e3, try ids(a, epoch: 4))
    var other = opts
    other.seed = 43
    XCTAssertNotEqual(e3, try ids(try DataLoader(items: items(files), options: other), epoch: 3))
    // The order is exactly the documented shuffle (batches keep it, whatever the worker timing).
    XCTAssertEqual(e3, a.order(epoch: 3).map { "id\($0)" })
    var plain = opts
    plain.shuffle = false
    XCTAssertEqual(try ids(try DataLoader(items: items(files), options: plain), epoch: 9), (0..<11).map { "id\($0)" })
  }

  func testBatchesHoldPreprocessedImagesTargetsAndMask() throws {
    let (_, files) = try LoaderFixtures.write(count: 5)
    let opts = LoaderOptions(batchSize: 2, preprocess: PreprocessSettings(size: 24, equalize: true), workers: 2,
                             shuffle: false, dropLast: true)
    let loader = try DataLoader(items: items(files), options: opts)
    XCTAssertEqual(loader.batchCount(), 2)
    let it = loader.epoch(0)
    let first = try XCTUnwrap(try it.next())
    XCTAssertEqual(first.images.shape, [2, 1, 24, 24])
    XCTAssertEqual(first.images.dtype, .float32)
    XCTAssertEqual(first.targets.shape, [2, 2])
    XCTAssertEqual(try first.targets.toArray(Float.self), [0, 1, 1, 0])
    XCTAssertEqual(try first.mask.toArray(Float.self), [1, 0, 1, 1])
    XCTAssertFalse(first.images.isPinned)  // no CUDA here
    let pixels = try first.images.toArray(Float.self)
    for (k, f) in files.prefix(2).enumerated() {
      let want = Preprocess.apply(try ImageDecoder.load(f, targetLongestSide: 24), opts.preprocess).map { $0 / 255 * 2 - 1 }
      XCTAssertEqual(Array(pixels[(k * 576)..<((k + 1) * 576)]), want)
    }
    XCTAssertNotNil(try it.next())
    XCTAssertNil(try it.next())  // drop_last: the fifth image is not used
  }

  /// Items with no files behind them, for loaders whose `decode` a probe replaces.
  func fakeItems(_ n: Int) -> [LoaderItem] {
    (0..<n).map { LoaderItem(id: "id\($0)", path: URL(fileURLWithPath: "/fake/\($0).png"), targets: [Float($0)]) }
  }

  func testEveryWorkerDecodesAtOnceEvenWithPrefetchOne() throws {
    // prefetch counts batches per worker (PyTorch's prefetch_factor): 4 workers with prefetch 1
    // decode 4 batches at the same time, not min(workers, prefetch) = 1.
    let opts = LoaderOptions(batchSize: 1, preprocess: PreprocessSettings(size: 8), workers: 4, prefetch: 1, shuffle: false)
    let loader = try DataLoader(items: fakeItems(12), options: opts)
    let probe = DecodeProbe(releaseAt: 4)
    loader.decode = probe.decode
    let it = loader.epoch(0)
    var got: [String] = []
    while let b = try it.next() { got += b.ids }
    XCTAssertEqual(got, (0..<12).map { "id\($0)" }, "batches still arrive in order")
    XCTAssertEqual(probe.calls, 12)
    XCTAssertFalse(probe.gaveUp, "the four workers never decoded at the same time")
    XCTAssertEqual(probe.most, 4, "decodes running at once")
    XCTAssertEqual(it.peakAhead, 4, "batches decoded ahead: workers x prefetch")
  }

  func testRunAheadIsBoundedByWorkersTimesPrefetch() throws {
    let opts = LoaderOptions(batchSize: 1, preprocess: PreprocessSettings(size: 8), workers: 2, prefetch: 3, shuffle: false)
    XCTAssertEqual(opts.runAhead, 6)
    let loader = try DataLoader(items: fakeItems(20), options: opts)
    let probe = DecodeProbe(releaseAt: 1)
    loader.decode = probe.decode
    let it = loader.epoch(0)
    // Before the first batch is taken, the workers fill the queue: 6 batches, then they wait.
    XCTAssertTrue(probe.waitForCalls(6), "the workers did not start 6 batches ahead")
    var n = 0
    while try it.next() != nil { n += 1 }
    XCTAssertEqual(n, 20)
    XCTAssertEqual(probe.calls, 20)
    XCTAssertEqual(it.peakAhead, 6, "never more than workers x prefetch batches ahead")
  }

  func testResumePositionSkipsBatchesWithoutDecodingThem() throws {
    let opts = LoaderOptions(batchSize: 3, preprocess: PreprocessSettings(size: 8), workers: 3, prefetch: 1, seed: 5)
    let loader = try DataLoader(items: fakeItems(10), options: opts)
    let probe = DecodeProbe(releaseAt: 1)
    loader.decode = probe.decode
    let whole = try ids(loader, epoch: 2)
    XCTAssertEqual(whole, loader.order(epoch: 2).map { "id\($0)" })
    let before = probe.calls
    let it = loader.epoch(2, startingAt: 2)
    var tail: [String] = []
    while let b = try it.next() { tail += b.ids }
    XCTAssertEqual(tail, Array(whole.dropFirst(6)), "batches 2 and 3 of the epoch")
    XCTAssertEqual(probe.calls - before, 4, "the skipped batches are not decoded")
  }

  func testBadFilesAreSkippedAndListed() throws {
    let (dir, files) = try LoaderFixtures.write(count: 4)
    let truncated = dir.appendingPathComponent("cut.jpg")
    let data = try Data(contentsOf: files[0])
    try data.prefix(data.count / 2).write(to: truncated)
    let missing = dir.appendingPathComponent("gone.png")
    let run = try TestEnv.scratch("cxr-run")
    let opts = LoaderOptions(batchSize: 3, preprocess: PreprocessSettings(size: 16), workers: 2, shuffle: false,
                             badFilesFolder: run, split: "train")
    let list = items([files[1], truncated, files[2], missing, files[3]])
    let loader = try DataLoader(items: list, options: opts)
    XCTAssertEqual(try ids(loader, epoch: 0), ["id0", "id2", "id4"])
    let csv = try String(contentsOf: run.appendingPathComponent("bad_files.csv"), encoding: .utf8)
    let lines = csv.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 3)
    XCTAssertEqual(lines[0], "path,split,reason")
    XCTAssertTrue(lines[1].hasPrefix("\(truncated.path),train,corrupt: corrupt JPEG:"), lines[1])
    XCTAssertEqual(lines[2], "\(missing.path),train,missing: file not found; check the path or the dataset root")
    // A second pass does not duplicate entries.
    _ = try ids(loader, epoch: 1)
    XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("bad_files.csv"), encoding: .utf8), csv)
    // A later loader in the same run folder (a resumed run) keeps the earlier entries.
    let garbage = dir.appendingPathComponent("noise.jpg")
    try Data("not an image".utf8).write(to: garbage)
    let resumed = try DataLoader(items: items([files[1], garbage]), options: opts)
    XCTAssertEqual(try ids(resumed, epoch: 0), ["id0"])
    let garbageRow = "\(garbage.path),train,\"unknownFormat: not a JPEG, PNG or DICOM image (unrecognised content)\"\n"
    let trainRows = csv.dropFirst("path,split,reason\n".count)
    let expected = "path,split,reason\n" + ([garbageRow] + trainRows.split(separator: "\n").map { $0 + "\n" }).sorted().joined()
    XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("bad_files.csv"), encoding: .utf8), expected)
    // Another split's loader in the same folder adds its own rows and keeps the train rows
    // (it used to rewrite the file with its own list only).
    var tuneOpts = opts
    tuneOpts.split = "tune"
    let tune = try DataLoader(items: items([missing, files[0]]), options: tuneOpts)
    XCTAssertEqual(try ids(tune, epoch: 0), ["id1"])
    XCTAssertEqual(try String(contentsOf: run.appendingPathComponent("bad_files.csv"), encoding: .utf8),
                   expected + "\(missing.path),tune,missing: file not found; check the path or the dataset root\n")
    // And the train loader's next write keeps the tune rows.
    let moreGarbage = dir.appendingPathComponent("noise2.jpg")
    try Data("not an image".utf8).write(to: moreGarbage)
    let third = try DataLoader(items: items([moreGarbage]), options: opts)
    _ = try ids(third, epoch: 0)
    let final = try String(contentsOf: run.appendingPathComponent("bad_files.csv"), encoding: .utf8)
    XCTAssertTrue(final.contains("\(missing.path),tune,missing"), final)
    XCTAssertTrue(final.contains("\(moreGarbage.path),train,"), final)
    XCTAssertEqual(final.split(separator: "\n").count, 6, final)
  }

  func testFailPolicyStopsWithANamedError() throws {
    let (dir, files) = try LoaderFixtures.write(count: 2)
    let missing = dir.appendingPathComponent("gone.png")
    let opts = LoaderOptions(batchSize: 1, preprocess: PreprocessSettings(size: 16), workers: 1, shuffle: false,
                             badFilePolicy: .fail)
    let loader = try DataLoader(items: items([files[0], missing, files[1]]), options: opts)
    let it = loader.epoch(0)
    XCTAssertNotNil(try it.next())
    XCTAssertThrowsError(try it.next()) { error in
      XCTAssertEqual((error as? LoaderError)?.message,
        "\(missing.path): file not found; check the path or the dataset root (bad-file policy is 'fail'; use 'skip' to leave such images out: they are listed in bad_files.csv)")
    }
    XCTAssertEqual(loader.badFiles.all.map(\.path), [missing.path])
  }

  func testMissingDICOMSupportStopsEvenUnderSkip() throws {
    let opts = LoaderOptions(batchSize: 1, preprocess: PreprocessSettings(size: 8), workers: 1, shuffle: false)
    let loader = try DataLoader(items: [LoaderItem(id: "a", path: URL(fileURLWithPath: "/data/x.dcm"), targets: [1])],
                                options: opts)
    loader.decode = { url, _ in
      throw ImageError(path: url.path, kind: .dicomUnavailable, reason: "DICOM support is not available")
    }
    XCTAssertThrowsError(try loader.epoch(0).next()) { e in
      XCTAssertEqual((e as? LoaderError)?.message, "/data/x.dcm: DICOM support is not available")
    }
    XCTAssertTrue(loader.badFiles.all.isEmpty)
  }

  func testRejectsInconsistentItemsAndOptions() throws {
    let a = LoaderItem(id: "a", path: URL(fileURLWithPath: "/x.jpg"), targets: [1, 0])
    let b = LoaderItem(id: "b", path: URL(fileURLWithPath: "/y.jpg"), targets: [1])
    XCTAssertThrowsError(try DataLoader(items: [a, b], options: LoaderOptions())) { error in
      XCTAssertEqual((error as? LoaderError)?.message, "item b has 1 targets and 1 mask values; every item needs 2")
    }
    XCTAssertThrowsError(try DataLoader(items: [a], options: LoaderOptions(batchSize: 0))) { error in
      XCTAssertEqual((error as? LoaderError)?.message, "batch size must be at least 1 (got 0)")
    }
  }
}

/// A stand-in for the image decoder that counts calls and how many run at the same time. Each
/// call waits until `releaseAt` calls run together, so that a loader that decodes on fewer
/// threads shows it (the first call that waits `patience` in vain gives up and lets every call
/// through: the test then fails on `gaveUp` instead of hanging).
final class DecodeProbe: @unchecked Sendable {
  let releaseAt: Int
  let patience: TimeInterval
  let cond = NSCondition()
  private var running = 0, _most = 0, _calls = 0, _gaveUp = false

  init(releaseAt: Int, patience: TimeInterval = 10) {
    self.releaseAt = releaseAt
    self.patience = patience
  }

  var most: Int { cond.lock(); defer { cond.unlock() }; return _most }
  var calls: Int { cond.lock(); defer { cond.unlock() }; return _calls }
  var gaveUp: Bool { cond.lock(); defer { cond.unlock() }; return _gaveUp }

  /// Waits (at most `patience`) until `n` calls were made; false if they were not.
  func waitForCalls(_ n: Int) -> Bool {
    cond.lock(); defer { cond.unlock() }
    let deadline = Date().addingTimeInterval(patience)
    while _calls < n { if !cond.wait(until: deadline) { return _calls >= n } }
    return true
  }

  @Sendable func decode(_ url: URL, _ size: Int) throws -> SourceImage {
    cond.lock()
    running += 1
    _calls += 1
    _most = max(_most, running)
    cond.broadcast()
    let deadline = Date().addingTimeInterval(patience)
    while _most < releaseAt && !_gaveUp {
      if !cond.wait(until: deadline) { _gaveUp = true; cond.broadcast() }
    }
    running -= 1
    cond.unlock()
    return SourceImage(pixels: GrayImage(width: size, height: size, samples: .u8([UInt8](repeating: 128, count: size * size))),
                       originalWidth: size, originalHeight: size, format: .png, jpegScale: 8, notes: [])
  }
}
