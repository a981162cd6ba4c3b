#!/usr/bin/env bash
# The GPU proof in one command (docs/performance.md, "GPU check"):
#
#     OUT=/some/folder bash benchmarks/gpu_check.sh [--mode auto|gpu|cpu] [more benchmarks/gpu_check.py options]
#
# Uses the torch of the Python it finds ($PYTHON, else python / python3) as it is, and never touches the
# network: what that Python lacks of the project's dependencies it installs from the bundle made by
# benchmarks/gpu_bundle.py (gpu-check-data/wheels; `nox -s gpu_bundle`) with pip --no-index into a target
# folder on PYTHONPATH, so that no installed package is replaced; anything still missing stops it with one
# `gpu_check: error:` line. The project runs from this tree (PYTHONPATH), not installed. It prints the GPU,
# then runs benchmarks/gpu_check.py: versions, the training-step benchmark, a shortened suites/cifar100.yaml
# on the subset in gpu-check-data/ and the compiled benchmark. Everything, this log included (gpu_check.log),
# goes under $OUT (default: a new temporary folder). Without a GPU it runs the reduced CPU mode (minutes).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${OUT:-$(mktemp -d -t gpu-check.XXXXXX)}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
exec > >(tee -a "$OUT/gpu_check.log") 2>&1
echo "gpu_check: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), output under $OUT"
fail() { echo "gpu_check: error: $*"; exit 2; }

BUNDLE="${GPU_CHECK_BUNDLE:-$ROOT/gpu-check-data}"  # benchmarks/gpu_bundle.py make
# Import names of the non-torch dependencies in pyproject.toml (cv2: opencv-python or opencv-python-headless).
IMPORTS="pytorch_lightning numpy pandas sklearn scipy imagecorruptions cv2 skimage PIL tabulate yaml pydantic matplotlib"

PYTHON="${PYTHON:-$(command -v python || command -v python3 || true)}"
[ -n "$PYTHON" ] || fail "no python or python3 on PATH; set PYTHON=/path/to/python"
"$PYTHON" -c "import torch, torchvision" 2>/dev/null || fail "$PYTHON cannot import torch and torchvision; set \
PYTHON to a Python that has them (this check installs no torch)"

missing() {  # the import names in $IMPORTS that $PYTHON cannot import
    "$PYTHON" - "$IMPORTS" <<'EOF'
import importlib.util, sys
print(" ".join(name for name in sys.argv[1].split() if importlib.util.find_spec(name) is None))
EOF
}
offline_pip() {  # pip that reads only the wheel files it is given: no index, no pip config or PIP_* variables
    PIP_CONFIG_FILE=/dev/null "$PYTHON" -m pip --isolated install --quiet --no-index --no-deps --no-compile \
        --no-cache-dir --disable-pip-version-check --upgrade --target "$SITE" "$@"
}
MISSING="$(missing)"
if [ -n "$MISSING" ]; then
    [ -d "$BUNDLE/wheels" ] || fail "$PYTHON lacks the modules $MISSING, and there is no $BUNDLE/wheels to \
install them from; run 'nox -s gpu_bundle' where PyPI is reachable, and carry gpu-check-data"
    SITE="${GPU_CHECK_SITE:-$(mktemp -d -t gpu-check-site.XXXXXX)}"
    [ -n "${GPU_CHECK_SITE:-}" ] || trap 'rm -rf "$SITE"' EXIT  # a folder of its own: gone with the check
    echo "gpu_check: missing modules: $MISSING; installing $BUNDLE/wheels into $SITE (pip --no-index)"
    offline_pip "$BUNDLE"/wheels/*.whl || fail "pip could not install $BUNDLE/wheels/*.whl into $SITE"
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    for round in 1 2; do  # round 2: the fallback wheels of round 1 met every requirement
        UPGRADES="$("$PYTHON" "$ROOT/benchmarks/gpu_bundle.py" upgrades "$BUNDLE" "$SITE")" \
            || fail "the bundle's wheels need what $PYTHON does not have (above)"
        [ -n "$UPGRADES" ] || break
        [ "$round" = 1 ] || fail "still unmet after installing the fallback wheels: $UPGRADES"
        mapfile -t WHEELS <<< "$UPGRADES"
        echo "gpu_check: $PYTHON has too old a version for the bundle's wheels; installing ${WHEELS[*]}"
        offline_pip "${WHEELS[@]}" || fail "pip could not install ${WHEELS[*]} into $SITE"
    done
    MISSING="$(missing)"
    [ -z "$MISSING" ] || fail "still missing after installing the bundle: $MISSING"
    echo "gpu_check: bundle installed; $SECONDS s since the start"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # the project from this tree

echo "gpu_check: python $PYTHON"
if command -v nvidia-smi >/dev/null; then nvidia-smi || true; else echo "gpu_check: no nvidia-smi"; fi
"$PYTHON" "$ROOT/benchmarks/gpu_check.py" --out "$OUT" --spent "$SECONDS" "$@"
code=$?
echo "gpu_check: exit $code after $SECONDS s; outputs in $OUT"
exit $code
