#!/usr/bin/env bash
# One ConvNeXt training step (forward, BCE loss, backward) on the CPU: cxr against timm in
# PyTorch eager, same machine, same threads, in one run. Both run as long-lived processes and
# a driver alternates single steps between them (the order swaps every pair), so that load
# from other processes on a shared machine hits both alike. Reported: median step time of
# each side and the median of the per-pair ratios.
# Usage: scripts/bench/model.sh   (env: ARCH=convnext_tiny BATCH=8 SIZE=224 THREADS=2 PAIRS=10 WARMUP=2)
set -euo pipefail
cd "$(dirname "$0")/../.."
arch=${ARCH:-convnext_tiny}; batch=${BATCH:-8}; size=${SIZE:-224}; threads=${THREADS:-2}
pairs=${PAIRS:-10}; warmup=${WARMUP:-2}; in_chans=3; classes=2
make -s build >/dev/null
py=.deps/venv/bin/python
export OMP_NUM_THREADS=$threads
$py - "$arch" "$batch" "$size" "$threads" "$pairs" "$warmup" "$in_chans" "$classes" <<'PY'
import statistics, subprocess, sys
arch, batch, size, threads, pairs, warmup, in_chans, classes = sys.argv[1:9]
ours = [".build/release/cxr", "inspect", "model", "--arch", arch, "--classes", classes, "--in-chans", in_chans,
        "--size", size, "--batch", batch, "--warmup", warmup, "--threads", threads, "--step-on-stdin"]
theirs = [sys.executable, "scripts/bench/model_timm.py", arch, batch, size, in_chans, classes, "1", warmup, threads, "--serve"]
procs = {name: subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
         for name, cmd in (("cxr", ours), ("pytorch", theirs))}
for p in procs.values():
    while (line := p.stdout.readline()) and line.strip() != "ready":
        if not line:
            sys.exit("benchmark process ended before it was ready")
def step(name):
    p = procs[name]
    p.stdin.write("step\n")
    return float(p.stdout.readline())
times = {"cxr": [], "pytorch": []}
for i in range(int(pairs)):
    for name in (("cxr", "pytorch") if i % 2 == 0 else ("pytorch", "cxr")):
        times[name].append(step(name))
for p in procs.values():
    p.stdin.close(); p.wait()
ratios = [o / t for o, t in zip(times["cxr"], times["pytorch"])]
med = {k: statistics.median(v) for k, v in times.items()}
print("per-pair ms (cxr, pytorch):", ", ".join(f"({o:.0f}, {t:.0f})" for o, t in zip(times["cxr"], times["pytorch"])))
print(f"{arch} train step, batch {batch}, {size}x{size}, {threads} threads, {pairs} interleaved pairs: "
      f"cxr median {med['cxr']:.0f} ms, PyTorch eager median {med['pytorch']:.0f} ms, "
      f"median per-pair ratio cxr/PyTorch = {statistics.median(ratios):.3f}")
PY
