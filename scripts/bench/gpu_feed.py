"""PyTorch counterpart of `cxr bench feed`: host-to-device images/s the way a torch training loop
feeds a GPU (the DataLoader's pin_memory, then non_blocking copies on a side stream that the
compute stream waits for, as timm's PrefetchLoader does), with the same value check: the compute
stream sums every batch and the sums must equal the host's.

  python3 gpu_feed.py --batch 32 --size 512 --batches 50 --device cuda

Prints one JSON line: images_per_s, gib_per_s, values_ok ... or error.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import device_info, emit, fail  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    device = torch.device(a.device)
    cuda = device.type == "cuda"
    record = {"bench": "feed", "impl": "pytorch", "batch": a.batch, "size": a.size}
    try:
        record.update(device_info(device))
        hosts = [(torch.rand(a.batch, 1, a.size, a.size), torch.arange(a.batch)) for _ in range(4)]
        host_sums = [float(h[0].double().sum()) for h in hosts]
        side = torch.cuda.Stream(device) if cuda else None

        def send(batch):
            if not cuda:
                return batch
            pinned = [t.pin_memory() for t in batch]  # what DataLoader(pin_memory=True) does
            with torch.cuda.stream(side):
                out = [t.to(device, non_blocking=True) for t in pinned]
            current = torch.cuda.current_stream(device)
            current.wait_stream(side)
            for t in out:
                t.record_stream(current)
            return out

        for i in range(3):
            send(hosts[i % 4])
        if cuda:
            torch.cuda.synchronize(device)
        sums = []
        t0 = time.perf_counter()
        for i in range(a.batches):
            sums.append(send(hosts[i % 4])[0].double().sum())
        if cuda:
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - t0
        worst = max(abs(float(s) - host_sums[i % 4]) / max(1.0, abs(host_sums[i % 4])) for i, s in enumerate(sums))
        images = a.batches * a.batch
        record.update(images_per_s=round(images / seconds, 1),
                      gib_per_s=round(images * a.size * a.size * 4 / 2**30 / seconds, 2), values_ok=worst < 1e-9)
        emit(record)
        sys.exit(0 if worst < 1e-9 else 1)
    except Exception as e:
        fail(record, e)


if __name__ == "__main__":
    main()
