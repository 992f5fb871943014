"""Index build benchmark: cxr against a plain-Python reference, on MIMIC-sized files.

Generates (once, cached in the work folder) a MIMIC-CXR-JPG metadata file of 377,110 rows
and a CheXpert label file of 227,827 rows, gzipped like PhysioNet's, with the real column
layout and view mix (243,334 frontal images). Then times, best of N runs each (in-process CPU and wall seconds; on a shared machine the CPU
figure is the steady one):
  cxr   `cxr inspect data --mimic ROOT --schema chexpert=LABELS --no-check-files --timing`
        (read + gunzip metadata, keep PA/AP, build paths, read labels, join by
        subject+study, make the patient split, count per split and finding, print)
  ref   the same steps in Python's stdlib (gzip + csv), as a typical study script does
        (pandas is not in the project venv).
Usage: scripts/bench/index.py CXR_BINARY WORKDIR [RUNS]
"""
import csv, gzip, io, json, os, random, subprocess, sys, time

META_ROWS, LABEL_ROWS, SUBJECTS = 377_110, 227_827, 65_379
FRONTAL = 243_334
FINDINGS = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
            "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
            "Pneumothorax", "Support Devices"]


def generate(root):
    meta = os.path.join(root, "mimic-cxr-2.0.0-metadata.csv.gz")
    labels = os.path.join(root, "mimic-cxr-2.0.0-chexpert.csv.gz")
    if os.path.exists(meta) and os.path.exists(labels):
        return meta, labels
    os.makedirs(root, exist_ok=True)
    rng = random.Random(0)
    # Studies spread over subjects; every subject has at least one study.
    subjects = [10_000_000 + rng.randrange(0, 10_000_000) for _ in range(SUBJECTS)]
    subjects = sorted(set(subjects))
    while len(subjects) < SUBJECTS:
        subjects.append(subjects[-1] + 1)
    study_subject = subjects + [rng.choice(subjects) for _ in range(LABEL_ROWS - SUBJECTS)]
    studies = sorted({50_000_000 + i * 43 + rng.randrange(43): None for i in range(LABEL_ROWS)})
    pairs = sorted(zip(study_subject, studies))
    # Images per study: each study gets one, the rest spread randomly; frontal views first.
    per_study = [1] * LABEL_ROWS
    for _ in range(META_ROWS - LABEL_ROWS):
        per_study[rng.randrange(LABEL_ROWS)] += 1
    other = ["LATERAL"] * 82_000 + ["LL"] * 35_000 + [""] * (META_ROWS - FRONTAL - 117_000)
    views = ["PA" if rng.random() < 0.4 else "AP" for _ in range(FRONTAL)] + other
    rng.shuffle(views)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
                "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
                "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"])
    k = 0
    for (subject, study), n in zip(pairs, per_study):
        for _ in range(n):
            dicom = "-".join("%08x" % rng.getrandbits(32) for _ in range(5))
            v = views[k]; k += 1
            w.writerow([dicom, subject, study, "CHEST (PA AND LAT)", v, 3056, 2544, 21800506, "213014.531",
                        "CHEST (PA AND LAT)", "postero-anterior" if v == "PA" else "antero-posterior", "Erect"])
    with gzip.open(meta, "wt", compresslevel=6) as f:
        f.write(buf.getvalue())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["subject_id", "study_id"] + FINDINGS)
    for subject, study in pairs:
        w.writerow([subject, study] + [rng.choice(["", "", "", "", "0.0", "1.0", "-1.0"]) for _ in FINDINGS])
    with gzip.open(labels, "wt", compresslevel=6) as f:
        f.write(buf.getvalue())
    return meta, labels


def reference(root, meta, labels):
    """The same steps as `cxr inspect data`, in the Python standard library."""
    records = []
    with gzip.open(meta, "rt", newline="") as f:
        for row in csv.DictReader(f):
            if row["ViewPosition"] in ("PA", "AP"):
                s, st, d = row["subject_id"], row["study_id"], row["dicom_id"]
                records.append((d, f"{root}/files/p{s[:2]}/p{s}/s{st}/{d}.jpg", s, st))
    table = {}
    with gzip.open(labels, "rt", newline="") as f:
        for row in csv.DictReader(f):
            table[(row["subject_id"], row["study_id"])] = [row["Pneumothorax"], row["Fracture"]]
    subjects = sorted({r[2] for r in records})
    random.Random(0).shuffle(subjects)
    tune = set(subjects[:round(len(subjects) * 0.2)])
    counts = {}
    labelled = 0
    for d, p, s, st in records:
        v = table.get((s, st))
        if v is None:
            continue
        labelled += 1
        side = "tune" if s in tune else "train"
        for i, x in enumerate(v):
            for key in ((side, i, x), ("all", i, x)):
                counts[key] = counts.get(key, 0) + 1
    return labelled


def main():
    cxr, work = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    root = os.path.join(work, "mimic")
    meta, labels = generate(root)
    cmd = [cxr, "inspect", "data", "--mimic", root, "--schema", f"chexpert={labels}", "--no-check-files", "--timing"]

    ours, out = [], ""
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, check=True, capture_output=True, text=True)
        process_wall = time.perf_counter() - t0
        steps = {l.split()[1]: (float(l.split()[2]), float(l.split()[3]))
                 for l in p.stderr.splitlines() if l.startswith("time ")}
        ours.append((steps["total"][1], steps["total"][0], process_wall, steps))
        out = p.stdout
    theirs = []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        labelled = reference(root, meta, labels)
        theirs.append((time.process_time() - c0, time.perf_counter() - w0))
    o, t = min(ours), min(theirs)
    assert f"{FRONTAL:,} images" in out.splitlines()[0], out.splitlines()[0]
    assert f"{labelled:,} images labelled" in out, "reference and cxr disagree on the labelled count"
    print(out, end="")
    print("cxr steps (wall s, cpu s): " + ", ".join(f"{k} {w:.3f}/{c:.3f}" for k, (w, c) in o[3].items()))
    print(json.dumps({"bench": "index", "metadata_rows": META_ROWS, "label_rows": LABEL_ROWS, "frontal": FRONTAL,
                      "labelled": labelled, "runs": runs, "target_s": 3.0,
                      "cxr_cpu_s": round(o[0], 3), "cxr_wall_s": round(o[1], 3), "cxr_process_wall_s": round(o[2], 3),
                      "python_cpu_s": round(t[0], 3), "python_wall_s": round(t[1], 3),
                      "speedup_cpu": round(t[0] / o[0], 2)}))


if __name__ == "__main__":
    main()
