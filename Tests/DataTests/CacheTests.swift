import XCTest
import TestSupport
import Torch
@testable import Data

final class CacheTests: XCTestCase {
  func testBuildStoresPreprocessedPixelsAndLoaderReadsThem() throws {
    let (dir, files) = try LoaderFixtures.write(count: 6)
    let cacheDir = dir.appendingPathComponent("cache")
    let settings = PreprocessSettings(size: 20, equalize: true)
    let report = try CacheBuilder.build(sources: files, settings: settings, folder: cacheDir, workers: 2)
    XCTAssertTrue(report.rebuilt)
    XCTAssertEqual(report.images, 6)
    XCTAssertEqual(report.reused, 0)
    XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: cacheDir.appendingPathComponent("images.u8").path)[.size] as? Int, 6 * 400)
    let cache = try XCTUnwrap(try PreprocessedCache.open(cacheDir))
    XCTAssertEqual(cache.settings, settings)
    for f in files {
      let want = Preprocess.toUInt8(Preprocess.apply(try ImageDecoder.load(f, targetLongestSide: 20), settings))
      XCTAssertEqual(Array(try XCTUnwrap(cache.pixels(for: f))), want, f.lastPathComponent)
    }
    // The loader reads the cache: exactly the cached bytes mapped to [-1, 1].
    let items = files.enumerated().map { LoaderItem(id: "\($0)", path: $1, targets: [0]) }
    let loader = try DataLoader(items: items, options: LoaderOptions(batchSize: 6, preprocess: settings, workers: 1, shuffle: false),
                                cache: cache)
    let batch = try XCTUnwrap(try loader.epoch(0).next())
    let got = try batch.images.toArray(Float.self)
    for (k, f) in files.enumerated() {
      let want = cache.pixels(for: f)!.map { Float($0) / 255 * 2 - 1 }
      XCTAssertEqual(Array(got[(k * 400)..<((k + 1) * 400)]), want)
    }
    // A loader with other settings refuses the cache.
    XCTAssertThrowsError(try DataLoader(items: items, options: LoaderOptions(preprocess: PreprocessSettings(size: 20)), cache: cache)) { e in
      XCTAssertEqual((e as? LoaderError)?.message,
        "the cache in \(cacheDir.path) was built with size 20, equalize yes, the loader wants size 20, equalize no; rebuild it with `cxr cache`")
    }
  }

  func testRebuildsOnlyWhenSourcesOrSettingsChange() throws {
    let (dir, files) = try LoaderFixtures.write(count: 4)
    let cacheDir = dir.appendingPathComponent("cache")
    let settings = PreprocessSettings(size: 12)
    XCTAssertTrue(try CacheBuilder.build(sources: files, settings: settings, folder: cacheDir).rebuilt)
    XCTAssertFalse(try CacheBuilder.build(sources: files, settings: settings, folder: cacheDir).rebuilt)
    XCTAssertNotNil(try PreprocessedCache.openIfMatching(cacheDir, settings: settings))
    XCTAssertNil(try PreprocessedCache.openIfMatching(cacheDir, settings: PreprocessSettings(size: 13)))
    XCTAssertNil(try PreprocessedCache.openIfMatching(dir.appendingPathComponent("none"), settings: settings))
    // A changed source (new mtime): rebuilt, the three others copied over.
    let later = Date().addingTimeInterval(10)
    try FileManager.default.setAttributes([.modificationDate: later], ofItemAtPath: files[2].path)
    let r = try CacheBuilder.build(sources: files, settings: settings, folder: cacheDir)
    XCTAssertTrue(r.rebuilt)
    XCTAssertEqual(r.reused, 3)
    // A stale entry is not served.
    let cache = try XCTUnwrap(try PreprocessedCache.open(cacheDir))
    try FileManager.default.setAttributes([.modificationDate: later.addingTimeInterval(10)], ofItemAtPath: files[1].path)
    XCTAssertNil(cache.pixels(for: files[1], stamp: SourceStamp.current(files[1])))
    XCTAssertNotNil(cache.pixels(for: files[0], stamp: SourceStamp.current(files[0])))
    // New settings: everything rebuilt.
    let r2 = try CacheBuilder.build(sources: files, settings: PreprocessSettings(size: 12, equalize: true), folder: cacheDir)
    XCTAssertTrue(r2.rebuilt)
    XCTAssertEqual(r2.reused, 0)
    // A different list: rebuilt.
    XCTAssertTrue(try CacheBuilder.build(sources: Array(files.prefix(3)), settings: settings, folder: cacheDir).rebuilt)
  }

  func testBadSourcesAreListedAndDamagedCacheIsNamed() throws {
    let (dir, files) = try LoaderFixtures.write(count: 2)
    let missing = dir.appendingPathComponent("gone.jpg")
    let cacheDir = dir.appendingPathComponent("cache")
    let r = try CacheBuilder.build(sources: [files[0], missing, files[1]], settings: PreprocessSettings(size: 8), folder: cacheDir)
    XCTAssertEqual(r.images, 2)
    XCTAssertEqual(r.bad.map(\.path), [missing.path])
    XCTAssertEqual(try String(contentsOf: cacheDir.appendingPathComponent("bad_files.csv"), encoding: .utf8),
                   "path,reason\n\(missing.path),missing: file not found; check the path or the dataset root\n")
    // Truncate the data file: opening names it and says what to do.
    let data = cacheDir.appendingPathComponent("images.u8")
    try Data(count: 10).write(to: data)
    XCTAssertThrowsError(try PreprocessedCache.open(cacheDir)) { e in
      XCTAssertEqual((e as? CacheError)?.message,
        "\(data.path) holds 10 bytes but its index needs 192 (interrupted build?); run `cxr cache` again")
    }
    try "{".write(to: cacheDir.appendingPathComponent("index.json"), atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try PreprocessedCache.open(cacheDir)) { e in
      XCTAssertTrue("\(e)".hasPrefix("\(cacheDir.path)/index.json is not a valid cache index"), "\(e)")
    }
    XCTAssertNil(try PreprocessedCache.open(dir.appendingPathComponent("none")))
  }
}

final class CacheManifestTests: XCTestCase {
  func testReadsPathsAndNamesBadRows() throws {
    let dir = try TestEnv.scratch()
    let ok = dir.appendingPathComponent("m.csv")
    try "id,path\na,x/1.jpg\nb,/abs/2.png\n".write(to: ok, atomically: true, encoding: .utf8)
    XCTAssertEqual(try CacheManifest.read(ok).map(\.path), [dir.appendingPathComponent("x/1.jpg").path, "/abs/2.png"])
    let noPath = dir.appendingPathComponent("n.csv")
    try "id,file\na,1.jpg\n".write(to: noPath, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try CacheManifest.read(noPath)) { e in
      XCTAssertEqual("\(e)", "\(noPath.path) has no `path` column (columns: id, file); add one with the image paths")
    }
    let empty = dir.appendingPathComponent("e.csv")
    try "id,path\na,1.jpg\nb,\n".write(to: empty, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try CacheManifest.read(empty)) { e in
      XCTAssertEqual("\(e)", "\(empty.path):3: empty path; every row needs an image path")
    }
  }
}
