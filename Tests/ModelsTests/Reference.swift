import Foundation
import Models
import TestSupport
import Torch
import XCTest

/// timm reference runs for the parity tests. Each script prints one JSON line.
enum Reference {
  /// Builds a timm ConvNeXt with random weights of a useful size (so every block matters),
  /// saves it (timm's or Facebook's names) and an input/output pair computed by timm.
  static let makeModel = """
    import torch, timm, json, sys, re
    from safetensors.torch import save_file
    from timm.models.convnext import checkpoint_filter_fn
    def make(spec):
        torch.manual_seed(spec.get('seed', 0))
        m = timm.create_model(spec['arch'], pretrained=False, num_classes=spec['classes'], in_chans=spec['in_chans'],
                              drop_path_rate=spec.get('drop_path_rate', 0.0), drop_rate=spec.get('drop_rate', 0.0))
        with torch.no_grad():
            for n, p in m.named_parameters():
                if p.ndim > 1:
                    p.normal_(0, p[0].numel() ** -0.5)
                elif n.endswith('gamma'):
                    p.uniform_(0.2, 1.0)
                elif n.endswith('weight'):
                    p.normal_(1.0, 0.1)
                else:
                    p.normal_(0.0, 0.1)
        sd = {k: v.detach().clone().contiguous() for k, v in m.state_dict().items()}
        if spec.get('names') == 'facebook':
            fb = {}
            for k, v in sd.items():
                f = k.replace('stem.', 'downsample_layers.0.')
                f = re.sub(r'stages\\.(\\d+)\\.downsample\\.(\\d+)', r'downsample_layers.\\1.\\2', f)
                f = re.sub(r'stages\\.(\\d+)\\.blocks\\.(\\d+)', r'stages.\\1.\\2', f)
                f = f.replace('conv_dw', 'dwconv').replace('mlp.fc', 'pwconv')
                f = f.replace('head.fc.', 'head.').replace('head.norm.', 'norm.')
                if 'pwconv' in f and v.ndim == 4:
                    v = v.reshape(v.shape[0], v.shape[1])   # Facebook's MLP is nn.Linear
                fb[f] = v.contiguous()
            back = checkpoint_filter_fn(dict(fb), m)   # our inverse must be what timm undoes
            assert back.keys() == sd.keys() and all(torch.equal(back[k], sd[k]) for k in sd), 'bad inverse mapping'
            save_file(fb, spec['weights'])
        else:
            save_file(sd, spec['weights'])
        g = torch.Generator().manual_seed(1)
        x = torch.randn(spec['batch'], spec['input_chans'], spec['size'], spec['size'], generator=g)
        xin = x.expand(-1, spec['in_chans'], -1, -1) if x.shape[1] != spec['in_chans'] else x
        if spec.get('train'):
            m.train()
            torch.manual_seed(spec['train_seed'])
        else:
            m.eval()
        y = m(xin)
        out = {'x': x, 'y': y.detach().contiguous()}
        if spec.get('grads'):
            w = torch.randn(y.shape, generator=g)
            (y * w).sum().backward()
            out['w'] = w
            for n, p in m.named_parameters():
                if n in spec['grads']:
                    out['grad.' + n] = p.grad.contiguous()
        save_file(out, spec['io'])
    for spec in json.loads(sys.argv[1]):
        make(spec)
    print(json.dumps({'done': True}))
    """

  struct Case {
    var arch: String
    var classes = 3
    var inChans = 3
    var inputChans = 3
    var batch = 2
    var size = 64
    var names = "timm"
    var train: (seed: Int, dropPath: Double, drop: Double)? = nil
    var grads: [String] = []
  }

  /// Runs the timm side of every case in one Python process (importing timm is the slow
  /// part); returns each case's weights file and io tensors (x, y, w, grad.<name>) by name.
  static func run(_ cases: [String: Case], in dir: URL) throws -> [String: (weights: URL, io: StateDict)] {
    var specs: [[String: Any]] = []
    var out: [String: (URL, URL)] = [:]
    for (name, c) in cases {
      let weights = dir.appendingPathComponent("\(name).safetensors")
      let io = dir.appendingPathComponent("\(name)-io.safetensors")
      out[name] = (weights, io)
      var spec: [String: Any] = [
        "arch": c.arch, "classes": c.classes, "in_chans": c.inChans, "input_chans": c.inputChans,
        "batch": c.batch, "size": c.size, "names": c.names, "weights": weights.path, "io": io.path, "grads": c.grads,
      ]
      if let t = c.train {
        spec["train"] = true
        spec["train_seed"] = t.seed
        spec["drop_path_rate"] = t.dropPath
        spec["drop_rate"] = t.drop
      }
      specs.append(spec)
    }
    let json = String(decoding: try JSONSerialization.data(withJSONObject: specs), as: UTF8.self)
    _ = try Python.json(makeModel, args: [json])
    return try out.mapValues { ($0.0, try SafeTensors.read($0.1).tensors) }
  }
}

/// Largest absolute difference between two tensors of the same shape.
func maxAbsDiff(_ a: Tensor, _ b: Tensor, file: StaticString = #filePath, line: UInt = #line) throws -> Double {
  XCTAssertEqual(a.shape, b.shape, "shapes differ", file: file, line: line)
  return try (a.to(dtype: .float32) - b.to(dtype: .float32)).abs().max().item()
}

/// Finding names f0, f1, ... for a head of `n` outputs.
func findings(_ n: Int) -> [String] { (0..<n).map { "f\($0)" } }
