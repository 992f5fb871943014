import ArgumentParser
import Foundation
import Torch

/// `cxr bench feed`: host-to-device images/s through `DeviceFeed` (pinned staging buffers, copies
/// on a side stream), with a check that every batch arrived intact: the consumer stream sums each
/// batch on the device and the sums must equal the host's. scripts/bench/gpu_feed.py is the
/// PyTorch counterpart (pin_memory + non_blocking copies on a side stream).
struct BenchFeed: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "feed", abstract: "Host-to-device batch feed: images/s through DeviceFeed, values checked.")
  @Option(help: "Images per batch.") var batch = 32
  @Option(help: "Image side (images are 1 x size x size float32).") var size = 512
  @Option(help: "Timed batches.") var batches = 50
  @Option(help: "cpu, cuda or cuda:N.") var device = "cuda"
  @Option(help: "Staging buffer sets (2 = double buffering).") var depth = 2

  func run() throws {
    let dev = try Device(parsing: device)
    let feed = try DeviceFeed(device: dev, depth: depth)
    // A few distinct host batches, cycled, with their sums known beforehand.
    let distinct = 4
    let hosts = try (0..<distinct).map { _ in [try Tensor.rand([batch, 1, size, size]), try Tensor.arange(0, Double(batch), dtype: .int64)] }
    let hostSums = try hosts.map { try $0[0].to(dtype: .float64).sum().item() }

    var deviceSums: [Tensor] = []
    for i in 0..<3 { _ = try feed.send(hosts[i % distinct]) }  // warm up (allocations)
    try Runtime.synchronize(dev)
    let t0 = DispatchTime.now().uptimeNanoseconds
    for i in 0..<batches {
      let onDevice = try feed.send(hosts[i % distinct])
      deviceSums.append(try onDevice[0].to(dtype: .float64).sum())  // queued on the consumer stream
    }
    try Runtime.synchronize(dev)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9

    var worst = 0.0
    for (i, s) in deviceSums.enumerated() {
      let expected = hostSums[i % distinct]
      worst = max(worst, abs(try s.item() - expected) / max(1, abs(expected)))
    }
    let ok = worst < 1e-9
    let images = Double(batches * batch)
    let gib = images * Double(size * size * 4) / Double(1 << 30)
    print(#"{"bench":"feed","impl":"cxr","device":"\#(dev)","batch":\#(batch),"size":\#(size),"#
      + #""images_per_s":\#(String(format: "%.1f", images / seconds)),"gib_per_s":\#(String(format: "%.2f", gib / seconds)),"#
      + #""staging_allocations":\#(feed.stagingAllocations),"values_ok":\#(ok)}"#)
    if !ok { throw ValidationError("DeviceFeed delivered wrong values: worst relative sum error \(worst)") }
  }
}
