import ArgumentParser
import Foundation
import Models

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Write a cxr checkpoint as a folder timm loads as it is (model.safetensors + config.json, the Hugging Face hub layout).",
    discussion: """
      In Python: timm.create_model('local-dir:DIR', pretrained=True), or explicitly \
      timm.create_model(cfg['architecture'], pretrained=True, num_classes=cfg['num_classes'], \
      pretrained_cfg_overlay=dict(cfg['pretrained_cfg'], file='DIR/model.safetensors'), **cfg['model_args']) \
      with cfg = json.load(open('DIR/config.json')). Inputs are as cxr preprocesses them (config.json's \
      pretrained_cfg: size, mean/std 0.5 for cxr's -1..1 scaling; cxr.input: equalization).
      """)
  @Argument(help: "A cxr checkpoint (best.safetensors, or a checkpoint folder's model/ema.safetensors).") var checkpoint: String
  @Option(help: "A new (or empty) folder to write.") var out: String

  func run() throws {
    let c = try TimmExport.export(checkpoint: URL(fileURLWithPath: checkpoint), to: URL(fileURLWithPath: out))
    print("wrote \(out)/model.safetensors and \(out)/config.json (\(c.architecture) with depths \(c.model_args.depths), dims \(c.model_args.dims), \(c.num_classes) outputs: \(c.label_names.joined(separator: ", ")))")
  }
}
