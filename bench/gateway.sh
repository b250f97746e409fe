#!/usr/bin/env bash
# Throughput and added latency of the gateway behind a real Postfix, next to Postfix alone.
#
#   bench/gateway.sh                       # 10 KB, 100 KB and 5 MB messages, 20 connections
#   SIZES="102400" bench/gateway.sh        # one size only
#   COUNT_10K=3000 COUNT_100K=2000 COUNT_5M=60 CONCURRENCY=20 ROUNDS=3 bench/gateway.sh  # defaults
#   SEALPOST_BIN=/path/to/sealpost bench/gateway.sh   # measure that binary (no build)
#   WORK=/var/tmp/gw-bench bench/gateway.sh           # default: target/bench-gateway
#   PATHS="postfix gateway proxy" bench/gateway.sh
#       default "postfix gateway proxy encrypted proxy-encrypted"
#   RELAY_FIRST=false bench/gateway.sh  # both gateways spool first (the gateway's default)
#   SPEED_ADJUST=0 bench/gateway.sh     # proxy path without smtpd_proxy_options = speed_adjust
# Defaults: the set-ups docs/gateway.md recommends behind Postfix — both gateways with
# relay_first = true (each message relayed back into Postfix before the 250: Postfix's queue is
# the durable spool), the before-queue Postfix with smtpd_proxy_options = speed_adjust.
#
# Three private Postfix instances (scripts/postfix.sh, loopback only, durable queue):
#   A  "gateway":  after queue (FILTER_README): client → Postfix A :LISTEN_A (queued) →
#                  content_filter → sealpost gateway (release build) → Postfix A re-injection
#                  smtpd (queued again; with relay_first before the gateway's 250, else after
#                  the gateway's own durable spool) → sink
#   C  "proxy":    before queue (SMTPD_PROXY_README): client → Postfix C smtpd :LISTEN_C →
#                  smtpd_proxy_filter → a second sealpost gateway (own spool; its 250 is the
#                  client's 250) → Postfix C re-injection smtpd (queued once) → sink
#   B  "postfix":  client → Postfix B :LISTEN_B → sink
# The client and the sink are one process, bench/gateway_load.rs (std-only Rust, compiled with
# rustc -O): CONCURRENCY client connections submit messages of one size, its sink receives them
# wherever they were relayed. Per size it runs, ROUNDS times alternating B and A:
#   - saturation: COUNT messages back to back → messages/s (count / (last arrival − first
#     submission start));
#   - paced: RATE messages/s, open loop → latency p50/p99 (submission start → arrival at the
#     sink) at a load both paths sustain; "added" = gateway path − Postfix alone;
#   - the gateway process's CPU time (user + system) per message in the last saturated round.
# The gateway's rules are examples/gateway.toml's; the benchmark mail goes to an outside
# recipient and matches no rule (passed through, the common case), and once more with
# "[secure]" in its subject, which makes the gateway encrypt every message (Encrypt-Only):
# paths "encrypted" (after queue) and "proxy-encrypted" (before queue).
# Everything (queues, spool, tenant, logs) lives under WORK on the same disk; nothing is
# tmpfs-backed, so Postfix's and the gateway's fsyncs are real.
#
# Prints a Markdown table. Target (2 cores): >= 300 msgs/s at 100 KB through the gateway, and
# >= half of Postfix-alone throughput; one verdict line per gateway path (after / before queue).
# Exits 0 whether or not the target is met; non-zero if something could not be set up or a
# message was lost.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)

SIZES=${SIZES:-"10240 102400 5242880"}
CONCURRENCY=${CONCURRENCY:-20}
ROUNDS=${ROUNDS:-3}
COUNT_10K=${COUNT_10K:-3000}
COUNT_100K=${COUNT_100K:-2000}
COUNT_5M=${COUNT_5M:-60}
PATHS=${PATHS:-"postfix gateway proxy encrypted proxy-encrypted"}
SPEED_ADJUST=${SPEED_ADJUST-1}
case "$SPEED_ADJUST" in 1 | true | yes) SPEED_ADJUST=1 ;; 0 | false | no | "") SPEED_ADJUST= ;; *) echo "gateway.sh: SPEED_ADJUST must be 1 or 0" >&2; exit 2 ;; esac
RELAY_FIRST=${RELAY_FIRST:-true}
case "$RELAY_FIRST" in true | false) ;; 1) RELAY_FIRST=true ;; 0) RELAY_FIRST=false ;; *) echo "gateway.sh: RELAY_FIRST must be true or false" >&2; exit 2 ;; esac
WORK=${WORK:-$ROOT/target/bench-gateway}

say() { printf '%s\n' "$*"; }
die() { say "gateway.sh: error: $*" >&2; exit 1; }

case "${1:-}" in
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    "") ;;
    *) die "unknown argument '$1' (see --help)" ;;
esac

# --- tools -----------------------------------------------------------------------------------
bash scripts/postfix.sh install
has() { case " $PATHS " in *" $1 "*) return 0 ;; esac; return 1; }
has postfix || die "PATHS must include postfix (the baseline)"
after_queue() { has gateway || has encrypted; }
before_queue() { has proxy || has proxy-encrypted; }
if ! after_queue && ! before_queue; then
    SEALPOST_BIN=/bin/true
elif [ -z "${SEALPOST_BIN:-}" ]; then
    say "building sealpost (release)" >&2
    cargo build --release --locked -p sealpost-cli --bin sealpost >&2
    SEALPOST_BIN=$ROOT/target/release/sealpost
fi
[ -x "$SEALPOST_BIN" ] || die "$SEALPOST_BIN is not an executable"
LOAD=$ROOT/target/bench/gateway_load
mkdir -p "$(dirname "$LOAD")"
if [ ! -x "$LOAD" ] || [ bench/gateway_load.rs -nt "$LOAD" ]; then
    rustc --edition 2024 -O -o "$LOAD" bench/gateway_load.rs
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- setup -----------------------------------------------------------------------------------
GATEWAY_PID=      # after queue (Postfix A's content filter)
PROXY_PID=        # before queue (Postfix C's smtpd_proxy_filter)
cleanup() {
    set +e
    [ -n "$GATEWAY_PID" ] && kill "$GATEWAY_PID" 2>/dev/null && wait "$GATEWAY_PID" 2>/dev/null
    [ -n "$PROXY_PID" ] && kill "$PROXY_PID" 2>/dev/null && wait "$PROXY_PID" 2>/dev/null
    for i in a b c; do bash "$ROOT/scripts/postfix.sh" stop "$WORK/postfix-$i"; done
}
trap cleanup EXIT

for i in a b c; do bash scripts/postfix.sh stop "$WORK/postfix-$i" 2>/dev/null || true; done
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 0755 "$WORK"

LISTEN_A=$(free_port); FILTER=$(free_port); REINJECT_A=$(free_port)
LISTEN_B=$(free_port); SINK=$(free_port)
LISTEN_C=$(free_port); PROXY=$(free_port); REINJECT_C=$(free_port)

bash scripts/postfix.sh start "$WORK/postfix-b" --listen "$LISTEN_B" --relay "$SINK" >/dev/null
if after_queue || before_queue; then
    "$SEALPOST_BIN" tenant init --dir "$WORK/tenant" --domain acme.example >/dev/null
fi

# start_gateway NAME LISTEN_PORT NEXT_HOP_PORT → starts `sealpost gateway` with WORK/NAME.toml,
# spool WORK/NAME-spool and log WORK/NAME.log; sets STARTED_PID.
start_gateway() {
    local name=$1 listen=$2 next_hop=$3 i
    {
        cat <<EOF
[gateway]
listen = "127.0.0.1:$listen"
hostname = "gateway.acme.example"
next_hop = "smtp://127.0.0.1:$next_hop"
spool_dir = "$name-spool"
tenant = "tenant"
max_message_size = "50MB"
metrics_listen = "127.0.0.1:$(free_port)"
delivery_workers = 20
relay_first = $RELAY_FIRST

EOF
        # The example's rules, without its own [gateway] table.
        sed -n '/^\[organization\]/,$p' examples/gateway.toml
    } >"$WORK/$name.toml"
    RUST_LOG=${RUST_LOG:-info} "$SEALPOST_BIN" gateway --config "$WORK/$name.toml" \
        2>"$WORK/$name.log" &
    STARTED_PID=$!
    for i in $(seq 1 200); do
        # Read the greeting and say QUIT, so the probe is a clean session, not a reset.
        if (exec 3<>"/dev/tcp/127.0.0.1/$listen" && IFS= read -r -t 5 line <&3 \
            && printf 'QUIT\r\n' >&3 && IFS= read -r -t 5 line <&3) 2>/dev/null; then
            return 0
        fi
        kill -0 "$STARTED_PID" 2>/dev/null || die "the gateway $name exited: $(tail -5 "$WORK/$name.log")"
        sleep 0.05
    done
    die "the gateway $name did not listen on 127.0.0.1:$listen within 10 s"
}
if after_queue; then
    bash scripts/postfix.sh start "$WORK/postfix-a" --listen "$LISTEN_A" --relay "$SINK" \
        --filter "$FILTER" --reinject "$REINJECT_A" >/dev/null
    start_gateway gateway "$FILTER" "$REINJECT_A"
    GATEWAY_PID=$STARTED_PID
fi
if before_queue; then
    start_gateway proxy "$PROXY" "$REINJECT_C"
    PROXY_PID=$STARTED_PID
    bash scripts/postfix.sh start "$WORK/postfix-c" --listen "$LISTEN_C" --relay "$SINK" \
        --proxy "$PROXY" --reinject "$REINJECT_C" ${SPEED_ADJUST:+--speed-adjust} >/dev/null
fi

# --- runs ------------------------------------------------------------------------------------
# run PORT COUNT SIZE [extra gateway_load args...] → prints gateway_load's result line
run() {
    local port=$1 count=$2 size=$3
    shift 3
    "$LOAD" --submit "127.0.0.1:$port" --sink "127.0.0.1:$SINK" --count "$count" --size "$size" \
        --concurrency "$CONCURRENCY" --timeout 600 "$@" \
        || die "a run lost messages (port $port, size $size): see $WORK/postfix-*/log/maillog and $WORK/*.log"
}
# CPU time (user + system, ms) the gateway process $1 has used so far; 0 without a gateway.
gateway_cpu_ms() {
    if [ -n "${1:-}" ] && [ -r "/proc/$1/stat" ]; then
        awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print int(($12 + $13) * 1000 / hz) }' "/proc/$1/stat"
    else
        echo 0
    fi
}
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }
best() { printf '%s\n' "$@" | sort -g | tail -n 1; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

label() {
    case "$1" in
        10240) echo "10 KB" ;; 102400) echo "100 KB" ;; 5242880) echo "5 MB" ;; *) echo "$1 B" ;;
    esac
}

say "gateway.sh: $(nproc) cores, concurrency $CONCURRENCY, $ROUNDS round(s); sealpost: $SEALPOST_BIN; proxy speed_adjust: ${SPEED_ADJUST:-no}; relay_first: $RELAY_FIRST" >&2
say
say "| size | path | msgs/s (best of $ROUNDS) | median | ratio to Postfix alone (best) | gateway CPU ms/msg | paced rate | p50 ms | p99 ms | added p50 ms | added p99 ms |"
say "|---|---|---|---|---|---|---|---|---|---|---|"
verdicts=()
for size in $SIZES; do
    case "$size" in
        10240) count=$COUNT_10K; rate=100; paced=400 ;;
        102400) count=$COUNT_100K; rate=100; paced=400 ;;
        5242880) count=$COUNT_5M; rate=4; paced=20 ;;
        *) count=200; rate=20; paced=100 ;;
    esac
    # Warm up both paths (connection caches, page cache, the gateway's first spool files).
    run "$LISTEN_B" 50 "$size" >/dev/null
    # name:port:gateway pid:subject
    variants=("postfix:$LISTEN_B::")
    has gateway && variants+=("gateway:$LISTEN_A:$GATEWAY_PID:")
    has proxy && variants+=("proxy:$LISTEN_C:$PROXY_PID:")
    has encrypted && variants+=("gateway, encrypted:$LISTEN_A:$GATEWAY_PID:[secure]")
    has proxy-encrypted && variants+=("proxy, encrypted:$LISTEN_C:$PROXY_PID:[secure]")
    after_queue && run "$LISTEN_A" 50 "$size" >/dev/null
    before_queue && run "$LISTEN_C" 50 "$size" >/dev/null
    declare -A tput=() p50=() p99=() cpu_per_msg=()
    for v in "${variants[@]}"; do tput[$v]=""; done
    for round in $(seq 1 "$ROUNDS"); do
        for v in "${variants[@]}"; do
            IFS=: read -r name port pid subject <<<"$v"
            before=$(gateway_cpu_ms "$pid")
            line=$(run "$port" "$count" "$size" --subject "${subject:-benchmark} round $round")
            cpu=$(( $(gateway_cpu_ms "$pid") - before ))
            say "  $(label "$size") $name saturated: $line gateway_cpu_ms=$cpu load=$(cut -d' ' -f1 /proc/loadavg)" >&2
            tput[$v]="${tput[$v]} $(field msgs_per_s "$line")"
            [ "$name" = postfix ] || cpu_per_msg[$v]=$(awk -v c="$cpu" -v n="$count" 'BEGIN { printf "%.2f", c / n }')
        done
    done
    for v in "${variants[@]}"; do
        IFS=: read -r name port pid subject <<<"$v"
        line=$(run "$port" "$paced" "$size" --rate "$rate" --subject "${subject:-benchmark} paced")
        say "  $(label "$size") $name paced at $rate/s: $line" >&2
        p50[$v]=$(field p50_ms "$line")
        p99[$v]=$(field p99_ms "$line")
    done
    base=${variants[0]}
    # shellcheck disable=SC2086
    base_tput=$(best ${tput[$base]})
    for v in "${variants[@]}"; do
        IFS=: read -r name port pid subject <<<"$v"
        # shellcheck disable=SC2086
        t=$(best ${tput[$v]})
        # shellcheck disable=SC2086
        med=$(median ${tput[$v]})
        ratio=$(awk -v a="$t" -v b="$base_tput" 'BEGIN { printf "%.2f", a / b }')
        if [ "$v" = "$base" ]; then
            added50="—"; added99="—"
        else
            added50=$(awk -v a="${p50[$v]}" -v b="${p50[$base]}" 'BEGIN { printf "%+.1f", a - b }')
            added99=$(awk -v a="${p99[$v]}" -v b="${p99[$base]}" 'BEGIN { printf "%+.1f", a - b }')
        fi
        say "| $(label "$size") | $name | $t | $med | $ratio | ${cpu_per_msg[$v]:-—} | $rate/s | ${p50[$v]} | ${p99[$v]} | $added50 | $added99 |"
        if [ "$size" = 102400 ] && { [ "$name" = gateway ] || [ "$name" = proxy ]; }; then
            verdicts+=("$(awk -v n="$name" -v t="$t" -v r="$ratio" 'BEGIN {
                ok = (t >= 300 && r >= 0.5) ? "met" : "NOT met";
                printf "target at 100 KB, %s (>= 300 msgs/s and >= 0.50 of Postfix alone): %s (%.0f msgs/s = %.2f of 300, %.2f of Postfix alone)", n, ok, t, t / 300, r }')")
        fi
    done
    unset tput p50 p99 cpu_per_msg
done
say
for v in "${verdicts[@]}"; do say "$v"; done
for name in gateway proxy; do
    if [ -f "$WORK/$name.log" ]; then
        say "$name log: $(grep -c -E 'WARN|ERROR' "$WORK/$name.log" || true) warning/error line(s) in $WORK/$name.log"
    fi
done
