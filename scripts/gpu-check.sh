#!/usr/bin/env bash
# cxr on a GPU machine that has an NVIDIA GPU and a CUDA PyTorch but no Swift: builds the shim
# against that PyTorch, checks, benchmarks against PyTorch on the same card, and prints a short
# table last. One call of at most ~9.5 minutes: every step has a time budget, reports
# PASS / FAIL / SKIP with the reason, and the script goes on.
#
# Run it from the unpacked bundle (`make bundle` on a development machine -> dist/cxr-bundle):
#   bash scripts/gpu-check.sh
# Environment (all optional):
#   BUDGET   seconds for the whole run (default 560)      STEPS  timed training steps (default 30)
#   PYTHON   the CUDA PyTorch's python (default python3)  TORCH_DIR  its torch folder (default: asked)
#   CXR_BIN  a cxr binary to use instead of the bundle's  WORK  scratch folder (default /tmp/cxr-gpu-check)
#            (the shim is built beside it, where it is found before the rpath's shim folder: with a
#            development build, delete that libcxt.so afterwards)
#   COMPILE  1 (default) also times torch.compile;  0 skips it
#   DEMO_CONFIG  the study config for the end-to-end run (default configs/demo.yaml of the bundle)
#   SMOKE=1  the same steps on the CPU with a tiny model (convnext_atto, 64 px, batches 2 and 4, 2
#            steps): checks the wiring on a development machine; its figures mean nothing
#
# cxr interfaces used (commands the project adds; a missing one is reported as SKIP):
#   cxr info | cxr synth OUT --size small | cxr train CONFIG --schema NAME --set key=value ...
#   cxr bench train   --arch A --size S --batch B --device cuda --steps N        (Sources/Bench/BenchTrainStep.swift)
#   cxr bench predict --arch A --size S --batch B --device cuda --steps N        (Sources/Bench/BenchPredict.swift)
#   cxr bench forward --arch A --weights W.safetensors --input X.safetensors --output Y.safetensors --device cuda
#                                                                                (Sources/Bench/BenchForward.swift)
#   cxr bench loader  DIR --size S --batch B --batches N --workers 0 --prefetch P (Sources/Bench/BenchLoader.swift)
#   cxr bench feed    --batch B --size S --batches N --device cuda               (Sources/Bench/BenchFeed.swift)
#   cxr bench graph   --device cuda                                              (Sources/Bench/BenchGraph.swift)
# The bench commands print one JSON line with "images_per_s" (bench graph: "replay_us", "eager_us";
# bench forward's images_per_s is of one cold call). The two loader rows time alike: all cores, P
# batches ahead per worker, the first batch of each worker untimed (see both files' headers).
set -uo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
BUDGET=${BUDGET:-560}
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then
  DEV=cpu ARCH=convnext_atto SIZE=64 BA=2 BB=4 PB=4 FEEDN=5 LOADN=3 STEPS=${STEPS:-2}
else
  DEV=cuda ARCH=convnext_base SIZE=512 BA=32 BB=64 PB=64 FEEDN=50 LOADN=40 STEPS=${STEPS:-30}
fi
LOADP=2  # loader batches ahead per worker on both sides (PyTorch's default prefetch_factor)
PYTHON=${PYTHON:-python3}
WORK=${WORK:-/tmp/cxr-gpu-check}
COMPILE=${COMPILE:-1}
DEMO_CONFIG=${DEMO_CONFIG:-$here/configs/demo.yaml}
bench="$here/scripts/bench"
start=$SECONDS
mkdir -p "$WORK"
export PYTHONUNBUFFERED=1

names=(); states=(); notes=()
rc=0
# A step that never started for want of time is a SKIP, not a FAIL.
record() { local st=$2; [ "$st" = FAIL ] && [ "$rc" -eq 125 ] && st=SKIP
  names+=("$1"); states+=("$st"); notes+=("$3"); printf '[%4ds] %-22s %-4s %s\n' $((SECONDS - start)) "$1" "$st" "$3"; }
left() { echo $((BUDGET - (SECONDS - start))); }

# run NAME SECONDS CMD...: runs CMD under a time budget (never past the overall budget), output in
# $WORK/NAME.log; sets $rc (124 = timed out, 125 = no time left) and $log.
run() {
  local name=$1 want=$2; shift 2
  local have; have=$(( $(left) - 10 ))
  log="$WORK/$name.log"
  if [ "$have" -lt 15 ]; then rc=125; : > "$log"; return; fi
  [ "$want" -gt "$have" ] && want=$have
  echo "\$ $*" > "$log"
  local t0=$SECONDS
  timeout --kill-after=5 "$want" "$@" >> "$log" 2>&1
  rc=$?
  took=$((SECONDS - t0))
  [ $rc -eq 137 ] && rc=124
  budget_used=$want
}
# the last JSON line of $log holding KEY; its KEY value (or empty)
json_value() {
  "$PYTHON" - "$log" "$1" <<'PY' 2>/dev/null
import json, sys
val = ""
for line in open(sys.argv[1], errors="replace"):
    line = line.strip()
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            continue
        if sys.argv[2] in d:
            val = d[sys.argv[2]]
print(val)
PY
}
reason() {  # why a step failed, in one line
  case $rc in
    124) echo "timed out after ${budget_used}s" ;;
    125) echo "no time left in the ${BUDGET}s budget" ;;
    *) local e; e=$(json_value error)
       # else the last line that says error, else the last line
       [ -n "$e" ] || e=$(grep -v '^\$ ' "$log" | grep -i 'error' | tail -1 | cut -c1-160)
       [ -n "$e" ] || e=$(grep -v '^\$ ' "$log" | grep -v '^\s*$' | tail -1 | cut -c1-160)
       echo "exit $rc: $e" ;;
  esac
}
# Whether `cxr SUB...` exists. ArgumentParser answers `cxr bench nosuch --help` with bench's own
# help (exit 0), so look for the subcommand's usage line. The help is read whole first: `| grep -q`
# would stop reading at the match, and under pipefail cxr's SIGPIPE then made the check fail at
# random (SMOKE saw "no 'bench train' subcommand" for one batch size and not the other).
has_cmd() { local h; h=$("$cxr" "$@" --help 2>&1); grep -q "USAGE: cxr $*\( \|\$\)" <<< "$h"; }
ratio() { "$PYTHON" -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print(f'{a / b:.2f}')" "$1" "$2" 2>/dev/null; }

echo "cxr GPU check: $(date -u '+%Y-%m-%d %H:%M UTC'), budget ${BUDGET}s, scratch $WORK"

# ---- 1. the machine --------------------------------------------------------------------------
gpu=$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | head -1)
if [ -n "$gpu" ]; then record machine PASS "$gpu; $(nproc) CPU cores"
elif [ "$SMOKE" = 1 ]; then record machine SKIP "no GPU (nvidia-smi); SMOKE runs on the CPU, $(nproc) cores"
else record machine FAIL "nvidia-smi shows no GPU"; fi
run torch 60 "$PYTHON" -c 'import torch, os; print(torch.__version__, torch.version.cuda, torch.cuda.is_available(), os.path.dirname(torch.__file__))'
if [ $rc -eq 0 ]; then
  read -r tver tcuda tavail tdir < <(tail -1 "$log")
  TORCH_DIR=${TORCH_DIR:-$tdir}
  if [ "$tavail" = True ]; then record pytorch PASS "torch $tver, CUDA $tcuda, $TORCH_DIR"
  elif [ "$SMOKE" = 1 ]; then record pytorch PASS "torch $tver (CUDA $tcuda), no CUDA device: SMOKE runs on the CPU; $TORCH_DIR"
  else record pytorch FAIL "torch $tver sees no CUDA device (CUDA $tcuda)"; fi
else
  record pytorch FAIL "$(reason)"
fi

# ---- 2. cxr and its shim -----------------------------------------------------------------------
cxr=${CXR_BIN:-$here/cxr}
if [ -z "${CXR_BIN:-}" ] && [ ! -x "$cxr" ] && [ -f "$here/cxr.xz" ]; then
  "$PYTHON" -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    "$here/cxr.xz" "$cxr" && chmod +x "$cxr"
fi
# CUDA headers: the CUDA toolkit's if installed, else NVIDIA's pip packages beside torch, else the
# bundle's copy (pip installs may lack crt/ and nv/, which c10's CUDA headers include).
cuda_inc=""
if [ -n "${TORCH_DIR:-}" ]; then
  for d in "${CUDA_HOME:-/usr/local/cuda}/include" "$TORCH_DIR"/../nvidia/*/include "$here/cuda-include"; do
    if [ -f "$d/cuda_runtime_api.h" ] && [ -f "$d/crt/host_defines.h" ] && [ -f "$d/nv/target" ]; then
      cuda_inc="-isystem $d"; break
    fi
  done
  if [ -z "$cuda_inc" ]; then  # headers split over several pip packages (nvidia/cuda_runtime, ...)
    for d in "$TORCH_DIR"/../nvidia/*/include "$here/cuda-include"; do [ -d "$d" ] && cuda_inc="$cuda_inc -isystem $d"; done
  fi
fi
if [ ! -x "$cxr" ]; then
  record shim SKIP "no cxr binary at $cxr (unpack the bundle, or set CXR_BIN)"
elif [ -z "${TORCH_DIR:-}" ]; then
  record shim SKIP "no TORCH_DIR: PyTorch did not load"
else
  # shim.mk sits in CShims/ in the bundle, in scripts/bundle/ in the project
  mk="$here/CShims/shim.mk"; [ -f "$mk" ] || mk="$here/scripts/bundle/shim.mk"
  run shim 240 make -f "$mk" SRC_DIR="$here/CShims" TORCH_DIR="$TORCH_DIR" OUT="$(dirname "$cxr")/libcxt.so" \
    TORCH_ABI="$("$PYTHON" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))' 2>/dev/null || echo 1)" \
    CUDA_INCLUDES="$cuda_inc"
  kind=CPU-only; [ -e "$TORCH_DIR/lib/libtorch_cuda.so" ] && kind=CUDA
  [ $rc -eq 0 ] && record shim PASS "$kind libcxt.so built against $TORCH_DIR (${took}s)" \
    || record shim FAIL "$(reason) (see $log)"
fi
cxr_ok=0    # cxr runs and sees CUDA
cxr_runs=0  # cxr runs (synth and the loader need no GPU)
if [ -x "$cxr" ]; then
  run info 30 "$cxr" info
  [ $rc -eq 0 ] && cxr_runs=1
  if [ $rc -ne 0 ]; then record "cxr info" FAIL "$(reason)"
  elif grep -q 'shim built with CUDA: yes' "$log" && grep -q 'CUDA available: yes' "$log"; then
    record "cxr info" PASS "$(grep 'CUDA available' "$log")"; cxr_ok=1
  elif [ "$SMOKE" = 1 ]; then
    # A shim built against a CUDA libtorch must say so (linked with torch_cuda), GPU or not.
    if [ -e "${TORCH_DIR:-/nonexistent}/lib/libtorch_cuda.so" ] && ! grep -q 'shim built with CUDA: yes' "$log"; then
      record "cxr info" FAIL "the shim was built against a CUDA libtorch, yet cxr says: $(grep -E '^cxr with libtorch|^shim built' "$log" | tr '\n' ';')"
    else
      record "cxr info" PASS "$(grep '^cxr with libtorch' "$log") (SMOKE: CPU)"; cxr_ok=1
    fi
  else
    record "cxr info" FAIL "cxr does not see CUDA: $(grep -E 'CUDA' "$log" | tr '\n' ';')"
  fi
fi

# ---- 3. checks -----------------------------------------------------------------------------------
fwd="$WORK/forward"
if [ $cxr_ok -ne 1 ]; then record "forward vs timm" SKIP "cxr cannot use CUDA here"
elif ! has_cmd bench forward; then record "forward vs timm" SKIP "this cxr has no 'bench forward' subcommand"
else
  run forward_prepare 90 "$PYTHON" "$bench/gpu_forward.py" prepare "$fwd" --arch $ARCH --size $SIZE --batch 4 --device $DEV
  if [ $rc -ne 0 ]; then record "forward vs timm" FAIL "timm side: $(reason)"
  else
    run forward_cxr 90 "$cxr" bench forward --arch $ARCH --weights "$fwd/weights.safetensors" \
      --input "$fwd/input.safetensors" --output "$fwd/cxr.safetensors" --device $DEV
    if [ $rc -ne 0 ]; then record "forward vs timm" FAIL "cxr side: $(reason)"
    else
      run forward_compare 30 "$PYTHON" "$bench/gpu_forward.py" compare "$fwd" "$fwd/cxr.safetensors"
      msg="max |cxr - timm fp32| $(json_value max_abs_err), timm bf16's own $(json_value timm_bf16_max_abs_err), tolerance $(json_value tolerance)"
      [ $rc -eq 0 ] && record "forward vs timm" PASS "$msg" || record "forward vs timm" FAIL "${msg:-$(reason)}"
    fi
  fi
fi

if [ "$DEV" != cuda ]; then record "cuda graph" SKIP "needs CUDA (SMOKE runs on the CPU)"
elif [ $cxr_ok -ne 1 ]; then record "cuda graph" SKIP "cxr cannot use CUDA here"
elif ! has_cmd bench graph; then record "cuda graph" SKIP "this cxr has no 'bench graph' subcommand"
else
  run graph 30 "$cxr" bench graph --device cuda
  [ $rc -eq 0 ] && record "cuda graph" PASS "replay matches eager; $(json_value replay_us) us per replay vs $(json_value eager_us) us eager (40 kernels)" \
    || record "cuda graph" FAIL "$(reason)"
fi

# ---- 4. training throughput against PyTorch (the key figure) --------------------------------------
declare -A ips
train_pair() {  # batch
  local b=$1
  if [ $cxr_ok -ne 1 ]; then record "train cxr b$b" SKIP "cxr cannot use CUDA here"
  elif ! has_cmd bench train; then record "train cxr b$b" SKIP "this cxr has no 'bench train' subcommand"
  else
    run "train_cxr_b$b" 100 "$cxr" bench train --arch $ARCH --size $SIZE --batch "$b" --device $DEV --steps "$STEPS"
    ips[cxr_$b]=$(json_value images_per_s)
    [ $rc -eq 0 ] && [ -n "${ips[cxr_$b]}" ] && record "train cxr b$b" PASS "${ips[cxr_$b]} images/s" \
      || { ips[cxr_$b]=""; record "train cxr b$b" FAIL "$(reason)"; }
  fi
  run "train_torch_b$b" 90 "$PYTHON" "$bench/gpu_train.py" --arch $ARCH --size $SIZE --batch "$b" --steps "$STEPS" --device $DEV
  ips[eager_$b]=$(json_value images_per_s)
  [ $rc -eq 0 ] && [ -n "${ips[eager_$b]}" ] && record "train torch b$b" PASS "${ips[eager_$b]} images/s ($(json_value optimizer) Lion)" \
    || { ips[eager_$b]=""; record "train torch b$b" FAIL "$(reason)"; }
}
train_pair $BA
train_pair $BB

# ---- 5. end-to-end on the synthetic study ----------------------------------------------------------
synth="$WORK/synth"
if [ $cxr_runs -ne 1 ]; then record "synth + run" SKIP "cxr does not run here"
elif ! has_cmd synth; then record "synth + run" SKIP "this cxr has no 'synth' subcommand"
else
  run synth 60 "$cxr" synth "$synth" --size small
  if [ $rc -ne 0 ]; then record "synth + run" FAIL "cxr synth: $(reason)"
  elif [ $cxr_ok -ne 1 ]; then record "synth + run" SKIP "synthetic study made; cxr cannot use CUDA here"
  elif ! has_cmd train; then record "synth + run" SKIP "synthetic study made; this cxr has no 'train' subcommand"
  elif [ ! -f "$DEMO_CONFIG" ]; then record "synth + run" SKIP "synthetic study made; no config $DEMO_CONFIG"
  else
    # One short epoch on CUDA; no DICOM test set (GDCM is not on GPU machines).
    # Training only: GDCM (DICOM) is not on the GPU machine, so the test-set DICOMs are left out.
    # A run folder of its own per call: cxr never trains over a finished folder, so a second try on
    # the same (warm) machine must not reuse the first one's.
    runs="$WORK/runs-$(date -u +%Y%m%dT%H%M%S)-$$"
    run e2e 120 "$cxr" train "$DEMO_CONFIG" --schema truth --set device=$DEV --set out="$runs" --set train.epochs=2 \
      --set train_data.root="$synth/mimic" --set "schemas[0].file=$synth/labels/mimic/synthetic-truth.csv" --set test_data.kind=none
    [ $rc -eq 0 ] && record "synth + run" PASS "2 epochs on $DEV, outputs in $runs" || record "synth + run" FAIL "$(reason)"
  fi
fi

# ---- 6. the host-to-device feed, predict and the data loader ---------------------------------------
if [ $cxr_ok -eq 1 ] && has_cmd bench feed; then
  run feed_cxr 45 "$cxr" bench feed --batch $BA --size $SIZE --batches $FEEDN --device $DEV
  ips[feed_cxr]=$(json_value images_per_s)
  [ $rc -eq 0 ] && [ -n "${ips[feed_cxr]}" ] && record "feed cxr" PASS "${ips[feed_cxr]} images/s, $(json_value gib_per_s) GiB/s, values checked" \
    || { ips[feed_cxr]=""; record "feed cxr" FAIL "$(reason)"; }
else
  record "feed cxr" SKIP "$([ $cxr_ok -eq 1 ] && echo "this cxr has no 'bench feed' subcommand" || echo "cxr cannot use CUDA here")"
fi
run feed_torch 45 "$PYTHON" "$bench/gpu_feed.py" --batch $BA --size $SIZE --batches $FEEDN --device $DEV
ips[feed_torch]=$(json_value images_per_s)
[ $rc -eq 0 ] && [ -n "${ips[feed_torch]}" ] && record "feed torch" PASS "${ips[feed_torch]} images/s, $(json_value gib_per_s) GiB/s" \
  || { ips[feed_torch]=""; record "feed torch" FAIL "$(reason)"; }

if [ $cxr_ok -eq 1 ] && has_cmd bench predict; then
  run predict_cxr 60 "$cxr" bench predict --arch $ARCH --size $SIZE --batch $PB --device $DEV --steps "$STEPS"
  ips[pred_cxr]=$(json_value images_per_s)
  [ $rc -eq 0 ] && [ -n "${ips[pred_cxr]}" ] && record "predict cxr" PASS "${ips[pred_cxr]} images/s" \
    || { ips[pred_cxr]=""; record "predict cxr" FAIL "$(reason)"; }
else
  record "predict cxr" SKIP "$([ $cxr_ok -eq 1 ] && echo "this cxr has no 'bench predict' subcommand" || echo "cxr cannot use CUDA here")"
fi
run predict_torch 60 "$PYTHON" "$bench/gpu_predict.py" --arch $ARCH --size $SIZE --batch $PB --steps "$STEPS" --device $DEV
ips[pred_torch]=$(json_value images_per_s)
[ $rc -eq 0 ] && [ -n "${ips[pred_torch]}" ] && record "predict torch" PASS "${ips[pred_torch]} images/s" \
  || { ips[pred_torch]=""; record "predict torch" FAIL "$(reason)"; }

if [ ! -d "$synth/mimic" ]; then
  record "loader" SKIP "no synthetic JPEGs (cxr synth did not run)"
else
  if [ $cxr_runs -eq 1 ] && has_cmd bench loader; then
    run loader_cxr 60 "$cxr" bench loader "$synth/mimic" --size $SIZE --batch $BA --batches $LOADN --workers 0 --prefetch $LOADP
    ips[load_cxr]=$(json_value images_per_s)
    [ $rc -eq 0 ] && [ -n "${ips[load_cxr]}" ] && record "loader cxr" PASS "${ips[load_cxr]} images/s, all cores" \
      || { ips[load_cxr]=""; record "loader cxr" FAIL "$(reason)"; }
  else
    record "loader cxr" SKIP "this cxr has no 'bench loader' subcommand"
  fi
  run loader_torch 60 "$PYTHON" "$bench/gpu_loader.py" "$synth/mimic" --size $SIZE --batch $BA --batches $LOADN --prefetch $LOADP
  ips[load_torch]=$(json_value images_per_s)
  [ $rc -eq 0 ] && [ -n "${ips[load_torch]}" ] && record "loader torch" PASS "${ips[load_torch]} images/s, $(nproc) workers" \
    || { ips[load_torch]=""; record "loader torch" FAIL "$(reason)"; }
fi

# ---- 7. torch.compile last: the slowest step and the least needed -----------------------------------
for b in $BA $BB; do
  if [ "$COMPILE" != 1 ]; then record "train compile b$b" SKIP "COMPILE=0"; continue; fi
  run "train_compile_b$b" 200 "$PYTHON" "$bench/gpu_train.py" --arch $ARCH --size $SIZE --batch "$b" --steps "$STEPS" --device $DEV --compile
  ips[comp_$b]=$(json_value images_per_s)
  [ $rc -eq 0 ] && [ -n "${ips[comp_$b]}" ] && record "train compile b$b" PASS "${ips[comp_$b]} images/s" \
    || { ips[comp_$b]=""; record "train compile b$b" FAIL "$(reason)"; }
done

# ---- the table --------------------------------------------------------------------------------------
echo
echo "== steps ($((SECONDS - start))s of ${BUDGET}s; logs in $WORK) =="
for i in "${!names[@]}"; do printf '%-20s %-4s %s\n' "${names[$i]}" "${states[$i]}" "${notes[$i]}"; done
echo
[ "$SMOKE" = 1 ] && echo "== SMOKE run on the CPU: these figures check the wiring and mean nothing =="
echo "== images/s on ${gpu:-an unknown GPU}, $ARCH $SIZE px, bf16, channels_last =="
printf '%-26s %10s %14s %14s %10s %10s\n' "benchmark" "cxr" "torch eager" "torch.compile" "cxr/eager" "cxr/compile"
row() {  # label cxr eager compile
  local r1="" r2=""
  [ -n "$2" ] && [ -n "$3" ] && r1=$(ratio "$2" "$3")
  [ -n "$2" ] && [ -n "$4" ] && r2=$(ratio "$2" "$4")
  printf '%-26s %10s %14s %14s %10s %10s\n' "$1" "${2:--}" "${3:--}" "${4:--}" "${r1:--}" "${r2:--}"
}
row "train, batch $BA" "${ips[cxr_$BA]:-}" "${ips[eager_$BA]:-}" "${ips[comp_$BA]:-}"
row "train, batch $BB" "${ips[cxr_$BB]:-}" "${ips[eager_$BB]:-}" "${ips[comp_$BB]:-}"
row "feed host->GPU, b$BA f32" "${ips[feed_cxr]:-}" "${ips[feed_torch]:-}" ""
row "predict, batch $PB" "${ips[pred_cxr]:-}" "${ips[pred_torch]:-}" ""
row "loader (synthetic JPEGs)" "${ips[load_cxr]:-}" "${ips[load_torch]:-}" ""
if [ -n "${ips[load_cxr]:-}" ] && [ -n "${ips[cxr_$BA]:-}" ]; then
  echo "loader/training-step appetite (batch $BA): $(ratio "${ips[load_cxr]}" "${ips[cxr_$BA]}") (below 1.00: the GPU waits for data)"
fi
fails=0; for s in "${states[@]}"; do [ "$s" = FAIL ] && fails=$((fails + 1)); done
echo "gpu-check: ${#names[@]} steps, $fails failed"
exit 0
