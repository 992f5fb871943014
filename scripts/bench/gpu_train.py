"""PyTorch reference for `cxr bench train`: training images/s of a timm ConvNeXt with the study's
recipe (BCE, Lion, EMA 0.9999), channels_last and bf16 autocast on CUDA, eager or torch.compile.
The batch is random data already on the device: this measures the training step, not the loader.

  python3 gpu_train.py --arch convnext_base --size 512 --batch 32 --steps 30 --device cuda [--compile]

Prints one JSON line: images_per_s, step_ms, peak_mem_gib, optimizer, ... or error.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import FINDINGS, IN_CHANS, Ema, device_info, emit, fail, make_lion, make_model, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="convnext_base")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model (fwd+bwd)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    device = torch.device(a.device)
    cuda = device.type == "cuda"
    record = {"bench": "train", "impl": "pytorch-compile" if a.compile else "pytorch-eager", "arch": a.arch,
              "size": a.size, "batch": a.batch, "steps": a.steps}
    try:
        record.update(device_info(device))
        torch.manual_seed(a.seed)
        if cuda:
            torch.backends.cudnn.benchmark = True
        model = make_model(a.arch, device, channels_last=cuda)
        model.train()
        opt, opt_name = make_lion(model)
        ema = Ema(model)
        record["optimizer"] = opt_name
        step_model = torch.compile(model) if a.compile else model
        fmt = torch.channels_last if cuda else torch.contiguous_format
        x = torch.randn(a.batch, IN_CHANS, a.size, a.size, device=device).contiguous(memory_format=fmt)
        y = (torch.rand(a.batch, FINDINGS, device=device) < 0.3).float()
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def step():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = loss_fn(step_model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            ema.update(model)

        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        # torch.compile compiles in the first steps: give it more warm-up.
        seconds = timed(device, step, a.steps, a.warmup + (3 if a.compile else 0))
        record["images_per_s"] = round(a.steps * a.batch / seconds, 2)
        record["step_ms"] = round(1000 * seconds / a.steps, 2)
        if cuda:
            record["peak_mem_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        emit(record)
    except Exception as e:  # report, never a traceback wall: gpu-check.sh prints the reason
        fail(record, e)


if __name__ == "__main__":
    main()
