#!/usr/bin/env bash
# Generates the Python gRPC code (gen/shoprank) and the TypeScript messages (gen/ts, protoc-gen-es through buf;
# scripts/install.sh installs them under tools/node) from protos/. The one way generated code is made: never
# edit gen/ by hand.
# Usage: scripts/gen_protos.sh [OUT_DIR]   (default gen; CI generates into a temp dir and diffs)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-gen}
py=${PYTHON:-.venv/bin/python}
rm -rf "$out/shoprank"
mkdir -p "$out"
"$py" -m grpc_tools.protoc -I protos --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" protos/shoprank/v1/*.proto
for d in "$out/shoprank" "$out/shoprank/v1"; do : > "$d/__init__.py"; done
buf=tools/node/node_modules/.bin/buf
if [ ! -x "$buf" ]; then
  echo "gen_protos: $buf is missing; run scripts/install.sh (it installs tools/node with npm)" >&2
  exit 1
fi
rm -rf "$out/ts"
"$buf" generate protos --template buf.gen.yaml -o "$out/ts"
