#!/usr/bin/env bash
# The main job end to end on the embedded default: synthetic UWV polis data, a real UWV server
# on localhost, a real SVB batch in masked mode, every decision checked against the oracle.
#   HOUSEHOLDS=100000 PERIOD=2025-01..2025-12 ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
HOUSEHOLDS=${HOUSEHOLDS:-100000}
PERIOD=${PERIOD:-2025-01..2025-12}
WORK=${WORK:-demo-run}
BIN=.venv/bin
rm -rf "$WORK" && mkdir -p "$WORK"

echo "== UWV: generate a synthetic polis and SVB's matching household file"
"$BIN/uwv-server" generate --households "$HOUSEHOLDS" --period "$PERIOD" --out "$WORK/data"
echo "== UWV: load the polis into the store"
"$BIN/uwv-server" load --polis "$WORK/data/polis.parquet" --store "$WORK/store"

echo "== keys: SVB's rule author, UWV's approver (operator) and runner; one registry"
# Demo passphrases; a real operator keeps them in a secret store or types them in.
export AIO_SIGNING_PASSPHRASE
AIO_SIGNING_PASSPHRASE=$(head -c 24 /dev/urandom | base64)
for who in svb:SVB:author uwv:UWV:approver runner:UWV:runner; do
  IFS=: read -r name org role <<< "$who"
  "$BIN/uwv-server" keys signing-init --key "$WORK/$name.key" --owner "$name" > /dev/null
  "$BIN/uwv-server" keys registry-add --registry "$WORK/registry.yaml" --key "$WORK/$name.key" \
    --name "$name" --organisation "$org" --role "$role" > /dev/null
done

echo "== UWV: a development PKI (CA, UWV's server certificate, SVB's and the auditor's)"
# One demo passphrase for the TLS keys; in production each organisation has its own.
head -c 24 /dev/urandom | base64 > "$WORK/tls-passphrase"
"$BIN/uwv-server" pki init "$WORK/pki" --passphrase-file "$WORK/tls-passphrase" --days 2 \
  > /dev/null
# Network roles are UWV's configuration, in the same key registry (not in the certificates).
cat >> "$WORK/registry.yaml" <<'YAML'
organisations:
  - {name: SVB, oin: "00000099000000000020", roles: [screener]}
  - {name: ADR, oin: "00000099000000000030", roles: [auditor]}
YAML
TLS=(--tls-passphrase-file "$WORK/tls-passphrase")

echo "== UWV: serve over mutual TLS on localhost (log: $WORK/server.log)"
# UWV computes only rules it approved, in every mode: the register lives in --enclave-state.
"$BIN/uwv-server" serve --store "$WORK/store" --port 0 --port-file "$WORK/port" \
  --tls "$WORK/pki/server" "${TLS[@]}" \
  --enclave-state "$WORK/state" --registry "$WORK/registry.yaml" \
  --runner-key "$WORK/runner.key" 2> "$WORK/server.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true; wait $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
[ -s "$WORK/port" ] || { echo "server did not start:"; cat "$WORK/server.log"; exit 1; }
PORT=$(cat "$WORK/port")

RULE=${RULE:-rules/aio.yaml}
echo "== SVB submits the signed rule; UWV's operator approves it with the UWV key"
"$BIN/svb-client" rules submit "$RULE" --server "localhost:$PORT" \
  --tls-dir "$WORK/pki/svb" "${TLS[@]}" \
  --key "$WORK/svb.key" > /dev/null
STATE=(--state "$WORK/state" --registry "$WORK/registry.yaml")
DIGEST=$("$BIN/uwv-server" rules list "${STATE[@]}" | awk '$2 == "pending" {print $1; exit}')
[ -n "$DIGEST" ] || { echo "the rule was not submitted"; exit 1; }
"$BIN/uwv-server" rules approve "$DIGEST" "${STATE[@]}" --key "$WORK/uwv.key"

echo "== SVB: screen $HOUSEHOLDS households (masked mode) over mutual TLS"
# A demo passphrase; a real operator keeps it in a secret store or types it in.
head -c 24 /dev/urandom | base64 > "$WORK/passphrase"
# SVB's certificate identifies it; UWV's audit log records that identity (its OIN).
"$BIN/svb-client" screen --server "localhost:$PORT" --tls-dir "$WORK/pki/svb" "${TLS[@]}" \
  --households "$WORK/data/households.parquet" \
  --period "$PERIOD" --mode masked --rule "$RULE" --out "$WORK/outreach.csv" \
  --key "$WORK/svb-key.enc" --passphrase-file "$WORK/passphrase"

echo "== check: every decision against the plaintext oracle (test tool: it sees both sides' data)"
"$BIN/python" -m shared.oracle --store "$WORK/store" --households "$WORK/data/households.parquet" \
  --period "$PERIOD" --outreach "$WORK/outreach.csv"
echo "== UWV server log (tail)"
tail -n 4 "$WORK/server.log"
