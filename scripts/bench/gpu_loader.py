"""PyTorch reference for `cxr bench loader`: images/s that a torch DataLoader with all CPU cores
delivers from JPEG files (decode with PIL, grayscale, resize the longest side to SIZE with
antialiasing, pad to SIZE x SIZE, scale to [-1, 1], random flips), batched and pinned.

  python3 gpu_loader.py DIR --size 512 --batch 32 --batches 40 [--workers N] [--prefetch P]

DIR is searched recursively for .jpg files (e.g. the mimic/ folder of `cxr synth`); epochs repeat
as needed. WORKERS processes decode, PREFETCH batches ahead per worker (prefetch_factor; cxr's
loader.prefetch means the same).

What is timed (the same in `cxr bench loader`, Sources/Bench/BenchLoader.swift): the first WORKERS
batches are untimed, one per worker (start-up and a first decode each; 1 batch with --workers 0);
the clock starts when the last of them arrives, so every worker is up and busy with its next
batch, and stops when BATCHES more batches have arrived; images/s counts those batches' images.
(The clock used to start after the first batch, when the other workers' first batches were nearly
done: up to WORKERS-1 of the timed batches came almost free.)
Prints one JSON line: images_per_s, workers, prefetch, untimed_batches, files, ... or error.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gpu_common import emit, fail  # noqa: E402


class JPEGs(torch.utils.data.Dataset):
    def __init__(self, files, size):
        self.files, self.size = files, size

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with Image.open(self.files[i]) as im:
            im = im.convert("L")
            w, h = im.size
            scale = self.size / max(w, h)
            nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
            im = im.resize((nw, nh), Image.BILINEAR)
            a = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
        out = np.full((self.size, self.size), -1.0, dtype=np.float32)
        top, left = (self.size - nh) // 2, (self.size - nw) // 2
        out[top:top + nh, left:left + nw] = a
        if np.random.rand() < 0.5:
            out = out[:, ::-1]
        if np.random.rand() < 0.5:
            out = out[::-1, :]
        return torch.from_numpy(np.ascontiguousarray(out))[None], torch.zeros(2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--prefetch", type=int, default=2, help="batches ahead per worker (prefetch_factor)")
    a = ap.parse_args()
    untimed = max(1, a.workers)  # one batch per worker; see the header
    record = {"bench": "loader", "impl": "pytorch-dataloader", "size": a.size, "batch": a.batch,
              "batches": a.batches, "workers": a.workers, "prefetch": a.prefetch, "untimed_batches": untimed,
              "torch": torch.__version__}
    try:
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(a.dir) for f in fs if f.lower().endswith(".jpg"))
        if not files:
            raise FileNotFoundError(f"no .jpg files under {a.dir}")
        record["files"] = len(files)
        loader = torch.utils.data.DataLoader(
            JPEGs(files, a.size), batch_size=a.batch, shuffle=True, num_workers=a.workers, drop_last=False,
            pin_memory=torch.cuda.is_available(), persistent_workers=a.workers > 0,
            prefetch_factor=a.prefetch if a.workers > 0 else None)
        delivered, images, epochs, t0 = 0, 0, 0, None
        while delivered < untimed + a.batches:
            epochs += 1
            for x, _ in loader:
                delivered += 1
                if delivered == untimed:
                    t0 = time.perf_counter()  # every worker has delivered a batch
                elif delivered > untimed:
                    images += x.shape[0]
                if delivered >= untimed + a.batches:
                    break
        seconds = time.perf_counter() - t0
        record["images_per_s"] = round(images / seconds, 2)
        record["images"] = images
        record["epochs"] = epochs
        emit(record)
    except Exception as e:
        fail(record, e)


if __name__ == "__main__":
    main()
