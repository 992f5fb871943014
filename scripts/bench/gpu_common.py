"""Shared pieces of the PyTorch reference side of the GPU benchmarks (scripts/gpu-check.sh).

The study's recipe: timm ConvNeXt, one input channel, two findings, BCE with logits, Lion
(lr 1e-5, wd 3e-4, betas 0.9/0.99) and an EMA of the weights with decay 0.9999, bf16 autocast and
channels_last on CUDA. Every script prints one JSON line that gpu-check.sh reads.
"""
import json
import os
import struct
import sys
import time

import torch

# The bundle carries timm and lion-pytorch (pure Python) for GPU machines whose PyTorch lacks
# them; appended, so that the machine's own installs win.
_pylib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "pylib")
if os.path.isdir(_pylib):
    sys.path.append(os.path.abspath(_pylib))

FINDINGS = 2  # Pneumothorax, Fracture
IN_CHANS = 1


def _cpu_wheel_torchvision_fix():
    # A CPU-only torch wheel with PyPI's torchvision dies registering fake kernels for
    # torchvision::nms/qnms on import (timm imports torchvision); defining the schemas first
    # avoids it. Only there: with a CUDA torch, torchvision registers them itself.
    if torch.version.cuda is not None:
        return
    try:
        lib = torch.library.Library("torchvision", "DEF")
        lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        globals()["_torchvision_lib"] = lib
    except Exception:
        pass


_cpu_wheel_torchvision_fix()


def device_info(device):
    info = {"torch": torch.__version__, "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def emit(record):
    print(json.dumps(record), flush=True)


def fail(record, err):
    record["error"] = f"{type(err).__name__}: {err}".splitlines()[0][:300]
    emit(record)
    sys.exit(1)


def make_model(arch, device, channels_last):
    import timm

    model = timm.create_model(arch, pretrained=False, num_classes=FINDINGS, in_chans=IN_CHANS)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


class InlineLion(torch.optim.Optimizer):
    """Lion exactly as lion-pytorch 0.2.x updates (decoupled decay, sign of the interpolation,
    then the momentum update), with _foreach_ ops; used when lion_pytorch is not installed."""

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            avgs = []
            for p in params:
                state = self.state[p]
                if "exp_avg" not in state:
                    state["exp_avg"] = torch.zeros_like(p)
                avgs.append(state["exp_avg"])
            lr, wd = group["lr"], group["weight_decay"]
            b1, b2 = group["betas"]
            torch._foreach_mul_(params, 1 - lr * wd)
            update = torch._foreach_mul(avgs, b1)
            torch._foreach_add_(update, grads, alpha=1 - b1)
            torch._foreach_sign_(update)
            torch._foreach_add_(params, update, alpha=-lr)
            torch._foreach_mul_(avgs, b2)
            torch._foreach_add_(avgs, grads, alpha=1 - b2)


def make_lion(model, lr=1e-5, weight_decay=3e-4, betas=(0.9, 0.99)):
    try:
        from lion_pytorch import Lion

        return Lion(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay), "lion-pytorch"
    except ImportError:
        return InlineLion(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay), "inline-foreach"


class Ema:
    """EMA of the weights (and buffers) with a fixed decay, one _foreach_lerp_ per step, like
    timm's ModelEmaV3 without warmup."""

    def __init__(self, model, decay=0.9999):
        self.decay = decay
        self.shadow = [t.detach().clone() for t in model.state_dict().values() if t.is_floating_point()]

    @torch.no_grad()
    def update(self, model):
        current = [t for t in model.state_dict().values() if t.is_floating_point()]
        torch._foreach_lerp_(self.shadow, current, 1.0 - self.decay)


def timed(device, fn, steps, warmup):
    """Runs fn warmup times, then steps times; returns seconds for the timed steps."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t0


# safetensors in plain Python (8-byte little-endian header size, JSON header, raw bytes), so that
# the forward check needs nothing but torch on the GPU machine.
_ST_DTYPES = {torch.float32: "F32", torch.bfloat16: "BF16", torch.float16: "F16", torch.int64: "I64",
              torch.float64: "F64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": _ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    by_name = {v: k for k, v in _ST_DTYPES.items()}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        lo, hi = info["data_offsets"]
        buf = torch.frombuffer(bytearray(data[lo:hi]), dtype=torch.uint8)
        out[name] = buf.view(by_name[info["dtype"]]).reshape(info["shape"])
    return out
