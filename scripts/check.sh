#!/usr/bin/env bash
# Lint, format check and strict type check.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy shared svb_client uwv_server benchmarks scripts
scripts/lint_proto.sh
