#!/usr/bin/env bash
# Renders cxr's HTML reports in headless Chromium (Debian's package; installed with apt-get if
# missing) and fails when the page logs a JavaScript error or shows fewer <svg> plots than the
# file holds. Writes a screenshot PNG and the rendered DOM of each report next to $OUT_DIR.
#
# Usage: scripts/check-report.sh [report.html ...]
#   With no argument it builds cxr, runs `cxr evaluate` and `cxr agree` on small synthetic CSVs
#   and checks both reports. OUT_DIR (default /tmp/cxr-report-check) receives the files.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT_DIR="${OUT_DIR:-/tmp/cxr-report-check}"
mkdir -p "$OUT_DIR"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "installing Debian's chromium (apt-get) ..." >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >&2
  browser="$(command -v chromium)"
fi

reports=("$@")
if [ ${#reports[@]} -eq 0 ]; then
  cd "$ROOT"
  [ -f CShims/build/libcxt.so ] || make shim >&2
  swift build --product cxr >&2
  CXR="$ROOT/.build/debug/cxr"
  DATA="$OUT_DIR/data"; mkdir -p "$DATA"
  # Deterministic synthetic data: 3 models, 2 references, 2 findings; a human file with equivocal rows.
  awk 'BEGIN{srand(7); n=400
    print "id,path,Pneumothorax,Fracture" > "'"$DATA"'/m1.csv"; print "id,Pneumothorax,Fracture" > "'"$DATA"'/m2.csv"
    print "id,Pneumothorax,Fracture" > "'"$DATA"'/m3.csv"
    print "id,Pneumothorax,Fracture" > "'"$DATA"'/masks.csv"; print "id,Pneumothorax,Fracture" > "'"$DATA"'/chexpert.csv"
    print "id,Pneumothorax,Fracture,Pneumothorax_r1,Pneumothorax_r2,Fracture_r1,Fracture_r2" > "'"$DATA"'/human.csv"
    for(i=0;i<n;i++){ p=(rand()<0.2); f=(rand()<0.1); id="case" i
      printf "%s,/img/%s.dcm,%.4f,%.4f\n", id, id, p*0.3+rand()*0.7, f*0.2+rand()*0.8 >> "'"$DATA"'/m1.csv"
      printf "%s,%.4f,%.4f\n", id, p*0.5+rand()*0.5, f*0.4+rand()*0.6 >> "'"$DATA"'/m2.csv"
      printf "%s,%.4f,%.4f\n", id, p*0.7+rand()*0.3, f*0.6+rand()*0.4 >> "'"$DATA"'/m3.csv"
      printf "%s,%s,%s\n", id, (p?"1":"0"), (f?"1":"0") >> "'"$DATA"'/masks.csv"
      cp=(rand()<0.95)?p:1-p; cf=(rand()<0.95)?f:1-f
      printf "%s,%s,%s\n", id, (rand()<0.03?"-1.0":(cp?"1.0":"")), (cf?"1.0":"0.0") >> "'"$DATA"'/chexpert.csv"
      hp=(rand()<0.03)?"equivocal":p; r2=(rand()<0.95)?p:1-p
      printf "%s,%s,%s,%s,%s,%s,%s\n", id, hp, f, p, r2, f, f >> "'"$DATA"'/human.csv" }}'
  "$CXR" evaluate --predictions "convnext<chexpert>=$DATA/m1.csv" --predictions llama-cot=$DATA/m2.csv --predictions phi3=$DATA/m3.csv \
    --reference masks=$DATA/masks.csv --reference chexpert=$DATA/chexpert.csv --bootstrap 200 --out "$OUT_DIR/evaluate" >&2
  "$CXR" agree --human $DATA/human.csv --schema chexpert=$DATA/chexpert.csv --schema masks=$DATA/masks.csv \
    --annotators '{finding}_r1,{finding}_r2' --bootstrap 200 --out "$OUT_DIR/agree" >&2
  reports=("$OUT_DIR/evaluate/report.html" "$OUT_DIR/agree/report.html")
fi

status=0
for report in "${reports[@]}"; do
  name="$(basename "$(dirname "$report")")-$(basename "$report" .html)"
  flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run --hide-scrollbars
         --enable-logging=stderr --v=0 --user-data-dir="$OUT_DIR/profile")
  "$browser" "${flags[@]}" --virtual-time-budget=3000 --dump-dom "file://$(realpath "$report")" \
    > "$OUT_DIR/$name.dom.html" 2> "$OUT_DIR/$name.console.log" || { echo "FAIL $report: chromium exited $?" >&2; status=1; continue; }
  "$browser" "${flags[@]}" --window-size=1400,2400 --screenshot="$OUT_DIR/$name.png" "file://$(realpath "$report")" \
    >/dev/null 2>>"$OUT_DIR/$name.console.log" || { echo "FAIL $report: screenshot failed" >&2; status=1; continue; }
  want=$( (grep -o '<svg' "$report" || true) | wc -l)
  got=$( (grep -o '<svg' "$OUT_DIR/$name.dom.html" || true) | wc -l)
  errors=$(grep -E 'CONSOLE.*(ERROR|error)|Uncaught|SyntaxError|TypeError|ReferenceError' "$OUT_DIR/$name.console.log" || true)
  if [ -n "$errors" ]; then echo "FAIL $report: JavaScript errors:" >&2; echo "$errors" >&2; status=1
  elif [ "$want" -eq 0 ] || [ "$got" -ne "$want" ]; then echo "FAIL $report: $got of $want <svg> plots rendered" >&2; status=1
  elif [ ! -s "$OUT_DIR/$name.png" ]; then echo "FAIL $report: no screenshot" >&2; status=1
  else echo "ok   $report: $got <svg> plots rendered, no console errors; screenshot $OUT_DIR/$name.png"; fi
done
exit $status
