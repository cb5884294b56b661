#!/usr/bin/env bash
# Create .venv and install the project with its development tools (idempotent, quick when current).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "installing the project and its tools into .venv (first run takes a few minutes)…" >&2
  .venv/bin/python -m pip install --quiet --upgrade pip >&2
  .venv/bin/python -m pip install --quiet -e '.[dev]' >&2
  rm -f .venv/.installed-*
  touch "$stamp"
fi
