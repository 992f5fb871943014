"""The timm side of the forward-parity check (scripts/gpu-check.sh).

  prepare: python3 gpu_forward.py prepare DIR --arch convnext_base --size 512 --batch 4 --device cuda
    writes DIR/weights.safetensors (timm state_dict, float32, seeded random init: no hub here),
    DIR/input.safetensors ("input": [batch, 1, size, size] float32) and DIR/timm.safetensors
    ("fp32": logits in float32, "bf16": logits under bf16 autocast, both computed on the device).
  compare: python3 gpu_forward.py compare DIR OURS.safetensors
    reads "logits" from OURS (cxr's output under bf16 autocast) and passes when its error against
    timm's float32 logits is within the error of timm's own bf16 run (x3, + 1e-3 absolute).

Prints one JSON line each.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import IN_CHANS, device_info, emit, fail, load_safetensors, make_model, save_safetensors  # noqa: E402


def prepare(a):
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    record = {"check": "forward", "step": "prepare", "arch": a.arch}
    try:
        record.update(device_info(device))
        os.makedirs(a.dir, exist_ok=True)
        torch.manual_seed(a.seed)
        model = make_model(a.arch, torch.device("cpu"), channels_last=False).eval()
        save_safetensors({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(a.dir, "weights.safetensors"))
        x = torch.randn(a.batch, IN_CHANS, a.size, a.size)
        save_safetensors({"input": x}, os.path.join(a.dir, "input.safetensors"))
        model = model.to(device)
        xd = x.to(device)
        if cuda:
            model = model.to(memory_format=torch.channels_last)
            xd = xd.contiguous(memory_format=torch.channels_last)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        with torch.inference_mode():
            fp32 = model(xd).float().cpu()
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=True):
                bf16 = model(xd).float().cpu()
        save_safetensors({"fp32": fp32, "bf16": bf16}, os.path.join(a.dir, "timm.safetensors"))
        record["timm_bf16_max_abs_err"] = float((bf16 - fp32).abs().max())
        emit(record)
    except Exception as e:
        fail(record, e)


def compare(a):
    record = {"check": "forward", "step": "compare"}
    try:
        ref = load_safetensors(os.path.join(a.dir, "timm.safetensors"))
        ours = load_safetensors(a.ours)["logits"].float()
        fp32, bf16 = ref["fp32"], ref["bf16"]
        if ours.shape != fp32.shape:
            raise ValueError(f"cxr logits have shape {list(ours.shape)}, timm's {list(fp32.shape)}")
        err = float((ours - fp32).abs().max())
        timm_err = float((bf16 - fp32).abs().max())
        tol = 3 * timm_err + 1e-3
        record.update(max_abs_err=err, timm_bf16_max_abs_err=timm_err, tolerance=tol,
                      logit_scale=float(fp32.abs().max()), ok=err <= tol)
        emit(record)
        sys.exit(0 if err <= tol else 1)
    except Exception as e:
        fail(record, e)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--arch", default="convnext_base")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--device", default="cuda")
    p.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("compare")
    c.add_argument("dir")
    c.add_argument("ours")
    a = ap.parse_args()
    prepare(a) if a.cmd == "prepare" else compare(a)


if __name__ == "__main__":
    main()
