#!/usr/bin/env bash
# Rewrap throughput of the key service: `sealpost serve` on loopback, one signed-in
# recipient, POST /v1/rewrap driven by wrk at a fixed concurrency, on SQLite and PostgreSQL.
#
#   bench/rewrap.sh                  # both backends, 64 connections, 20 s each
#   bench/rewrap.sh sqlite           # or: postgres
#   DURATION=10s CONNECTIONS=32 RUNS=2 bench/rewrap.sh
#   SEALPOST_BIN=/path/to/sealpost bench/rewrap.sh   # measure that binary (no build of it)
#   PG_SOCKET=/tmp/sealpost-test-pg bench/rewrap.sh postgres  # the service reaches PostgreSQL
#       over the cluster's Unix socket in that directory instead of TCP on 127.0.0.1
#   MAX_CONNECTIONS=4 bench/rewrap.sh  # the service's database pool size (default: the
#       service's own, two per core within 4-16)
#
# For each backend: a fresh tenant (`sealpost tenant init`), `sealpost serve` on a free
# loopback port with a temporary data directory (SQLite) or a fresh database on the private
# PostgreSQL cluster of scripts/postgres.sh, a message encrypted to one recipient with
# `sealpost encrypt`, a real sign-in (POST /v1/otp/start, the code read with
# `sealpost outbox list`, POST /v1/otp/verify), one checked rewrap, then
# `wrk -t THREADS -c CONNECTIONS -d DURATION --latency -s bench/rewrap.lua`.
# The service runs with its normal durability (SQLite synchronous=FULL, PostgreSQL
# synchronous_commit=on, audit fails closed); only the per-IP limit is switched off
# (`per_ip_per_minute = 0`: every request comes from 127.0.0.1) and the session idle timeout
# raised, so neither ends the run.
#
# Prints, per run: rewraps/s, p50, p99 (ms), non-2xx answers and socket errors, the CPU time
# the `sealpost serve` process used per rewrap (user + system; PostgreSQL's own processes are
# not counted) and the load average before the run, and checks
# that the database holds at least one `share_released` audit event per 200 answer. Target
# (2 cores, durable audit): >= 2000 rewraps/s with p99 <= 50 ms. Exits 0 whether or not the
# target is met; non-zero only if something could not be set up, or a check failed (a non-2xx
# answer, a socket error, or a released share without its audit record).
#
# Needs: cargo, and wrk, curl and jq (installed with apt-get when missing); PostgreSQL is
# installed and started by scripts/postgres.sh. wrk and the service share the machine's
# cores, so the numbers are for the pair, not the service alone.
set -euo pipefail

cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
RUNS=${RUNS:-1}
TARGET_RPS=2000
TARGET_P99_MS=50
PG_PORT=55432

backends=(sqlite postgres)
case "${1:-both}" in
    both) ;;
    sqlite | postgres) backends=("$1") ;;
    -h | --help) sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/rewrap.sh [sqlite|postgres|both]" >&2; exit 2 ;;
esac

say() { printf '%s\n' "$*"; }
die() { say "rewrap.sh: error: $*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------------------------
missing=()
for tool in wrk curl jq; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} with apt-get"
    if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null ||
        die "could not install ${missing[*]}"
fi

say "Building sealpost and the request helper (release)..."
[ -n "${SEALPOST_BIN:-}" ] || cargo build --quiet --release -p sealpost-cli
cargo build --quiet --release -p sealpost-keyservice --example rewrap_request
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
target_dir=${target_dir:-target}
sealpost=${SEALPOST_BIN:-$target_dir/release/sealpost}
helper="$target_dir/release/examples/rewrap_request"
[ -x "$sealpost" ] || die "built binary not found at $sealpost"
[ -x "$helper" ] || die "built helper not found at $helper"

# --- scratch space and cleanup ---------------------------------------------------------------
work=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-rewrap-bench.XXXXXX")
server_pid=
pg_db=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ -n "$pg_db" ]; then
        psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A TCP port on 127.0.0.1 that nothing listens on.
free_port() {
    local p
    for _ in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    die "no free port found"
}

kek=$(head -c 32 /dev/urandom | base64)
export SEALPOST_KEK=$kek

# One tenant and one message for all runs; the recipient is not in the tenant's domain.
"$sealpost" tenant init --dir "$work/tenant" --domain bench.example --name "Bench Corp" >/dev/null
printf 'From: alice@bench.example\r\nTo: bob@example.org\r\nSubject: benchmark\r\n\r\nHello Bob.\r\n' |
    "$sealpost" encrypt --tenant "$work/tenant" >"$work/wrapper.eml"
"$helper" bodies --email bob@example.org --out "$work" <"$work/wrapper.eml"
reference=$(cat "$work/reference.txt")
message_id=$(cat "$work/message_id.txt")
tenant_id=$(cat "$work/tenant_id.txt")

cat >"$work/sealpost.toml" <<'EOF'
[keyservice]
# Every request comes from 127.0.0.1: the per-IP limit would refuse all but 120 a minute.
per_ip_per_minute = 0
session_idle_secs = 3600
session_absolute_secs = 43200
EOF
if [ -n "${MAX_CONNECTIONS:-}" ]; then
    echo "max_connections = $MAX_CONNECTIONS" >>"$work/sealpost.toml"
fi

post() { # PATH BODY_FILE [TOKEN] -> prints "STATUS BODY"
    local auth=()
    [ -n "${3:-}" ] && auth=(-H "Authorization: Bearer $3")
    curl -sS -o "$work/answer.json" -w '%{http_code}' -X POST "$base$1" \
        -H 'Content-Type: application/json' -H 'X-Sealpost-Client: 1' "${auth[@]}" \
        --data-binary "@$2"
}

start_server() { # BACKEND
    local db_args=()
    data="$work/data-$1"
    db_url="sqlite://$data/sealpost.db"
    if [ "$1" = postgres ]; then
        local url
        url=$(scripts/postgres.sh start) || die "scripts/postgres.sh could not start PostgreSQL"
        [ -n "$url" ] || die "scripts/postgres.sh printed no URL"
        pg_db="sealpost_bench_$$"
        PGOPTIONS=--client-min-messages=warning psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS $pg_db" -c "CREATE DATABASE $pg_db" >/dev/null ||
            die "cannot create database $pg_db"
        if [ -n "${PG_SOCKET:-}" ]; then
            # The cluster's Unix socket (scripts/postgres.sh -k DIR), as a co-located service
            # would connect.
            db_url="postgres://postgres@localhost/$pg_db?host=$PG_SOCKET&port=$PG_PORT"
        else
            db_url="postgres://postgres@127.0.0.1:$PG_PORT/$pg_db"
        fi
        db_args=(--database-url "$db_url")
    fi
    port=$(free_port)
    base="http://127.0.0.1:$port"
    RUST_LOG=${RUST_LOG:-warn} "$sealpost" serve --data "$data" "${db_args[@]}" \
        --config "$work/sealpost.toml" --tenant "$work/tenant" --listen "127.0.0.1:$port" \
        >"$work/serve-$1.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 1 300); do
        curl -fsS "$base/healthz" >/dev/null 2>&1 && return 0
        kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve-$1.log" >&2; die "sealpost serve exited"; }
        sleep 0.2
    done
    cat "$work/serve-$1.log" >&2
    die "sealpost serve did not come up on $base"
}

stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
}

drop_db() {
    if [ -n "$pg_db" ]; then
        psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
            -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null || true
        pg_db=
    fi
}

sign_in() { # -> sets $session
    local status challenge code
    status=$(post /v1/otp/start "$work/otp_start.json")
    [ "$status" = 200 ] || die "otp/start answered $status: $(cat "$work/answer.json")"
    challenge=$(jq -r .challenge "$work/answer.json")
    # The passcode mail names the message reference; its code is the line of 8 digits.
    code=$("$sealpost" outbox list --data "$data" "${db_args_outbox[@]}" --limit 100 |
        awk -v ref="$reference" '/^--- #/ { mine = 0 } index($0, ref) { mine = 1 }
            mine && length($1) == 8 && $1 ~ /^[0-9]+$/ { print $1; exit }')
    [ -n "$code" ] || die "no passcode mail for $reference in the outbox"
    jq -n --arg c "$challenge" --arg k "$code" '{challenge: $c, code: $k}' >"$work/verify.json"
    status=$(post /v1/otp/verify "$work/verify.json")
    [ "$status" = 200 ] || die "otp/verify answered $status: $(cat "$work/answer.json")"
    session=$(jq -r .session "$work/answer.json")
    status=$(post /v1/rewrap "$work/rewrap.json" "$session")
    [ "$status" = 200 ] || die "a single rewrap answered $status: $(cat "$work/answer.json")"
}

# CPU time (user + system) the server process has used so far, in milliseconds.
server_cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%d", ($12 + $13) * 1000 / hz }' "/proc/$server_pid/stat"
}

num() { awk -v s="$1" -v k="$2" 'BEGIN { n = split(s, f, " "); for (i = 1; i <= n; i++) { split(f[i], kv, "="); if (kv[1] == k) { print kv[2]; exit } } }'; }

failed=0
results=()
say ""
say "Machine: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) logical CPUs"
say "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency, $RUNS run(s) per backend"
for backend in "${backends[@]}"; do
    start_server "$backend"
    db_args_outbox=()
    [ "$backend" = postgres ] && db_args_outbox=(--database-url "$db_url")
    sign_in
    ok_total=1 # the checked rewrap in sign_in
    for run in $(seq 1 "$RUNS"); do
        load_before=$(cut -d' ' -f1-3 /proc/loadavg)
        cpu_before=$(server_cpu_ms)
        say ""
        say "== $backend, run $run (load average before: $load_before)"
        out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency --timeout 10s \
            -s bench/rewrap.lua "$base" -- "$work/rewrap.json" "$session") ||
            die "wrk failed: $out"
        cpu_ms=$(($(server_cpu_ms) - cpu_before))
        say "$out" | sed -n '/Latency Distribution/,/Requests\/sec/p'
        line=$(say "$out" | grep '^RESULT ') || die "no RESULT line from wrk: $out"
        requests=$(num "$line" requests)
        seconds=$(num "$line" duration_s)
        non2xx=$(num "$line" non2xx)
        sockerr=$(num "$line" socket_errors)
        p50=$(num "$line" p50_ms)
        p99=$(num "$line" p99_ms)
        rps=$(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')
        cpu_per=$(awk -v c="$cpu_ms" -v r="$requests" 'BEGIN { printf "%.2f", r ? c / r : 0 }')
        ok_total=$((ok_total + requests - non2xx))
        results+=("$(printf '| %-8s | %3d | %9s | %6s | %6s | %7s | %8s | %14s | %s |' \
            "$backend" "$run" "$rps" "$p50" "$p99" "$non2xx" "$sockerr" "$cpu_per" "$load_before")")
        if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then
            say "CHECK FAILED: $non2xx non-2xx answers and $sockerr socket errors (see $work/serve-$backend.log)"
            failed=1
        fi
    done
    # Every 200 carried a share whose audit record had to be durable first. (There can be
    # more records than answers counted: requests still in flight when wrk stops.)
    stop_server
    released=$("$helper" released --database-url "$db_url" --tenant-id "$tenant_id" --message-id "$message_id") ||
        die "cannot count the audit events"
    if [ "$released" -ge "$ok_total" ]; then
        say "audit check: $released share_released events >= $ok_total answers 200"
    else
        say "CHECK FAILED: only $released share_released events for $ok_total answers 200"
        failed=1
    fi
    drop_db
done

say ""
say "| backend  | run | rewraps/s | p50 ms | p99 ms | non-2xx | sock err | server CPU ms/rw | load before |"
say "|----------|-----|----------:|-------:|-------:|--------:|---------:|-----------------:|-------------|"
for r in "${results[@]}"; do say "$r"; done
say ""
met=1
missed=0
for r in "${results[@]}"; do
    rps=$(awk -F'|' '{ gsub(/ /, "", $4); print $4 }' <<<"$r")
    p99=$(awk -F'|' '{ gsub(/ /, "", $6); print $6 }' <<<"$r")
    awk -v r="$rps" -v p="$p99" -v tr="$TARGET_RPS" -v tp="$TARGET_P99_MS" \
        'BEGIN { exit !(r + 0 >= tr && p + 0 <= tp) }' || { met=0; missed=$((missed + 1)); }
done
if [ "$met" = 1 ]; then
    say "TARGET MET in every run: >= $TARGET_RPS rewraps/s and p99 <= $TARGET_P99_MS ms."
else
    say "TARGET NOT MET in $missed of ${#results[@]} runs (>= $TARGET_RPS rewraps/s and p99 <= $TARGET_P99_MS ms)."
fi
[ "$failed" = 0 ] || die "some checks failed (see above)"
