#!/usr/bin/env bash
# The GPU proof in one command (docs/performance.md, "GPU check"):
#
#     OUT=/some/folder bash benchmarks/gpu_check.sh [--mode auto|gpu|cpu] [more benchmarks/gpu_check.py options]
#
# Finds a Python with torch ($PYTHON, else python / python3; a pre-installed torch is used as it is, pip is
# tried only when there is none), makes the project's other dependencies importable (a venv over the
# system packages in .venv-gpu-check/ when some are missing; pip may fail offline, then the check stops
# with a clear error), prints the GPU, then runs benchmarks/gpu_check.py: versions, the training-step
# benchmark, a shortened suites/cifar100.yaml on gpu-check-data/ (benchmarks/make_subset.py) and the
# compiled benchmark. Everything, this log included (gpu_check.log), goes under $OUT (default: a new
# temporary folder). On a machine without a GPU it runs the reduced CPU mode (a few minutes).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$(mktemp -d -t gpu-check.XXXXXX)}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), output under $OUT"
fail() { echo "gpu_check: error: $*"; exit 2; }

TORCH_PINS=(torch==2.14.1 torchvision==0.29.1)  # as noxfile.py; used only when no torch is installed
# Import names of the non-torch dependencies in pyproject.toml.
IMPORTS="pytorch_lightning numpy pandas sklearn scipy imagecorruptions cv2 skimage PIL tabulate yaml pydantic matplotlib"

PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
[ -n "$PYTHON" ] || fail "no python or python3 on PATH; set PYTHON=/path/to/python"
if ! "$PYTHON" -c "import torch, torchvision" 2>/dev/null; then
    echo "gpu_check: $PYTHON has no torch/torchvision; trying pip install ${TORCH_PINS[*]}"
    "$PYTHON" -m pip install --quiet "${TORCH_PINS[@]}" || fail "pip could not install ${TORCH_PINS[*]} (offline?); \
set PYTHON to a Python that has torch"
fi

missing() {  # the import names in $IMPORTS that "$1" cannot import
    "$1" - "$IMPORTS" <<'EOF'
import importlib.util, sys
print(" ".join(name for name in sys.argv[1].split() if importlib.util.find_spec(name) is None))
EOF
}
MISSING="$(missing "$PYTHON")"
if [ -n "$MISSING" ]; then
    VENV="$ROOT/.venv-gpu-check"  # git ignores it; over the system packages, so a pre-installed torch stays
    echo "gpu_check: missing modules: $MISSING; installing the project's dependencies into $VENV"
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv --system-site-packages "$VENV" || fail "could not create $VENV"
    # pyproject's dependencies without torch / torchvision: pip must not replace the installed torch.
    mapfile -t DEPS < <("$PYTHON" - "$ROOT/pyproject.toml" <<'EOF'
import re, sys
block = re.search(r"^dependencies = \[(.*?)^\]", open(sys.argv[1]).read(), re.S | re.M).group(1)
print("\n".join(d for d in re.findall(r'"([^"]+)"', block) if not re.match(r"torch(vision)?\b", d)))
EOF
)
    "$VENV/bin/python" -m pip install --quiet "${DEPS[@]}" || fail "pip could not install ${DEPS[*]} (offline?)"
    PYTHON="$VENV/bin/python"
    MISSING="$(missing "$PYTHON")"
    [ -z "$MISSING" ] || fail "still missing after pip install: $MISSING"
fi

echo "gpu_check: python $PYTHON"
if command -v nvidia-smi >/dev/null; then nvidia-smi || true; else echo "gpu_check: no nvidia-smi"; fi
"$PYTHON" "$ROOT/benchmarks/gpu_check.py" --out "$OUT" --spent "$SECONDS" "$@"
code=$?
echo "gpu_check: exit $code after $SECONDS s; outputs in $OUT"
exit $code
