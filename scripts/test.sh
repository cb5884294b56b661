#!/usr/bin/env bash
# The test suite: unit, integration (real gRPC servers on free localhost ports), property and
# attack tests. Installs what it needs first. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
