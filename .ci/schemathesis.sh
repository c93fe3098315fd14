#!/usr/bin/env bash
# Fuzzes `shoprelay shop mock` against shop_adapter_spec/openapi.yaml with Schemathesis: its
# default checks, every phase (examples, coverage, fuzzing, stateful), bounded by --max-examples
# and a timeout. The mock runs WITH a signing secret; .ci/schemathesis_hooks.py signs each
# request with the official standardwebhooks library. Fails when Schemathesis finds anything.
# Usage: .ci/schemathesis.sh PYTHON_VENV SHOPRELAY_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$1"
bin="$2"
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
log="$(mktemp)"
"$bin" shop mock --listen 127.0.0.1:0 --token shop-token --signing-secret "$secret" >"$log" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true; rm -f "$log"' EXIT
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/.*base_url = "\(http[^"]*\)".*/\1/p' "$log")"
  [ -n "$base" ] && break
  kill -0 "$mock" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "shop mock did not start" >&2; cat "$log" >&2; exit 1; }
SHOP_SIGNING_SECRET="$secret" PYTHONPATH=.ci SCHEMATHESIS_HOOKS=schemathesis_hooks \
  timeout 600 "$venv/bin/st" run shop_adapter_spec/openapi.yaml \
  --url "$base" \
  -H "Authorization: Bearer shop-token" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
  --seed "${SCHEMATHESIS_SEED:-20261129}" \
  --no-color
