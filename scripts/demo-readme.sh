#!/usr/bin/env bash
# Regenerates the README's demo numbers and docs/demo-report.png from a fresh demo run, so the
# README never quotes figures copied by hand. Runs the demo into its own new folder (nothing of
# demo-out/ is touched), reads evaluation/metrics.csv, rewrites the table between the
# README's `demo-table` markers, and screenshots the evaluation report with headless Chromium.
#   bash scripts/demo-readme.sh [SEED]     (make demo-readme runs it with seed 0)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
SEED="${1:-0}"
CXR="$ROOT/.build/release/cxr"
WORK="$(mktemp -d /tmp/cxr-demo-readme-XXXXXX)"
"$CXR" synth "$WORK/data" --size small --seed "$SEED"
sed -e "s#demo-data/#$WORK/data/#g" -e "s#^out: demo-out#out: $WORK/out#" configs/demo.yaml > "$WORK/demo.yaml"
"$CXR" run "$WORK/demo.yaml"
M="$WORK/out/demo/evaluation/metrics.csv"
# value MODEL REFERENCE FINDING: the AUROC in metrics.csv, 3 decimals.
value() { awk -F, -v m="$1" -v r="$2" -v f="$3" 'NR==1{for(i=1;i<=NF;i++)c[$i]=i; next}
  $c["model"]==m && $c["reference"]==r && $c["finding"]==f && $c["metric"]=="auroc"{printf "%.3f", $c["value"]}' "$M"; }
row() { echo "| $1 | $(value "$2" "$3" Pneumothorax) | $(value "$2" "$3" Fracture) |"; }
TABLE="$WORK/table.md"
{
  echo "<!-- demo-table:start (scripts/demo-readme.sh, seed $SEED, $(date -u +%Y-%m-%d)) -->"
  echo "| AUROC | pneumothorax | fracture |"
  echo "|---|---|---|"
  row '`truth`-trained, scored against the masks' truth masks
  row 'the same classifier scored against the `rule` labeller'"'"'s reading of the test reports' truth rule
  row '`llm`-trained, against the masks' llm masks
  row '`rule`-trained, against the masks' rule masks
  echo "<!-- demo-table:end -->"
} > "$TABLE"
awk -v table="$TABLE" '
  /<!-- demo-table:start/ { while ((getline line < table) > 0) print line; skip = 1; next }
  /<!-- demo-table:end -->/ { skip = 0; next }
  !skip { print }' README.md > "$WORK/README.md"
grep -q "demo-table:start" "$WORK/README.md" || { echo "README.md has no demo-table markers" >&2; exit 1; }
cp "$WORK/README.md" README.md
OUT_DIR="$WORK/shots" bash scripts/check-report.sh "$WORK/out/demo/evaluation/report.html"
shot="$(ls "$WORK"/shots/*.png | head -1)"
cp "$shot" docs/demo-report.png
echo "README.md table and docs/demo-report.png regenerated from $WORK"
cat "$TABLE"
