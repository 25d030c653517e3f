#!/usr/bin/env bash
# The GPU benchmark on a bare GPU machine: nothing but this repository and the wheels in .whl/
# (`make gpu-wheels` downloads them here: tritonclient, python-rapidjson, nvidia-pytriton for the
# machine's Python). Unpacks them under /tmp/site, then runs bench/gpu_bench.py, whose full log and
# JSON go to $OUT (default bench/results). Usage: bash bench/gpu_run.sh [gpu_bench.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench/results}"
mkdir -p "$OUT"
SITE=/tmp/site
PY="${PYTHON:-python3}"
if ! "$PY" -c "import tritonclient.grpc, pytriton" 2>/dev/null; then
  mkdir -p "$SITE"
  for wheel in .whl/*.whl; do
    "$PY" -m zipfile -e "$wheel" "$SITE"  # manylinux tags may not match this machine's pip: unpack instead
  done
  for lib in "$SITE"/*.data/purelib "$SITE"/*.data/platlib; do
    [ -d "$lib" ] && cp -r "$lib"/. "$SITE"/
  done
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export LD_LIBRARY_PATH="$SITE/nvidia_pytriton.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
"$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
"$PY" bench/gpu_bench.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu-bench.log"
