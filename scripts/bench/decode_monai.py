"""Reference side of scripts/bench/decode.sh: makes the test JPEGs, times the study's MONAI
pipeline single-threaded on them, checks our outputs against MONAI's, prints ratios."""
import json, os, sys, time
import numpy as np

def make(folder, n):
    from PIL import Image
    rng = np.random.default_rng(2024)
    h, w = 3056, 2544
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        path = os.path.join(folder, f"cxr{i}.jpg")
        if os.path.exists(path):
            continue
        # A chest-radiograph-like field: bright mediastinum and ribs-ish bands on a darker
        # lung field, smooth gradients, plus film/sensor noise (so entropy coding is realistic).
        cx = w / 2 + rng.normal(0, 40)
        body = np.exp(-((x - cx) / (w * 0.12)) ** 2) * 120
        lungs = -60 * np.exp(-(((x - cx) / (w * 0.28)) ** 2 + ((y - h * 0.45) / (h * 0.3)) ** 2))
        ribs = 18 * np.sin(y / (45 + 5 * i) + np.abs(x - cx) / 300) * (np.abs(x - cx) > w * 0.08)
        grad = 60 * y / h
        img = 90 + body + lungs + ribs + grad + rng.normal(0, 3.5, (h, w))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(path, quality=95)

def run(cxr_jsonl, dump, rounds, files):
    import torch
    torch.set_num_threads(1)
    from monai.transforms import Compose, LoadImage, Resize, SpatialPad, HistogramNormalize, ScaleIntensityRange
    t = Compose([LoadImage(image_only=True, ensure_channel_first=True),
                 Resize(spatial_size=512, size_mode="longest", mode="area"), SpatialPad(spatial_size=(512, 512)),
                 HistogramNormalize(num_bins=256, min=0, max=255),
                 ScaleIntensityRange(a_min=0, a_max=255, b_min=-1, b_max=1)])
    t(files[0])  # warm up
    best = float("inf")
    outs = []
    for r in range(rounds):
        t0 = time.perf_counter()
        outs = [t(f) for f in files]
        best = min(best, time.perf_counter() - t0)
    monai_ips = len(files) / best
    # Accuracy of our DCT-scaled path against MONAI's full-resolution decode (MONAI's PIL
    # reader gives (W, H): transpose back).
    diffs = []
    for i, o in enumerate(outs):
        ref = np.asarray(o)[0].T
        ours = np.fromfile(os.path.join(dump, f"{i}.f32"), dtype=np.float32).reshape(512, 512)
        diffs.append(np.abs(ours - ref))
    d = np.stack(diffs)
    res = {json.loads(l)["impl"]: json.loads(l) for l in open(cxr_jsonl) if l.strip()}
    ours, floor, cache = res["cxr"]["images_per_s"], res["floor"]["images_per_s"], res["cxr-cache"]["images_per_s"]
    print(json.dumps({"bench": "decode", "impl": "monai", "images_per_s": round(monai_ips, 2),
                      "ms_per_image": round(best / len(files) * 1000, 2)}))
    print(f"files: {len(files)} x 2544x3056 JPEG q95 ({np.mean([os.path.getsize(f) for f in files]) / 1e6:.2f} MB avg), 1 thread each")
    print(f"cxr vs MONAI:        {ours / monai_ips:.2f}x  (target >= 2.5x)")
    print(f"cxr vs floor:        {ours / floor:.3f} of the scaled-decode-alone rate (target >= 0.90)")
    print(f"cache read:          {cache:.0f} images/s per core ({res['cxr-cache']['ms_per_image']} ms/image)")
    print(f"cxr output vs MONAI [-1,1]: mean |diff| {d.mean():.4f}, p99 {np.percentile(d, 99):.4f}, max {d.max():.4f}"
          " (DCT-domain 1/4 decode + area vs full decode + area)")

if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], int(sys.argv[3]))
    else:
        run(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5:])
