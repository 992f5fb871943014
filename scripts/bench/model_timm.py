"""timm's ConvNeXt training step in PyTorch eager, timed like `cxr inspect model --time-steps`.

Usage: python model_timm.py ARCH BATCH SIZE IN_CHANS CLASSES STEPS WARMUP THREADS [--serve]
Prints one JSON line; with --serve, prints 'ready' after the warmup and then runs one timed
step per line read from stdin, printing its milliseconds (for an interleaving driver).
"""
import json, sys, time

import torch

# The CPU torch wheel with PyPI's torchvision dies registering fake kernels for
# torchvision::nms/qnms unless their schemas exist first (timm imports torchvision).
_lib = torch.library.Library('torchvision', 'DEF')
_lib.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
_lib.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
import timm  # noqa: E402

arch, batch, size, in_chans, classes, steps, warmup, threads = sys.argv[1:9]
batch, size, in_chans, classes, steps, warmup, threads = map(int, (batch, size, in_chans, classes, steps, warmup, threads))
torch.set_num_threads(threads)
torch.manual_seed(0)
model = timm.create_model(arch, pretrained=False, num_classes=classes, in_chans=in_chans)
model.train()
x = torch.randn(batch, in_chans, size, size)
target = torch.rand(batch, classes)


def step():
    for p in model.parameters():
        p.grad = None
    loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), target)
    loss.backward()


for _ in range(warmup):
    step()
if '--serve' in sys.argv:
    print('ready', flush=True)
    for _ in sys.stdin:
        t0 = time.perf_counter_ns()
        step()
        print(f"{(time.perf_counter_ns() - t0) / 1e6:.3f}", flush=True)
    sys.exit(0)
times = []
for _ in range(steps):
    t0 = time.perf_counter_ns()
    step()
    times.append((time.perf_counter_ns() - t0) / 1e9)
times.sort()
print(json.dumps({"bench": "model_step", "impl": "pytorch", "arch": arch, "batch": batch, "size": size,
                  "threads": torch.get_num_threads(), "steps": steps, "torch": torch.__version__,
                  "timm": timm.__version__, "ms_median": round(times[len(times) // 2] * 1000, 3),
                  "ms_min": round(times[0] * 1000, 3)}, sort_keys=True))
