#!/usr/bin/env bash
# The portal in headless Chromium: decrypt-and-render time of large messages, the bundle's
# size and the time to first render, against a real `sealpost serve` on loopback.
#
#   bench/portal.sh                      # 1, 25 and 100 MiB, 3 opens each; 5 cold loads
#   SIZES_MIB="1 25" REPS=5 LOADS=10 bench/portal.sh
#   INPUT=eml bench/portal.sh            # pick the whole wrapper .eml instead of message.html
#   DECRYPT="rust auto" bench/portal.sh  # side by side: SubtleCrypto hidden, then as the portal picks
#   SEALPOST_BIN=/path/to/sealpost PORTAL_DIST=/path/to/dist bench/portal.sh
#
# What it does: reuses the portal bundle in dist/ (`scripts/portal.sh build` makes it; this
# script builds it only when dist/index.html is missing) and copies it into a temporary
# directory, so a rebuild during the run does not change what is measured; uses
# target/release/sealpost, else target/debug/sealpost, else builds the release CLI. It makes a
# tenant and a data directory under a temporary directory and starts
# `sealpost serve --portal-dir COPY` on a free loopback port (per-IP limit off: every request
# comes from 127.0.0.1). For each size it writes with python3 a mail with a short text body and
# one attachment of that many MiB of random bytes (base64), encrypts it with
# `sealpost encrypt`, and takes the wrapper's message.html. bench/portal.mjs (playwright-core
# from tests/e2e/node_modules, Debian's /usr/bin/chromium with the flags of
# tests/e2e/playwright.config.js) then signs in (the code from `sealpost outbox list`) and,
# for each size and repetition, loads the portal afresh in the same tab (the session stays in
# sessionStorage), picks the file with the file input and times, inside the page with
# performance.now(), from the input's `change` event to the frame after `message-view` with
# the attachment (of the right decoded size) is in the DOM, split into stages (see
# bench/portal.mjs), with the renderer's CPU time and peak memory. It prints the median of REPS
# (each open bounded by TIMEOUT_S, default 300 s), and
# the time to first render (navigation start to `window.__sealpostReady` and to
# `first-contentful-paint`, each load in a new browser context, so with a cold cache), median
# of LOADS. The bundle's size is `scripts/portal.sh size` on the copy.
#
# DECRYPT lists the decryption modes (default "auto"): "auto" lets the portal choose (WebCrypto
# when the bundle has that path and the page offers SubtleCrypto, else the pure-Rust path);
# "rust" hides `crypto.subtle` from the page, which forces the pure-Rust path. The table shows
# the path the portal reports (`data-decrypt-path` on `message-view`; bundles built before the
# WebCrypto path have only the pure-Rust one and do not say).
#
# PROFILE=DIR also writes a V8 CPU profile of every open to DIR and prints the functions with
# the most self time (see bench/portal.mjs; profiled opens run somewhat slower).
#
# Targets (this machine): 25 MiB opened in under 1 s, bundle at most 400 KB brotli (400,000
# bytes, as scripts/portal.sh), first render under 300 ms. Exits 0 whether or not a target is
# met; non-zero if something could not be set up or a size failed to open (a failure, e.g. the
# tab running out of memory, is printed, never hidden).
#
# Needs: python3, node and the npm packages of tests/e2e/ (installed with `npm ci` when
# missing), chromium, curl, brotli and gzip (apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

SIZES_MIB=${SIZES_MIB:-"1 25 100"}
REPS=${REPS:-3}
LOADS=${LOADS:-5}
INPUT=${INPUT:-html}
DECRYPT=${DECRYPT:-auto}
TIMEOUT_S=${TIMEOUT_S:-300}

say() { echo "==> $*" >&2; }
die() { echo "portal.sh: error: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

case "${1:-}" in
  -h | --help) sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "no arguments expected (see bench/portal.sh --help)" ;;
esac
case "$INPUT" in html | eml) ;; *) die "INPUT must be html or eml" ;; esac
for m in $DECRYPT; do
  case "$m" in auto | rust) ;; *) die "DECRYPT lists auto and/or rust: $m" ;; esac
done
for s in $SIZES_MIB; do
  [[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 1 ] || die "SIZES_MIB must be whole numbers >= 1: $s"
done

# --- tools -----------------------------------------------------------------------------------
pkgs=()
have chromium || pkgs+=(chromium)
have node || pkgs+=(nodejs)
have npm || pkgs+=(npm)
have python3 || pkgs+=(python3)
have curl || pkgs+=(curl)
have brotli || pkgs+=(brotli)
have gzip || pkgs+=(gzip)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing ${pkgs[*]} (Debian)"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
fi
if [ ! -d tests/e2e/node_modules/playwright-core ]; then
  say "installing the npm packages of tests/e2e (playwright-core)"
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi

DIST=${PORTAL_DIST:-dist}
if [ ! -f "$DIST/index.html" ]; then
  [ -z "${PORTAL_DIST:-}" ] || die "$DIST/index.html is missing"
  scripts/portal.sh build
fi
if [ -n "${SEALPOST_BIN:-}" ]; then
  SEALPOST=$SEALPOST_BIN
elif [ -x target/release/sealpost ]; then
  SEALPOST=$ROOT/target/release/sealpost
elif [ -x target/debug/sealpost ]; then
  SEALPOST=$ROOT/target/debug/sealpost
else
  say "building sealpost (release)"
  cargo build --locked --release -p sealpost-cli
  SEALPOST=$ROOT/target/release/sealpost
fi
[ -x "$SEALPOST" ] || die "$SEALPOST is not an executable"

# --- scratch space and cleanup ---------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealpost-portal-bench.XXXXXX")
SERVE_PID=""
NODE_PID=""
cleanup() {
  if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
    kill "$NODE_PID" 2>/dev/null || true
    wait "$NODE_PID" 2>/dev/null || true
  fi
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The bundle is copied to $WORK/portal/dist, beside a copy of scripts/portal.sh (which reads
# ./dist relative to its parent directory) for the size table.
BUNDLE=$WORK/portal/dist
mkdir -p "$BUNDLE" "$WORK/portal/scripts" "$WORK/msg"
cp -p "$DIST"/index.html "$BUNDLE/"
find "$DIST" -maxdepth 1 -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) \
  -exec cp -p {} "$BUNDLE/" \;
cp scripts/portal.sh "$WORK/portal/scripts/"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
export SEALPOST_KEK
SEALPOST_KEK=$(head -c 32 /dev/urandom | base64)

"$SEALPOST" tenant init --dir "$WORK/tenant" --domain example.com --name "Bench Corp" \
  --key-service-url "$URL" --portal-url "$URL/" >/dev/null
cat >"$WORK/sealpost.toml" <<'TOML'
[keyservice]
# Every request comes from 127.0.0.1: no per-IP limit, and a session that outlives the run.
per_ip_per_minute = 0
session_idle_secs = 3600
TOML
RUST_LOG=${RUST_LOG:-warn} "$SEALPOST" serve --portal-dir "$BUNDLE" --public-url "$URL" \
  --listen "127.0.0.1:$PORT" --data "$WORK/data" --tenant "$WORK/tenant" \
  --config "$WORK/sealpost.toml" >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 150); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "sealpost serve exited"; }
  sleep 0.2
done
curl -fsS "$URL/readyz" >/dev/null || { cat "$WORK/serve.log" >&2; die "sealpost serve did not come up on $URL"; }

# --- the messages ----------------------------------------------------------------------------
# mail.py SIZE_MIB OUT: a mail to bob@example.org with one attachment of SIZE_MIB MiB of random
# bytes (base64, 76-character lines, CRLF).
cat >"$WORK/mail.py" <<'PY'
import base64, os, sys
size = int(sys.argv[1]) << 20
b64 = base64.b64encode(os.urandom(size))
lines = b"\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
head = (
    "From: Alice Sender <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    f"Subject: Benchmark {sys.argv[1]} MiB\r\n"
    "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n"
    "Message-ID: <bench-%s@example.com>\r\n"
    "MIME-Version: 1.0\r\n"
    'Content-Type: multipart/mixed; boundary="mix"\r\n'
    "\r\n"
    "--mix\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "\r\n"
    "The data is attached.\r\n"
    "--mix\r\n"
    'Content-Type: application/octet-stream; name="data.bin"\r\n'
    'Content-Disposition: attachment; filename="data.bin"\r\n'
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
) % os.urandom(8).hex()
with open(sys.argv[2], "wb") as f:
    f.write(head.encode())
    f.write(lines)
    f.write(b"\r\n--mix--\r\n")
PY
# html.py WRAPPER OUT: the message.html attachment of a wrapper mail.
cat >"$WORK/html.py" <<'PY'
import base64, email, email.policy, sys
with open(sys.argv[1], "rb") as f:
    msg = email.message_from_binary_file(f, policy=email.policy.default)
for part in msg.walk():
    if part.get_filename() == "message.html":
        with open(sys.argv[2], "wb") as out:
            out.write(part.get_payload(decode=True))
        break
else:
    sys.exit("no message.html in the wrapper")
PY

sizes_json="["
for s in $SIZES_MIB; do
  say "making and encrypting the $s MiB message"
  python3 "$WORK/mail.py" "$s" "$WORK/msg/$s.eml"
  t0=$(date +%s%N)
  if ! "$SEALPOST" encrypt --tenant "$WORK/tenant" <"$WORK/msg/$s.eml" >"$WORK/msg/$s-wrapper.eml" 2>"$WORK/msg/$s-encrypt.err"; then
    cat "$WORK/msg/$s-encrypt.err" >&2
    die "sealpost encrypt refused the $s MiB message (above)"
  fi
  t1=$(date +%s%N)
  if [ "$INPUT" = html ]; then
    python3 "$WORK/html.py" "$WORK/msg/$s-wrapper.eml" "$WORK/msg/$s-message.html"
    file="$WORK/msg/$s-message.html"
  else
    file="$WORK/msg/$s-wrapper.eml"
  fi
  printf '    mail %d B, wrapper %d B, picked file %d B; encrypt %d ms\n' \
    "$(stat -c %s "$WORK/msg/$s.eml")" "$(stat -c %s "$WORK/msg/$s-wrapper.eml")" \
    "$(stat -c %s "$file")" "$(( (t1 - t0) / 1000000 ))" >&2
  payload=$("$SEALPOST" inspect "$file" | python3 -c 'import json, sys; print(json.load(sys.stdin)["payload_bytes"])')
  rm -f "$WORK/msg/$s.eml"
  if [ "$INPUT" = html ]; then rm -f "$WORK/msg/$s-wrapper.eml"; fi
  sizes_json+="{\"mib\":$s,\"file\":\"$file\",\"bytes\":$(( s << 20 )),\"payload\":$payload},"
done
sizes_json="${sizes_json%,}]"

# --- the browser -----------------------------------------------------------------------------
say "load average before the browser runs: $(cut -d' ' -f1-3 /proc/loadavg)"
say "Chromium $(chromium --version 2>/dev/null | awk '{print $2}'), portal $URL, sealpost $SEALPOST"
set +e
SEALPOST_BIN="$SEALPOST" BENCH_URL="$URL" BENCH_DATA="$WORK/data" BENCH_SIZES="$sizes_json" \
  BENCH_REPS="$REPS" BENCH_LOADS="$LOADS" BENCH_TIMEOUT_S="$TIMEOUT_S" BENCH_INPUT="$INPUT" \
  BENCH_DECRYPT="$DECRYPT" BENCH_PROFILE="${PROFILE:+$(realpath -m "$PROFILE")}" \
  node bench/portal.mjs &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=""
set -e

echo
echo "Bundle (scripts/portal.sh size on the copy of $DIST):"
bash "$WORK/portal/scripts/portal.sh" size || rc=1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$rc" != 0 ]; then
  echo "--- last lines of the sealpost serve log" >&2
  tail -n 20 "$WORK/serve.log" >&2
fi
exit "$rc"
