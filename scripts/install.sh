#!/usr/bin/env bash
# One install path for a fresh machine: system library for Triton's python stub, the project
# virtualenv (.venv) with every Python dependency, the tritonserver wheel, and generated gRPC code.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pyver=$($PY -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')

# Triton's python-backend stub embeds libpython; pyenv/uv Pythons often ship without the shared library.
if ! ldconfig -p | grep -q "libpython${pyver}.so.1.0"; then
  echo "installing libpython${pyver} (Triton's python backend stub needs it)"
  if command -v apt-get >/dev/null; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "libpython${pyver}" >/dev/null
  else
    echo "please install libpython${pyver}.so.1.0 with your system's package manager" >&2; exit 1
  fi
fi

# The native run of compose.yaml (devtools/compose_native.py) runs the gateway's nginx and its healthcheck's nc.
missing=""
command -v nginx >/dev/null || missing="$missing nginx-light"
command -v nc >/dev/null || missing="$missing netcat-openbsd"
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null; then
    echo "installing$missing (the native compose check runs them)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing >/dev/null
  else
    echo "please install$missing with your system's package manager (the native compose check needs them)" >&2; exit 1
  fi
fi

[ -x .venv/bin/python ] || $PY -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch==2.13.0 first, so nothing later pulls a multi-GB CUDA build in its place: a build already on this
# machine (TORCH_WHEEL=path, or pip's configured find-links/wheelhouse) when there is one, else the CPU
# index. A GPU machine installs its CUDA build on purpose (README: GPUs), never by accident here.
if [ -n "${TORCH_WHEEL:-}" ]; then
  .venv/bin/python -m pip install -q "$TORCH_WHEEL"
elif .venv/bin/python -m pip install -q --no-index --no-deps torch==2.13.0 2>/dev/null; then
  .venv/bin/python -m pip install -q torch==2.13.0  # its dependencies, from the usual index
else
  .venv/bin/python -m pip install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
fi
.venv/bin/python -m pip install -q -e '.[dev]'
# Only the tritonserver binary is used; the wheel pins numpy<2 while Feast needs numpy>=2.
.venv/bin/python -m pip install -q --no-deps nvidia-pytriton==0.7.0
# The compose-spec JSON schema that tests validate compose.yaml against: the copy docker-compose 1.29.2 ships
# (its wheel only; nothing of it is installed or imported).
if [ ! -f .venv/share/compose-spec/compose_spec.json ]; then
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download -q --no-deps --only-binary=:all: -d "$tmp" docker-compose==1.29.2
  mkdir -p .venv/share/compose-spec
  .venv/bin/python -c "import sys, zipfile; open(sys.argv[2], 'wb').write(zipfile.ZipFile(sys.argv[1]).read('compose/config/compose_spec.json'))" \
    "$tmp"/docker_compose-1.29.2-*.whl .venv/share/compose-spec/compose_spec.json
  rm -rf "$tmp"
fi
# buf (proto lint and breaking-change check) and the TypeScript generator, pinned in tools/node/package-lock.json.
if ! command -v npm >/dev/null; then
  echo "please install Node.js with npm (buf and the TypeScript stubs come from the npm registry)" >&2; exit 1
fi
npm ci --prefix tools/node --no-audit --no-fund --silent
scripts/gen_protos.sh
.venv/bin/python -c "import torch, feast, celery, tritonclient.grpc, shoprank.v1.scoring_pb2; from devtools.triton_launcher import locate; print('install ok: torch', torch.__version__, '| feast', feast.__version__, '| tritonserver', locate().binary)"
