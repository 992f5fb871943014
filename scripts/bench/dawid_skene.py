"""Dawid-Skene EM: `cxr labels compare` against the same EM written in numpy, in one run.

7 labellers x 227,827 studies (MIMIC-CXR's count) x 2 findings, synthetic labels with known
sensitivity/specificity (prevalence 8 % and 3 %; 2 % of cells blank, which a label file
means as negative: both sides read them so). Both sides: start
from the soft majority vote, rates clipped to [1e-9, 1 - 1e-9], stop when no rate moves by more
than 1e-10 in an iteration. Timed: the fit of each finding (cxr's own timer around
grouping + EM, read from comparison.json; numpy's around the same function, best of --repeats),
numpy also with the items grouped by pattern as cxr groups them), and the whole command (reading 7 CSVs, pairwise statistics, writing outputs, --bootstrap 0)
against numpy's CSV read (np.loadtxt) + fit. Checks the two agree to 1e-9 with equal iterations.
"""
import argparse, json, os, subprocess, tempfile, time
import numpy as np

ap = argparse.ArgumentParser()
ap.add_argument("--cxr", required=True)
ap.add_argument("--items", type=int, default=227827)
ap.add_argument("--repeats", type=int, default=3)
args = ap.parse_args()

def dawid_skene(L, max_iter=1000, tol=1e-10, floor=1e-9):
    keep = (L >= 0).any(axis=1)
    X = L[keep]
    pos = (X == 1).astype(float); neg = (X == 0).astype(float); lab = pos + neg
    T = pos.sum(1) / lab.sum(1)
    ll = -np.inf; it = 0; last = None
    while it < max_iter:
        it += 1
        prev = float(np.clip(T.mean(), floor, 1 - floor))
        sens = np.clip((T[:, None] * pos).sum(0) / (T[:, None] * lab).sum(0), floor, 1 - floor)
        spec = np.clip(((1 - T)[:, None] * neg).sum(0) / ((1 - T)[:, None] * lab).sum(0), floor, 1 - floor)
        a = np.log(prev) + pos @ np.log(sens) + neg @ np.log(1 - sens)
        b = np.log(1 - prev) + pos @ np.log(1 - spec) + neg @ np.log(spec)
        T = 1 / (1 + np.exp(b - a))
        ll = float(np.logaddexp(a, b).sum())
        rates = np.concatenate([[prev], sens, spec])
        if it > 1 and np.abs(rates - last).max() <= tol:
            break
        last = rates
    return prev, sens, spec, it

def dawid_skene_grouped(L, max_iter=1000, tol=1e-10, floor=1e-9):
    """The same EM over distinct label patterns weighted by their counts (what cxr does)."""
    keep = (L >= 0).any(axis=1)
    X, w = np.unique(L[keep], axis=0, return_counts=True)
    w = w.astype(float)
    pos = (X == 1).astype(float); neg = (X == 0).astype(float); lab = pos + neg
    T = pos.sum(1) / lab.sum(1)
    it = 0; last = None
    while it < max_iter:
        it += 1
        wt, wf = w * T, w * (1 - T)
        prev = float(np.clip(wt.sum() / w.sum(), floor, 1 - floor))
        sens = np.clip((wt[:, None] * pos).sum(0) / (wt[:, None] * lab).sum(0), floor, 1 - floor)
        spec = np.clip((wf[:, None] * neg).sum(0) / (wf[:, None] * lab).sum(0), floor, 1 - floor)
        a = np.log(prev) + pos @ np.log(sens) + neg @ np.log(1 - sens)
        b = np.log(1 - prev) + pos @ np.log(1 - spec) + neg @ np.log(spec)
        T = 1 / (1 + np.exp(b - a))
        rates = np.concatenate([[prev], sens, spec])
        if it > 1 and np.abs(rates - last).max() <= tol:
            break
        last = rates
    return prev, sens, spec, it

rng = np.random.default_rng(0)
n, L = args.items, 7
findings = ["Pneumothorax", "Fracture"]
prevalence = [0.08, 0.03]
sens = np.array([[0.95, 0.9, 0.7, 0.85, 0.92, 0.6, 0.88], [0.8, 0.85, 0.5, 0.75, 0.9, 0.45, 0.7]])
spec = np.array([[0.97, 0.99, 0.9, 0.98, 0.95, 0.99, 0.93], [0.99, 0.98, 0.99, 0.97, 0.96, 0.995, 0.98]])
labels = np.empty((2, n, L), dtype=np.int64)
for f in range(2):
    truth = rng.random(n) < prevalence[f]
    u = rng.random((n, L))
    said = np.where(truth[:, None], u < sens[f], u >= spec[f])
    labels[f] = np.where(rng.random((n, L)) < 0.02, -1, said.astype(np.int64))
work = tempfile.mkdtemp(prefix="cxr-bench-ds-")
cells = {1: "1.0", 0: "0.0", -1: ""}
files = []
for j in range(L):
    path = f"{work}/labeller{j}.csv"
    with open(path, "w") as fh:
        fh.write("study_id,Pneumothorax,Fracture\n")
        for i in range(n):
            fh.write(f"{50000000 + i},{cells[labels[0, i, j]]},{cells[labels[1, i, j]]}\n")
    files.append(path)
# A blank cell is "not mentioned" (negative) in a label file; the numpy side must see the same.
seen = np.where(labels < 0, 0, labels)

out = f"{work}/out"
cmd = [args.cxr, "labels", "compare", "--bootstrap", "0", "--out", out] + sum([["--schema", f"l{j}={p}"] for j, p in enumerate(files)], [])
best_cmd = float("inf"); fit_seconds = None
for _ in range(args.repeats):
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    best_cmd = min(best_cmd, time.perf_counter() - t0)
    doc = json.load(open(f"{out}/comparison.json"))
    s = sum(f["seconds"] for f in doc["fits"])
    fit_seconds = s if fit_seconds is None else min(fit_seconds, s)

best_np = float("inf")
for _ in range(args.repeats):
    t0 = time.perf_counter()
    res = [dawid_skene(seen[f]) for f in range(2)]
    best_np = min(best_np, time.perf_counter() - t0)
best_grouped = float("inf")
for _ in range(args.repeats):
    t0 = time.perf_counter()
    grouped = [dawid_skene_grouped(seen[f]) for f in range(2)]
    best_grouped = min(best_grouped, time.perf_counter() - t0)
best_np_all = float("inf")
for _ in range(args.repeats):
    t0 = time.perf_counter()
    cols = [np.loadtxt(p, delimiter=",", skiprows=1, usecols=(1, 2), converters={1: lambda s: float(s or 0), 2: lambda s: float(s or 0)}) for p in files]
    _ = [dawid_skene(np.stack([c[:, f] for c in cols], axis=1).astype(np.int64)) for f in range(2)]
    best_np_all = min(best_np_all, time.perf_counter() - t0)

# Parity: same iterations, same estimates.
worst = 0.0
for f, fit in enumerate(doc["fits"]):
    prev, s_, p_, it = res[f]
    assert fit["iterations"] == it, (fit["iterations"], it)
    assert grouped[f][3] == it and abs(grouped[f][0] - prev) < 1e-9
    est = {(e["labeller"], e["metric"]): e["value"] for e in doc["estimates"] if e["finding"] == findings[f]}
    worst = max(worst, abs(est[("(all labellers)", "prevalence")] - prev))
    for j in range(L):
        worst = max(worst, abs(est[(f"l{j}", "sensitivity")] - s_[j]), abs(est[(f"l{j}", "specificity")] - p_[j]))
assert worst < 1e-9, worst
print(f"{L} labellers x {n} studies x 2 findings; EM iterations {[f['iterations'] for f in doc['fits']]}; max |cxr - numpy| = {worst:.1e}")
print(f"fit (group + EM, both findings): cxr {fit_seconds*1000:.1f} ms, numpy {best_np*1000:.1f} ms, ratio numpy/cxr {best_np/fit_seconds:.1f}x")
print(f"fit, numpy grouped by pattern as cxr does (np.unique + weighted EM): {best_grouped*1000:.1f} ms, ratio numpy/cxr {best_grouped/fit_seconds:.1f}x")
print(f"whole command (read 7 CSVs, fit, pairwise, write): cxr {best_cmd:.2f} s; numpy loadtxt + fit {best_np_all:.2f} s, ratio {best_np_all/best_cmd:.1f}x")
