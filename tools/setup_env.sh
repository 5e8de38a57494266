#!/usr/bin/env bash
# Creates (or completes) the virtual environment the project runs in. Idempotent: every step
# first checks whether what it installs is already importable, so a second run is quick.
#   usage: tools/setup_env.sh [VENV_DIR]      (default .venv; PYTHON picks the interpreter)
set -euo pipefail
VENV="${1:-.venv}"
PY="$VENV/bin/python"
TORCH_VERSION="2.14.1"
TORCHVISION_VERSION="0.29.1"
D2_WHEEL_SPEC="sal-detectron2==0.7.2"

log() { echo "[setup_env] $*"; }

if [ ! -x "$PY" ]; then
    log "creating $VENV"
    "${PYTHON:-python3}" -m venv "$VENV"
fi
PIP=("$PY" -m pip --disable-pip-version-check)

# 1. torch: keep a working torch/torchvision pair; otherwise the pinned release.
if "$PY" -c "import torch, torchvision" >/dev/null 2>&1; then
    log "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
    log "installing torch==$TORCH_VERSION torchvision==$TORCHVISION_VERSION"
    "${PIP[@]}" install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

# Every later install is constrained to the torch that is there now, so nothing pulls another.
CONSTRAINTS="$VENV/pose2seg-constraints.txt"
"$PY" - "$CONSTRAINTS" <<'PYEOF'
import sys, importlib.metadata as md
with open(sys.argv[1], "w") as f:
    for name in ("torch", "torchvision"):
        try:
            f.write(f"{name}=={md.version(name)}\n")
        except md.PackageNotFoundError:  # a source build registered under another name
            pass
PYEOF

# 2. the package (editable), its dependencies (detectron2's runtime deps included), test tools
#    and the export extra (onnx, onnxscript, onnxruntime: the export tests run them).
if "$PY" -c "import pose2seg_d2, cv2, pycocotools, fvcore, pytest, installer, hypothesis, onnx, onnxscript, onnxruntime" >/dev/null 2>&1 \
   && [ -f "$VENV/.pose2seg-setup-py" ] && cmp -s setup.py "$VENV/.pose2seg-setup-py"; then
    log "pose2seg_d2 and its dependencies already installed"
else
    log "installing pose2seg_d2 (editable) and its dependencies"
    "${PIP[@]}" install -c "$CONSTRAINTS" -e ".[dev,export]"
    cp setup.py "$VENV/.pose2seg-setup-py"
fi

# 3. detectron2: keep an importable one (e.g. built from source); else upstream's registry wheel.
#    That wheel is tagged cp310, so pip refuses it on other Pythons; pypa `installer` does not
#    check the tag. Its compiled _C never loads outside CPython 3.10; nothing here needs it.
if "$PY" -c "import detectron2" >/dev/null 2>&1; then
    log "detectron2 already importable: $("$PY" -c 'import detectron2, os; print(os.path.dirname(detectron2.__file__))')"
else
    WHEEL_DIR="$VENV/wheels"
    mkdir -p "$WHEEL_DIR"
    if ! ls "$WHEEL_DIR"/sal_detectron2-*.whl >/dev/null 2>&1; then
        log "downloading $D2_WHEEL_SPEC"
        "${PIP[@]}" download --no-deps --only-binary=:all: --python-version 3.10 \
            --platform any "$D2_WHEEL_SPEC" -d "$WHEEL_DIR"
    fi
    log "installing detectron2 from $(ls "$WHEEL_DIR"/sal_detectron2-*.whl)"
    "$PY" -m installer "$WHEEL_DIR"/sal_detectron2-*.whl
    "$PY" -c "import detectron2.modeling, detectron2.engine" \
        || { echo "detectron2 installed but does not import" >&2; exit 1; }
fi
log "ready: $("$PY" -c 'import torch, detectron2; print("torch", torch.__version__, "| detectron2", detectron2.__version__)')"
