"""PyTorch reference for `cxr bench predict`: inference images/s of a timm ConvNeXt (eval mode,
inference mode, bf16 autocast and channels_last on CUDA) on random data already on the device.

  python3 gpu_predict.py --arch convnext_base --size 512 --batch 64 --steps 30 --device cuda

Prints one JSON line: images_per_s, batch_ms, ... or error.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import IN_CHANS, device_info, emit, fail, make_model, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="convnext_base")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()

    device = torch.device(a.device)
    cuda = device.type == "cuda"
    record = {"bench": "predict", "impl": "pytorch-eager", "arch": a.arch, "size": a.size, "batch": a.batch,
              "steps": a.steps}
    try:
        record.update(device_info(device))
        torch.manual_seed(0)
        if cuda:
            torch.backends.cudnn.benchmark = True
        model = make_model(a.arch, device, channels_last=cuda).eval()
        fmt = torch.channels_last if cuda else torch.contiguous_format
        x = torch.randn(a.batch, IN_CHANS, a.size, a.size, device=device).contiguous(memory_format=fmt)

        def batch():
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                return torch.sigmoid(model(x).float())

        seconds = timed(device, batch, a.steps, a.warmup)
        record["images_per_s"] = round(a.steps * a.batch / seconds, 2)
        record["batch_ms"] = round(1000 * seconds / a.steps, 2)
        emit(record)
    except Exception as e:
        fail(record, e)


if __name__ == "__main__":
    main()
