// swift-tools-version:6.0
// cxr: chest X-ray classifiers trained from report-extracted labels.
// Layers (see DESIGN.md): cxr -> Experiment -> Train -> Models -> Torch -> CTorch (libcxt.so)
//                                   |           '-> Data -> CCodecs
//                                   '-> Evaluate (pure Swift), Label (LLM client, pure Swift)
//                          cxr -> Synth (-> Data, CCodecs), Bench (-> Train); Common under all
import PackageDescription
import Foundation

// libcxt.so is built by `make shim` (g++ against libtorch) into CShims/build. CXR_SHIM_DIR names
// another folder holding a libcxt.so built against another libtorch (make test-cuda-build: the
// CUDA wheel's, with its own --scratch-path), so that the default build is left as it is.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path
let shimDir = ProcessInfo.processInfo.environment["CXR_SHIM_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(root)/CShims/build"
let shimLink: [LinkerSetting] = [
  .unsafeFlags(["-L\(shimDir)", "-Xlinker", "-rpath", "-Xlinker", shimDir,
                "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN"]),
]
// `make bundle` (the GPU-machine bundle) sets CXR_BUNDLE=1: the image libraries are linked from
// their static archives and the rpath is only $ORIGIN, where the bundle's libcxt.so is built.
// Without it (every other build) nothing changes.
let bundleBuild = ProcessInfo.processInfo.environment["CXR_BUNDLE"] == "1"
// The bundle's `-lz` (CNIOExtrasZlib, which AsyncHTTPClient brings for the Label layer, names it)
// must find the static archive too: scripts/bundle.sh puts a libz.a, and no libz.so, in this folder,
// which the linker searches before the system's.
let bundleStaticLibs = "\(root)/.build-bundle/static-libs"
let codecLink: [LinkerSetting] = bundleBuild
  ? [.unsafeFlags(["-L\(bundleStaticLibs)",
                   "-Xlinker", "-l:libjpeg.a", "-Xlinker", "-l:libpng16.a", "-Xlinker", "-l:libz.a"]),
     .linkedLibrary("dl"), .linkedLibrary("m")]
  : [.linkedLibrary("jpeg"), .linkedLibrary("png16"), .linkedLibrary("z"), .linkedLibrary("dl")]
let torchLink: [LinkerSetting] = bundleBuild
  ? [.unsafeFlags(["-L\(shimDir)", "-Xlinker", "-rpath", "-Xlinker", "$ORIGIN"])]
  : shimLink
// Release builds use -O (bounds and overflow checks and preconditions kept). Only the Data layer's
// pixel loops (resize, pad, equalize, decode) are measured to need more, so Data alone builds with
// -Ounchecked (BENCHMARKS.md, "-O and -Ounchecked").
let swiftSettings: [SwiftSetting] = []
// Debug builds (the tests') optimise the layers whose Swift loops do the per-pixel and per-image
// work (decode, preprocess, augment, the synthetic renderer): unoptimised, a test that trains a
// classifier spent 20x longer in them than in libtorch.
let debugLoopSettings: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]
let pixelLoopSettings: [SwiftSetting] = [.unsafeFlags(["-Ounchecked"], .when(configuration: .release))] + debugLoopSettings
// The annotation web app (Annotate: Hummingbird, NIO, GRDB) stays out of the bundle too: the GPU
// machine trains and predicts; `cxr annotate` there says so.
let annotateDependency: [Target.Dependency] = bundleBuild ? [] : ["Annotate"]
let cxrSettings: [SwiftSetting] = swiftSettings + (bundleBuild ? [.define("CXR_NO_ANNOTATE")] : [])

let package = Package(
  name: "cxr",
  platforms: [.macOS(.v13)],
  products: [
    .executable(name: "cxr", targets: ["cxr"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    // Annotate (the annotation web app).
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
    .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    // Label (the LLM labeller): HTTP on SwiftNIO, with no Foundation networking (so it links
    // statically into the GPU bundle), and RadPrompter's TOML prompt files.
    .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
    .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
  ],
  targets: [
    .systemLibrary(name: "CTorch", path: "Sources/CTorch"),
    .target(name: "CCodecs", path: "Sources/CCodecs",
            linkerSettings: codecLink),
    // SVG figures as PDF pages (librsvg + cairo, loaded with dlopen: see cfigures.h).
    .target(name: "CFigures", path: "Sources/CFigures", linkerSettings: [.linkedLibrary("dl")]),
    .plugin(name: "BuildInfo", capability: .buildTool(), path: "Plugins/BuildInfo"),
    .target(name: "Common", dependencies: ["Yams"], swiftSettings: swiftSettings, plugins: ["BuildInfo"]),
    .target(name: "Torch", dependencies: ["CTorch", "Common"], swiftSettings: swiftSettings, linkerSettings: torchLink),
    .target(name: "Models", dependencies: ["Torch", "Common"], swiftSettings: swiftSettings),
    .target(name: "Data", dependencies: ["Torch", "CCodecs", "Common"], swiftSettings: pixelLoopSettings),
    .target(name: "Evaluate", dependencies: ["Common", "CFigures"], swiftSettings: swiftSettings),
    .target(name: "Label", dependencies: [
      "Common", "Yams",
      .product(name: "AsyncHTTPClient", package: "async-http-client"),
      .product(name: "NIOCore", package: "swift-nio"),
      .product(name: "NIOHTTP1", package: "swift-nio"),
      .product(name: "NIOPosix", package: "swift-nio"),
      .product(name: "TOMLKit", package: "TOMLKit"),
    ], swiftSettings: swiftSettings),
    .target(name: "Annotate", dependencies: [
      "Common", "Evaluate",
      .product(name: "Hummingbird", package: "hummingbird"),
      .product(name: "HummingbirdCore", package: "hummingbird"),
      .product(name: "HummingbirdTLS", package: "hummingbird"),
      .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
      .product(name: "GRDB", package: "GRDB.swift"),
      .product(name: "Logging", package: "swift-log"),
    ], swiftSettings: swiftSettings),
    .target(name: "Train", dependencies: ["Models", "Data", "Evaluate"], swiftSettings: swiftSettings + debugLoopSettings),
    .target(name: "Experiment", dependencies: ["Train", "Evaluate", "Data", "Models", "Yams", "Label"],
            swiftSettings: swiftSettings),
    // cxr bench (the Swift side of the side-by-side benchmarks) and the doubles tests and
    // benchmarks train (SmallConvNet, SyntheticSplit): outside the layers the product is made of.
    .target(name: "Bench", dependencies: ["Train", "Models", "Data", "Torch", "Common",
                                          .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: swiftSettings),
    // The synthetic study (cxr synth): renderer, DICOM and JPEG writers, labellers of known error.
    .target(name: "Synth", dependencies: ["Common", "Data", "CCodecs"], swiftSettings: swiftSettings + debugLoopSettings),
    .executableTarget(name: "cxr", dependencies: [
      "Experiment", "Synth", "Bench", "Train", "Evaluate", "Data", "Models", "Torch",
      .product(name: "ArgumentParser", package: "swift-argument-parser"),
      "Label",
    ] + annotateDependency, swiftSettings: cxrSettings),
    .target(name: "TestSupport", path: "Tests/TestSupport"),
    .testTarget(name: "CommonTests", dependencies: ["Common", "TestSupport"]),
    .testTarget(name: "TorchTests", dependencies: ["Torch", "TestSupport"]),
    .testTarget(name: "ModelsTests", dependencies: ["Models", "TestSupport"]),
    .testTarget(name: "DataTests", dependencies: ["Data", "TestSupport"]),
    .testTarget(name: "TrainTests", dependencies: ["Train", "Bench", "Models", "Data", "Evaluate", "TestSupport"]),
    .testTarget(name: "EvaluateTests", dependencies: ["Evaluate", "TestSupport"]),
    .testTarget(name: "AnnotateTests", dependencies: ["Annotate", "Evaluate", "Common", "TestSupport",
                                                      .product(name: "GRDB", package: "GRDB.swift")]),
    .testTarget(name: "LabelTests", dependencies: ["Label", "TestSupport"], exclude: ["fake_openai_server.py"]),
    .testTarget(name: "ExperimentTests", dependencies: ["Experiment", "Synth", "Data", "Evaluate", "TestSupport"]),
    .testTarget(name: "SynthTests", dependencies: ["Synth", "Data", "TestSupport"]),
    // The cxr command line as a user runs it (the built binary), for commands of no one layer.
    .testTarget(name: "CXRTests", dependencies: ["TestSupport"]),
  ],
  swiftLanguageModes: [.v5]
)
