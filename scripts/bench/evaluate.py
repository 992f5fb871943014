"""CANDID-PTX-sized evaluation: `cxr evaluate` against scikit-learn in a Python loop, one run.

19,237 cases, 2 findings, 7 models x 8 references, N bootstrap rounds (default 1000). Data are
synthetic with CANDID-PTX-like prevalences. scikit-learn is timed on a subset of rounds per
combination (--sk-rounds) and extrapolated linearly to the full count; the report says so.
Also checks that every point estimate in cxr's metrics.csv equals scikit-learn's (1e-9).
"""
import argparse, csv, os, subprocess, sys, tempfile, time
import numpy as np
from sklearn.metrics import roc_auc_score, average_precision_score

ap = argparse.ArgumentParser()
ap.add_argument("--cxr", required=True)
ap.add_argument("--cases", type=int, default=19237)
ap.add_argument("--models", type=int, default=7)
ap.add_argument("--references", type=int, default=8)
ap.add_argument("--rounds", type=int, default=1000)
ap.add_argument("--sk-rounds", type=int, default=10, help="sklearn rounds timed per combination (extrapolated)")
ap.add_argument("--subgroups", action="store_true",
                help="also time the same evaluation stratified by a chest-tube-like attribute (yes/no) and a 3-valued site")
args = ap.parse_args()

rng = np.random.default_rng(0)
n = args.cases
findings = ["Pneumothorax", "Fracture"]
prevalence = [0.17, 0.035]
work = tempfile.mkdtemp(prefix="cxr-bench-eval-")
ids = [f"1.2.826.0.1.3680043.8.498.{10**11 + i}" for i in range(n)]
truth = np.stack([rng.random(n) < p for p in prevalence], axis=1)

refs = []
for r in range(args.references):
    # References disagree with the truth on a few percent of cases, like report-derived labels.
    flip = rng.random((n, 2)) < (0.0 if r == 0 else 0.03)
    lab = truth ^ flip
    refs.append(lab)
    with open(f"{work}/ref{r}.csv", "w") as f:
        f.write("id," + ",".join(findings) + "\n")
        for i in range(n):
            f.write(ids[i] + "," + ",".join("1.0" if v else "" for v in lab[i]) + "\n")
preds = []
for m in range(args.models):
    logit = truth * (1.0 + 0.25 * m) + rng.normal(size=(n, 2))
    p = np.round(1 / (1 + np.exp(-logit)), 6)  # 6 decimals, as prediction CSVs are written: ties happen
    preds.append(p)
    with open(f"{work}/pred{m}.csv", "w") as f:
        f.write("id,path," + ",".join(findings) + "\n")
        for i in range(n):
            f.write(f"{ids[i]},/data/{ids[i]}.dcm,{p[i,0]},{p[i,1]}\n")

cmd = [args.cxr, "evaluate", "--bootstrap", str(args.rounds), "--seed", "1", "--out", f"{work}/out"]
cmd += sum([["--predictions", f"m{m}={work}/pred{m}.csv"] for m in range(args.models)], [])
cmd += sum([["--reference", f"r{r}={work}/ref{r}.csv"] for r in range(args.references)], [])
t0 = time.perf_counter()
subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
ours = time.perf_counter() - t0
stratified = None
if args.subgroups:
    # Tubes mostly with pneumothoraces, as in CANDID-PTX.
    tube = rng.random(n) < np.where(truth[:, 0], 0.5, 0.03)
    site = rng.integers(0, 3, size=n)
    with open(f"{work}/attrs.csv", "w") as f:
        f.write("id,chest_tube,site\n")
        for i in range(n):
            f.write(f"{ids[i]},{'yes' if tube[i] else 'no'},s{site[i]}\n")
    t0 = time.perf_counter()
    stratified_cmd = [f"{work}/out-subgroups" if c == f"{work}/out" else c for c in cmd]
    subprocess.run(stratified_cmd + ["--subgroups", f"{work}/attrs.csv"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stratified = time.perf_counter() - t0

# scikit-learn: per model, reference and finding, the point estimate plus bootstrap rounds
# (resample indices, redraw rounds missing a class), timed over --sk-rounds rounds.
combos = 0
t0 = time.perf_counter()
point = {}
for r, lab in enumerate(refs):
    for k, f in enumerate(findings):
        y = lab[:, k]
        for m, p in enumerate(preds):
            s = p[:, k]
            point[(f"m{m}", f"r{r}", f, "auroc")] = roc_auc_score(y, s)
            point[(f"m{m}", f"r{r}", f, "auprc")] = average_precision_score(y, s)
            done = 0
            brng = np.random.default_rng(combos)
            while done < args.sk_rounds:
                idx = brng.integers(0, n, n)
                yb = y[idx]
                if yb.all() or not yb.any():
                    continue
                roc_auc_score(yb, s[idx]); average_precision_score(yb, s[idx])
                done += 1
            combos += 1
sk_measured = time.perf_counter() - t0
sk_full = sk_measured * (args.rounds + 1) / (args.sk_rounds + 1)

worst = 0.0
with open(f"{work}/out/metrics.csv") as fh:
    rows = list(csv.DictReader(fh))
for row in rows:
    worst = max(worst, abs(float(row["value"]) - point[(row["model"], row["reference"], row["finding"], row["metric"])]))
assert len(rows) == len(point), (len(rows), len(point))
assert worst < 1e-9, worst

print(f"cases {n}, findings {len(findings)}, models {args.models}, references {args.references}, rounds {args.rounds}, combinations {combos}, cores {os.cpu_count()}")
print(f"cxr evaluate (release, whole command: read CSVs, AUROC/AUPRC + CIs, DeLong + paired bootstrap, reports): {ours:.2f} s")
if stratified is not None:
    print(f"cxr evaluate --subgroups (chest_tube yes/no + site of 3 values, 5 subgroups per model x reference x finding): {stratified:.2f} s")
print(f"scikit-learn loop: {sk_measured:.2f} s for {args.sk_rounds} rounds per combination (+ point estimates); "
      f"extrapolated to {args.rounds} rounds: {sk_full:.1f} s ({sk_full / combos / (args.rounds + 1) * 1000:.2f} ms per AUROC+AUPRC round)")
print(f"speed-up: {sk_full / ours:.0f}x   (point estimates equal scikit-learn's: max |diff| {worst:.1e})")
