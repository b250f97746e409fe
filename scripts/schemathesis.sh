#!/usr/bin/env bash
# A bounded schemathesis run against the key service's own OpenAPI document.
#
#   scripts/schemathesis.sh
#
# Builds `sealpost`, makes a demo-like tenant (Example Corp, example.com) in a temporary
# directory, starts `sealpost serve` on a free loopback port on a fresh SQLite database, and runs
# schemathesis (PyPI, pinned below, installed into a virtualenv under target/ when missing)
# against http://127.0.0.1:PORT/v1/openapi.json with the checks: not a server error, response
# schema conformance, status code conformance and content type conformance. Mutating calls get
# the `X-Sealpost-Client: 1` header the API requires, and every request an admin token of the
# tenant (so revoke and audit can succeed; elsewhere it is a wrong bearer token). Exits non-zero on any failure, stops the
# service in every case, and prints one summary line.
#
# Bounded: SEALPOST_SCHEMATHESIS_EXAMPLES test cases per operation in the fuzzing phase (default
# 150; the examples and coverage phases are bounded by the schema), and the run is stopped as a
# failure after SEALPOST_SCHEMATHESIS_MAX_TIME seconds (default 150). SEALPOST_SCHEMATHESIS_SEED
# (default fixed, so runs repeat) and SEALPOST_SCHEMATHESIS_CHECKS override the seed and checks. One worker: CPython 3.11's
# parser is not thread-safe under Hypothesis (a SystemError from `ast`). Python 3 with venv comes
# from Debian's python3-venv when missing (as root).
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
VENV=${SEALPOST_SCHEMATHESIS_VENV:-target/schemathesis-venv}
EXAMPLES=${SEALPOST_SCHEMATHESIS_EXAMPLES:-150}
MAX_TIME=${SEALPOST_SCHEMATHESIS_MAX_TIME:-150}
SEED=${SEALPOST_SCHEMATHESIS_SEED:-20261128}
CHECKS=${SEALPOST_SCHEMATHESIS_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance}

log() { echo "schemathesis.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- install (skipped when present) ----------------------------------------------------------
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "python3 with venv is missing: sudo apt-get install -y python3-venv"
    log "installing Debian's python3-venv"
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y python3 python3-venv >&2
fi
if [ "$("$VENV/bin/st" --version 2>/dev/null || true)" != "st, version $VERSION" ]; then
    log "installing schemathesis $VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION" >&2
fi

# --- the service -----------------------------------------------------------------------------
cargo build --locked --quiet -p sealpost-cli
SEALPOST=$PWD/target/debug/sealpost

tmp=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
        kill "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

"$SEALPOST" tenant init --dir "$tmp/tenant" --domain example.com --name "Example Corp" >/dev/null
# Schemathesis sends many requests from one address: the per-IP limit would answer most of
# them 429, which is correct but tests nothing else.
printf '[keyservice]\nper_ip_per_minute = 1000000\n' >"$tmp/sealpost.toml"
port=$("$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
SEALPOST_KEK=$("$VENV/bin/python" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')
export SEALPOST_KEK
"$SEALPOST" serve --data "$tmp/data" --tenant "$tmp/tenant" --config "$tmp/sealpost.toml" \
--listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
server=$!

up=
for _ in $(seq 1 300); do
    kill -0 "$server" 2>/dev/null || { cat "$tmp/serve.log" >&2; die "sealpost serve exited"; }
    if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('$base/healthz', timeout=2)" 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.2
done
[ -n "$up" ] || { cat "$tmp/serve.log" >&2; die "sealpost serve did not come up on $base"; }
token=$("$SEALPOST" admin token create --data "$tmp/data" --tenant-id example.com --label schemathesis)
log "sealpost serve on $base; schemathesis $VERSION, $EXAMPLES examples per operation, at most $MAX_TIME s"

# --- the run ---------------------------------------------------------------------------------
start=$(date +%s)
status=0
NO_COLOR=1 timeout "$MAX_TIME" "$VENV/bin/st" run "$base/v1/openapi.json" \
    --checks "$CHECKS" \
    --header 'X-Sealpost-Client: 1' \
    --header "Authorization: Bearer $token" \
    --max-examples "$EXAMPLES" \
    --request-timeout 10 \
    --seed "$SEED" \
    --workers 1 \
    --no-shrink \
    --warnings off \
    >"$tmp/st.log" 2>&1 || status=$?
cat "$tmp/st.log"
[ "$status" -ne 124 ] || log "schemathesis did not finish within $MAX_TIME s"

if kill -0 "$server" 2>/dev/null; then
    kill "$server"
    wait "$server" 2>/dev/null || true
else
    status=1
    log "sealpost serve died during the run"
    cat "$tmp/serve.log" >&2
fi
server=

summary=$(grep -A1 '^Test cases:' "$tmp/st.log" | tail -n 1 | sed 's/^ *//; s/ *$//' || true)
elapsed=$(($(date +%s) - start))
if [ "$status" -eq 0 ]; then
    echo "schemathesis: passed in ${elapsed}s (${summary:-no summary})"
else
    echo "schemathesis: FAILED (exit $status) in ${elapsed}s (${summary:-no summary})"
fi
exit "$status"
