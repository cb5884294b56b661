#!/usr/bin/env bash
# Lint and format-check the protobuf contract with buf (STANDARD rules, see buf.yaml).
# Installs buf (the npm package @bufbuild/buf, pinned) into a cache folder on first use.
# Prints nothing and exits 0 when the contract is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=1.75.0
CACHE=${BUF_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/aio-screening/buf-$BUF_VERSION}
BUF=$CACHE/node_modules/.bin/buf
if [ ! -x "$BUF" ]; then
  command -v npm >/dev/null || { echo "lint_proto: npm is needed to install buf" >&2; exit 2; }
  echo "lint_proto: installing @bufbuild/buf@$BUF_VERSION into $CACHE" >&2
  npm install --silent --no-audit --no-fund --prefix "$CACHE" "@bufbuild/buf@$BUF_VERSION" >&2
fi
"$BUF" lint
# buf format -d prints the diff; --exit-code makes a non-empty diff fail the check.
"$BUF" format -d --exit-code
