#!/usr/bin/env bash
# GPU checks of the host-synchronization work (Pose2Seg without per-person host round trips):
# about 4 minutes on one H200 before the compiled step was added (not yet run on a GPU with it:
# count 1-2 more for its compilations); each step has a time limit, at most 10 minutes in all without BASELINE_CHECKOUT,
# 11.5 with. Run from anywhere; results go to OUT_DIR:
#
#   bash benchmarks/gpu_checks.sh OUT_DIR [BASELINE_CHECKOUT]
#
# BASELINE_CHECKOUT (optional): a checkout of the code before the change (its pose2seg_d2/ and
# configs/), e.g. `git archive add96ee pose2seg_d2 configs | tar -x -C .baseline13`; it is
# benchmarked by this checkout's bench_inference.py (--package-root) in the same run.
#
# Needs: python with torch (CUDA), detectron2 and its dependencies (fvcore, pycocotools, cv2)
# importable, pytest. PYTHON=... picks the interpreter. GPU_CHECKS_DEVICE=cpu GPU_CHECKS_TINY=1
# runs the same steps on the CPU with tiny models (a dry run of this script, not a measurement).
#
# Writes four files to OUT_DIR: summary.md (every timing in one table, before/after, the issue's
# criteria), results.json (every bench_inference.py result, by run), pytest.txt (the sync
# tests' output) and gpu_checks.log (environment, each step's command, exit code, time and
# output).
set -u
OUT=${1:?usage: bash benchmarks/gpu_checks.sh OUT_DIR [BASELINE_CHECKOUT]}
BASE=${2:-}
PY=${PYTHON:-python}
DEVICE=${GPU_CHECKS_DEVICE:-cuda}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
[ -n "$BASE" ] && BASE=$(cd "$BASE" && pwd)
cd "$(dirname "$0")/.."
WORK=$(mktemp -d)  # the steps' own files; OUT gets four
LOG="$OUT/gpu_checks.log"
: >"$LOG"
START=$(date +%s)

step() {  # step NAME TIMEOUT_S COMMAND...: run; log the command, exit code, time and output
    local name=$1 limit=$2
    shift 2
    local t0=$(date +%s)
    echo "[$(date +%T)] $name: $*" | tee -a "$LOG"
    timeout "$limit" "$@" >"$WORK/$name.txt" 2>&1
    local rc=$?
    echo "[$(date +%T)] $name: exit $rc after $(($(date +%s) - t0)) s" | tee -a "$LOG"
    tail -n 3 "$WORK/$name.txt" | sed 's/^/    /'
    { echo "----- $name output"; grep -v -i "warn" "$WORK/$name.txt" | tail -n 150; echo "-----"; } >>"$LOG"
}

# ---- 0. environment
$PY - >"$WORK/environment.txt" 2>&1 <<'EOF'
import importlib, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("device", torch.cuda.get_device_name(), "capability", torch.cuda.get_device_capability())
for name in ("detectron2", "fvcore", "pycocotools", "cv2", "pytest", "hypothesis"):
    try:
        module = importlib.import_module(name)
        print(name, getattr(module, "__version__", "?"), getattr(module, "__file__", ""))
    except Exception as e:
        print(name, "MISSING", repr(e))
EOF
tee -a "$LOG" <"$WORK/environment.txt"

# ---- 1. the sync tests: CUDA (set_sync_debug_mode) and the CPU-side counter
step pytest 150 $PY -m pytest -q -rs -p no:cacheprovider -o addopts="" tests/test_host_syncs_cuda.py tests/test_host_syncs.py tests/test_paste.py tests/test_compile.py
cp "$WORK/pytest.txt" "$OUT/pytest.txt"

# ---- 2. inference benchmarks at short side 512 (512x683)
COMMON=(--device "$DEVICE" --sizes 512 --repeats 20 --warmup 5 --no-flops --count-launches)
OPTS=()
if [ -n "${GPU_CHECKS_TINY:-}" ]; then
    COMMON=(--device "$DEVICE" --sizes 64 --repeats 1 --warmup 1 --no-flops --no-memory --count-launches)
    OPTS=(MODEL.RESNETS.DEPTH 18 MODEL.RESNETS.RES2_OUT_CHANNELS 64 MODEL.FPN.OUT_CHANNELS 16
          MODEL.POSE2SEG.WINDOW_SIZE "(32, 32)" MODEL.POSE2SEG.SEG_MODULE.STEM_CHANNELS 16
          MODEL.POSE2SEG.SEG_MODULE.NUM_UNITS 2 MODEL.POSE2SEG.SEG_MODULE.BOTTLENECK_CHANNELS 8
          MODEL.POSE2SEG.SEG_MODULE.UNIT_OUT_CHANNELS 32 MODEL.ROI_BOX_HEAD.FC_DIM 64
          MODEL.ROI_MASK_HEAD.CONV_DIM 16 MODEL.RPN.POST_NMS_TOPK_TEST 100)
fi
BENCH=(benchmarks/bench_inference.py "${COMMON[@]}")

# this code, float32, the three models; 1, 10 and 20 persons
step bench_fp32 100 $PY "${BENCH[@]}" --persons 1 10 20 --models pose2seg pose2seg_light mask_rcnn \
    --output "$WORK/bench_fp32.json" --opts ${OPTS[@]+"${OPTS[@]}"}
# the code before the change, measured by the same script, same settings
if [ -n "$BASE" ]; then
    step bench_baseline 100 $PY "${BENCH[@]}" --package-root "$BASE" --persons 1 10 20 \
        --models pose2seg pose2seg_light mask_rcnn --output "$WORK/bench_baseline.json" --opts ${OPTS[@]+"${OPTS[@]}"}
fi
# channels-last and autocast, Pose2Seg at 10 persons
step bench_variants 90 $PY "${BENCH[@]}" --persons 10 --models pose2seg pose2seg_light --no-default-variant \
    --variant cl MODEL.POSE2SEG.CHANNELS_LAST True \
    --variant bf16 MODEL.POSE2SEG.AUTOCAST bf16 \
    --variant bf16_cl MODEL.POSE2SEG.AUTOCAST bf16 MODEL.POSE2SEG.CHANNELS_LAST True \
    --variant fp16_cl MODEL.POSE2SEG.AUTOCAST fp16 MODEL.POSE2SEG.CHANNELS_LAST True \
    --output "$WORK/bench_variants.json" --opts ${OPTS[@]+"${OPTS[@]}"}
# MODEL.POSE2SEG.COMPILE: the geometry compiled (the first of the warm-up calls compile, tens of
# seconds each; 10 persons only, the shapes the other steps time)
step bench_compiled 180 $PY "${BENCH[@]}" --persons 10 --models pose2seg pose2seg_light --no-default-variant \
    --variant compiled MODEL.POSE2SEG.COMPILE default \
    --variant compiled_cl MODEL.POSE2SEG.COMPILE default MODEL.POSE2SEG.CHANNELS_LAST True \
    --output "$WORK/bench_compiled.json" --opts ${OPTS[@]+"${OPTS[@]}"}
# Mask R-CNN and the light head with the whole call under bf16 autocast (a like-for-like
# reduced-precision comparison; Mask R-CNN has no option of its own)
step bench_autocast_call 50 $PY "${BENCH[@]}" --persons 10 --models pose2seg_light mask_rcnn --autocast bf16 \
    --no-default-variant --variant bf16_call --output "$WORK/bench_autocast_call.json" --opts ${OPTS[@]+"${OPTS[@]}"}
# ---- 3. one table of everything, and the issue's criteria
step summary 20 $PY benchmarks/summarize_bench.py "$WORK" --merge "$OUT/results.json"
cp "$WORK/summary.txt" "$OUT/summary.md"
echo "total $(($(date +%s) - START)) s" | tee -a "$LOG"
cat "$OUT/summary.md"
rm -rf "$WORK"
