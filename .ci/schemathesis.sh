#!/usr/bin/env bash
# Fuzzes `shoprelay shop mock` against shop_adapter_spec/openapi.yaml with Schemathesis: its
# default checks, every phase (examples, coverage, fuzzing, stateful), bounded by --max-examples
# and a timeout. The mock runs WITH a signing secret; .ci/schemathesis_hooks.py signs each
# request with the official standardwebhooks library. Fails when Schemathesis finds anything, or
# when no signed push was accepted.
# Usage: .ci/schemathesis.sh PYTHON_VENV SHOPRELAY_BINARY
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$1"
bin="$2"
secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
log="$(mktemp)"
signed="$(mktemp)"
"$bin" shop mock --listen 127.0.0.1:0 --token shop-token --signing-secret "$secret" >"$log" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true; rm -f "$log" "$signed"' EXIT
base=""
for _ in $(seq 1 100); do
  base="$(sed -n 's/.*base_url = "\(http[^"]*\)".*/\1/p' "$log")"
  [ -n "$base" ] && break
  kill -0 "$mock" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$base" ] || { echo "shop mock did not start" >&2; cat "$log" >&2; exit 1; }
SHOP_SIGNING_SECRET="$secret" SCHEMATHESIS_SIGNED_LOG="$signed" PYTHONPATH=.ci SCHEMATHESIS_HOOKS=schemathesis_hooks \
  timeout 600 "$venv/bin/st" run shop_adapter_spec/openapi.yaml \
  --url "$base" \
  -H "Authorization: Bearer shop-token" \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
  --seed "${SCHEMATHESIS_SEED:-20261129}" \
  --no-color

# The hook's signatures verified: pushes of both kinds were accepted, none refused for its
# signature (otherwise the run above proved little: a 401 is an accepted answer to valid data).
if grep -q '^signature-refused' "$signed"; then
  echo "the mock refused signatures the hook made:" >&2
  grep '^signature-refused' "$signed" | head -5 >&2
  exit 1
fi
for method in POST PUT; do
  n="$(grep -c "^accepted $method\$" "$signed" || true)"
  echo "signed ${method}s the mock accepted: $n"
  [ "$n" -gt 0 ] || { echo "no signed $method was accepted" >&2; exit 1; }
done
