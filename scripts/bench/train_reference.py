"""PyTorch eager reference for scripts/bench/train.sh: the same loop as `cxr bench-train`
(synthetic split, the documented default augmentation on batch tensors, masked BCE, Lion from
lion-pytorch (foreach), timm ModelEmaV3), timed per epoch. Prints one JSON line."""
import argparse
import os, json, math, resource, time
import torch

# The CPU torch wheel plus PyPI's torchvision die registering fake kernels for
# torchvision::nms/qnms (imported through timm); defining their schemas first avoids it
# (the same fix as Tests/TestSupport's Python prelude).
try:
    _tv = torch.library.Library('torchvision', 'DEF')
    _tv.define('nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
    _tv.define('qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor')
except RuntimeError:
    pass  # already defined by the importer (the test prelude)

import torch.nn as nn
import torch.nn.functional as F
from lion_pytorch.foreach import Lion
from timm.utils.model_ema import ModelEmaV3


class SmallConvNet(nn.Module):
    """Same parameters and names as Bench.SmallConvNet."""
    def __init__(self, width, classes):
        super().__init__()
        self.stem = nn.Conv2d(1, width, 3, 2, 1)
        self.conv = nn.Conv2d(width, 2 * width, 3, 2, 1)
        self.gamma = nn.Parameter(torch.ones(2 * width))
        self.head = nn.Linear(2 * width, classes)

    def forward(self, x):
        h = F.gelu(self.stem(x))
        h = F.gelu(self.conv(h))
        h = F.adaptive_avg_pool2d(h, 1).flatten(1) * self.gamma
        return self.head(h)


def make_model(name, width):
    if name == 'small-cnn':
        return SmallConvNet(width, 2)
    if name.startswith('convnext'):
        import timm
        return timm.create_model(name, pretrained=False, num_classes=2, in_chans=1)
    raise SystemExit(f'unknown model {name}')


# The augmentation's generators, seeded as Train.AugmentRandom(seed:): host draws on the CPU,
# pixel noise from a second generator; each from its named stream of the seed (Common/Seeds:
# SplitMix64 keyed by the FNV-1a hash of the stream's name).
host = dev = None
_M = (1 << 64) - 1


def _mix(z):
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M
    return z ^ (z >> 31)


def derive(seed, stream, index=0):
    """Seeds(seed).seed(stream, index): the first draw of SplitMix64(seed, stream:, index:)."""
    h = 0xCBF29CE484222325
    for b in stream.encode():
        h = ((h ^ b) * 0x100000001B3) & _M
    state = _mix(seed ^ _mix((h + (index & _M) * 0x9E3779B97F4A7C15) & _M))
    state = (state + 0x9E3779B97F4A7C15) & _M
    return _mix(state)


def seed_generators(seed):
    global host, dev
    host = torch.Generator().manual_seed(derive(seed, 'augment-host'))
    dev = torch.Generator().manual_seed(derive(seed, 'augment-device'))


# AugmentOptions defaults (Sources/Train/Augment.swift)
P_HFLIP, P_VFLIP, P_NOISE, NOISE_STD, P_AFFINE, P_MIX, CUTMIX_SHARE, ALPHA = 0.5, 0.5, 0.1, 0.1, 0.5, 0.5, 0.5, 1.0


def uni(k, lo, hi):
    return (lo + (hi - lo) * torch.rand(k, dtype=torch.float64, generator=host)).tolist()


def coin(k, prob):
    return (torch.rand(k, dtype=torch.float64, generator=host) < prob).tolist()


def sel(c, x):
    return torch.tensor(c, dtype=torch.bool).view(-1, 1, 1, 1)


def flip(x, c, dim):
    if not any(c):
        return x
    f = x.flip(dim)
    return f if all(c) else torch.where(sel(c, x), f, x)


LAST_MIX = None  # the kind of mixing the last batch got (for the parity test)


def augment(x, y, m):
    global LAST_MIX
    b, _, h, w = x.shape
    ch, cv = coin(b, P_HFLIP), coin(b, P_VFLIP)
    ca = coin(b, P_AFFINE); ang = uni(b, -25 * math.pi / 180, 25 * math.pi / 180); sc = uni(b, 0.9, 1.1)
    tx = uni(b, -0.1, 0.1); ty = uni(b, -0.1, 0.1)
    cn = coin(b, P_NOISE); std = uni(b, 0, NOISE_STD)
    mix = None
    if coin(1, P_MIX)[0]:
        kind = 'cutmix' if coin(1, CUTMIX_SHARE)[0] else 'mixup'
        perm = torch.randperm(b, generator=host)
        g1 = torch._standard_gamma(torch.full((b,), ALPHA), generator=host)
        g2 = torch._standard_gamma(torch.full((b,), ALPHA), generator=host)
        lam = (g1 / (g1 + g2)).tolist()
        boxes = None
        if kind == 'cutmix':
            ys = torch.randint(0, h, (b,), generator=host).tolist(); xs = torch.randint(0, w, (b,), generator=host).tolist()
            boxes = []
            for i in range(b):
                side = math.sqrt(1 - lam[i])
                y1, x1 = min(math.ceil(ys[i] + h * side), h), min(math.ceil(xs[i] + w * side), w)
                boxes.append((ys[i], y1, xs[i], x1))
                lam[i] = 1 - (y1 - ys[i]) * (x1 - xs[i]) / (h * w)
        mix = (kind, perm, lam, boxes)
    LAST_MIX = mix[0] if mix else None
    x = flip(x, ch, [3]); x = flip(x, cv, [2])
    if any(ca):
        th = []
        for i in range(b):
            if not ca[i]:
                th += [1, 0, 0, 0, 1, 0]; continue
            c, s_ = math.cos(ang[i]) / sc[i], math.sin(ang[i]) / sc[i]
            th += [c, -s_ * h / w, 2 * tx[i], s_ * w / h, c, 2 * ty[i]]
        theta = torch.tensor(th, dtype=torch.float32).view(b, 2, 3)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.where(sel(ca, x), F.grid_sample(x, grid, 'bilinear', 'reflection', align_corners=False), x)
    if any(cn):
        scale = torch.tensor([sd if c else 0.0 for c, sd in zip(cn, std)], dtype=torch.float32).view(b, 1, 1, 1)
        x = x + torch.randn(x.shape, generator=dev) * scale
    if mix is not None:
        kind, perm, lam, boxes = mix
        xp, yp, mp = x.index_select(0, perm), y.index_select(0, perm), m.index_select(0, perm)
        wk = torch.tensor(lam, dtype=torch.float32).view(b, 1)
        if kind == 'mixup':
            x = xp + (x - xp) * wk.view(b, 1, 1, 1)
        else:
            rows = torch.arange(h, dtype=torch.float32).view(1, h, 1); cols = torch.arange(w, dtype=torch.float32).view(1, 1, w)
            bx = torch.tensor(boxes, dtype=torch.float32)
            y0, y1, x0, x1 = (bx[:, i].view(b, 1, 1) for i in range(4))
            box = (~(rows < y0) & (rows < y1)) & (~(cols < x0) & (cols < x1))
            x = torch.where(box.unsqueeze(1), xp, x)
        y = yp + (y - yp) * wk
        m = m.maximum((wk == 0).float()) * mp.maximum((wk == 1).float())
    return x, y, m


def rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--model', default='small-cnn')
    p.add_argument('--size', type=int, default=64)
    p.add_argument('--images', type=int, default=512)
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--width', type=int, default=32)
    p.add_argument('--threads', type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    # Synthetic split (content does not matter for timing; shapes and work do).
    g = torch.Generator().manual_seed(0)
    n, s = a.images, a.size
    X = torch.randn(n, 1, s, s, generator=g) * 0.5
    Y = (torch.rand(n, 2, generator=g) < 0.5).float()
    M = torch.ones(n, 2)
    model = make_model(a.model, a.width)
    # Under torchrun: PyTorch DDP (Gloo, 25 MiB buckets), each rank every world-th batch of the
    # epoch's order (what cxr's sharding does), the same global batch of `world` micro-batches.
    world, rank = int(os.environ.get('WORLD_SIZE', '1')), int(os.environ.get('RANK', '0'))
    train_model = model
    if world > 1:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel
        dist.init_process_group('gloo')
        train_model = DistributedDataParallel(model, bucket_cap_mb=25)
    opt = Lion(model.parameters(), lr=1e-5, betas=(0.9, 0.99), weight_decay=3e-4)
    ema = ModelEmaV3(model, decay=0.9999)
    seed_generators(0)
    epoch_seconds, epoch_cpu, rss, peak = [], [], [], []
    step = 0
    for epoch in range(a.epochs):
        t0, c0 = time.perf_counter(), cpu()
        order = torch.randperm(n, generator=torch.Generator().manual_seed(1 + 1_000_003 * (epoch + 1)))
        batches = n // a.batch // world * world
        for bi in range(rank, batches, world):
            idx = order[bi * a.batch:(bi + 1) * a.batch]
            x, y, m = augment(X.index_select(0, idx), Y.index_select(0, idx), M.index_select(0, idx))
            logits = train_model(x)
            each = F.binary_cross_entropy_with_logits(logits, y, reduction='none')
            loss = (each * m).sum() / m.sum().clamp(min=1)
            lv = loss.item()
            if not math.isfinite(lv):
                raise SystemExit('non-finite loss')
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            ema.update(model, step=step)
        epoch_seconds.append(time.perf_counter() - t0)
        epoch_cpu.append(cpu() - c0)
        rss.append(rss_mib())
        peak.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    if rank != 0:
        return
    print(json.dumps({'side': 'pytorch', 'world': world, 'model': a.model, 'size': a.size, 'images': a.images, 'batch': a.batch,
                      'threads': torch.get_num_threads(), 'epoch_seconds': epoch_seconds, 'epoch_cpu_seconds': epoch_cpu, 'rss_mib': rss,
                      'peak_rss_mib': peak}, sort_keys=True))


if __name__ == '__main__':
    main()
