#!/usr/bin/env bash
# The portal's end-to-end tests (Playwright, tests/e2e/) against a real `sealpost serve`.
#
# Installs what is missing (Chromium and chromedriver from Debian, Node.js and npm, the npm
# packages of tests/e2e/, and through scripts/portal.sh the portal toolchain), builds
# `sealpost` and the portal (dist/), makes a tenant and a data directory under a temporary
# directory, starts `sealpost serve --demo --portal-dir dist` on a free loopback port, and for
# the reply tests the mail path behind it: an SMTP sink (the original senders' mailboxes), a
# private Postfix relaying into it (scripts/postfix.sh) and `sealpost gateway` with its reply
# endpoint and transport decryption, relaying to that Postfix; then runs the suite in headless
# Chromium (/usr/bin/chromium), and stops everything. Screenshots of each
# page at 1280 px and 360 px go to target/e2e-screenshots/ (not committed); Playwright's
# traces of failed tests to target/e2e-results/.
#
#   scripts/e2e.sh                 build everything and run the whole suite
#   scripts/e2e.sh -g hostile      extra arguments go to `playwright test`
#
# Environment: SEALPOST_E2E_SKIP_BUILD=1 uses the dist/ and target/debug/sealpost that exist;
# SEALPOST_E2E_WASM_TESTS=1 also runs the portal's wasm-bindgen tests first
# (`scripts/portal.sh test`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

say() { echo "==> $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

APT_UPDATED=0
apt_install() {
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  if [ "$APT_UPDATED" = 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

pkgs=()
have chromium || pkgs+=(chromium)
have chromedriver || pkgs+=(chromium-driver)
have node || pkgs+=(nodejs)
have npm || pkgs+=(npm)
have python3 || pkgs+=(python3)
have curl || pkgs+=(curl)
/usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null || pkgs+=(python3-aiosmtpd)
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing ${pkgs[*]} (Debian)"
  apt_install "${pkgs[@]}"
fi
if [ ! -d tests/e2e/node_modules/@playwright/test ] || [ ! -d tests/e2e/node_modules/@axe-core/playwright ]; then
  say "installing the e2e suite's npm packages"
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi

scripts/postfix.sh install

if [ "${SEALPOST_E2E_SKIP_BUILD:-0}" != 1 ]; then
  scripts/portal.sh build
  say "building sealpost"
  cargo build --locked -p sealpost-cli
fi
if [ "${SEALPOST_E2E_WASM_TESTS:-0}" = 1 ]; then
  scripts/portal.sh test
fi
SEALPOST="$ROOT/target/debug/sealpost"
[ -x "$SEALPOST" ] || { echo "e2e.sh: $SEALPOST is missing (build it, or drop SEALPOST_E2E_SKIP_BUILD)" >&2; exit 1; }
[ -f dist/index.html ] || { echo "e2e.sh: dist/index.html is missing (scripts/portal.sh build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/sealpost-e2e.XXXXXX)
# Postfix's daemons run as the postfix user: its directory must be searchable by it.
POSTFIX_DIR=$(mktemp -d /tmp/sealpost-e2e-postfix.XXXXXX)
chmod 0755 "$POSTFIX_DIR"
PIDS=()
POSTFIX_UP=0
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [ "$POSTFIX_UP" = 1 ]; then scripts/postfix.sh stop "$POSTFIX_DIR" >/dev/null 2>&1 || true; fi
  if [ -n "${OIDC_PORT:-}" ]; then scripts/oidc-provider.sh stop "$OIDC_PORT" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK" "$POSTFIX_DIR"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Waits until 127.0.0.1:$1 accepts connections, or fails naming $2 and showing its log $3.
wait_port() {
  local i
  for i in $(seq 1 150); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.5)" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  [ -f "$3" ] && tail -n 40 "$3" >&2
  echo "e2e.sh: $2 did not start on port $1" >&2
  exit 1
}

PORT=$(free_port)
URL="http://127.0.0.1:$PORT"
SINK_PORT=$(free_port)
POSTFIX_PORT=$(free_port)
GATEWAY_PORT=$(free_port)
REPLY_PORT=$(free_port)
REPLY_URL="http://127.0.0.1:$REPLY_PORT"
OIDC_PORT=$(free_port)
METRICS_PORT=$(free_port)

say "tenant and data directory in $WORK; sealpost serve on $URL"
"$SEALPOST" tenant init --dir "$WORK/tenant" --domain example.com --name "Example Corp" \
  --key-service-url "$URL" --portal-url "$URL/" --show-subject \
  --reply-url "$REPLY_URL" --transport-decryption >/dev/null
# A template that expires two seconds after sealing, for the expired-message test, and one
# that expires after a week, for the reply from a browser with a wrong clock.
sed -i '/^templates = \[\]$/d' "$WORK/tenant/tenant.toml"
cat >>"$WORK/tenant/tenant.toml" <<'TOML'

[[templates]]
name = "Expires-Fast"
rights = ["view", "reply", "reply_all", "forward", "print", "copy", "export"]
expires_after_secs = 2

[[templates]]
name = "Week"
rights = ["view", "reply", "reply_all"]
expires_after_secs = 604800
TOML
# The test OpenID provider (tests/oidc/provider.mjs), sending browsers back to the portal.
say "test OpenID provider on 127.0.0.1:$OIDC_PORT"
OIDC_ISSUER=$(OIDC_REDIRECT_URIS="$URL/" scripts/oidc-provider.sh start "$OIDC_PORT")

# One configuration file for both services: [keyservice] for `serve`, [gateway] and the
# mail-flow rules for `gateway`.
cat >"$WORK/sealpost.toml" <<TOML
[keyservice]
# The suite signs in many times from one address.
per_ip_per_minute = 0

[[keyservice.oidc]]
id = "test"
preset = "generic"
display_name = "Test Provider"
issuer = "$OIDC_ISSUER"
client_id = "sealpost"
client_secret = "sealpost-test-secret"
redirect_url = "$URL/"

[gateway]
listen = "127.0.0.1:$GATEWAY_PORT"
hostname = "gateway.example.com"
next_hop = "smtp://127.0.0.1:$POSTFIX_PORT"
tenant = "$WORK/tenant"
spool_dir = "$WORK/spool"
metrics_listen = "127.0.0.1:$METRICS_PORT"
reply_listen = "127.0.0.1:$REPLY_PORT"
reply_from = "noreply@example.com"
reply_allowed_origins = ["$URL"]
key_service_url = "$URL"
key_service_token_file = "$WORK/gateway.token"

[organization]
domains = ["example.com"]
TOML
mkdir -p "$WORK/data/demo-mailbox" "$WORK/tmp" "$WORK/mailboxes"
"$SEALPOST" serve --demo --portal-dir dist --public-url "$URL" --listen "127.0.0.1:$PORT" \
  --data "$WORK/data" --tenant "$WORK/tenant" --config "$WORK/sealpost.toml" \
  >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
PIDS+=("$SERVE_PID")
for _ in $(seq 1 100); do
  if curl -fsS "$URL/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$SERVE_PID" 2>/dev/null; then
    cat "$WORK/serve.log" >&2
    echo "e2e.sh: sealpost serve did not start" >&2
    exit 1
  fi
  sleep 0.2
done
curl -fsS "$URL/readyz" >/dev/null

say "mail path: gateway (reply endpoint $REPLY_URL) → Postfix :$POSTFIX_PORT → mailboxes (sink :$SINK_PORT)"
/usr/bin/python3 crates/sealpost-gateway/tests/support/refusing_sink.py "$SINK_PORT" "$WORK/mailboxes" \
  >"$WORK/sink.log" 2>&1 &
PIDS+=("$!")
wait_port "$SINK_PORT" "the SMTP sink" "$WORK/sink.log"
scripts/postfix.sh start "$POSTFIX_DIR" --listen "$POSTFIX_PORT" --relay "$SINK_PORT" >/dev/null
POSTFIX_UP=1
"$SEALPOST" admin token create --data "$WORK/data" --tenant-id example.com --role gateway \
  >"$WORK/gateway.token"
"$SEALPOST" gateway --config "$WORK/sealpost.toml" >"$WORK/gateway.log" 2>&1 &
PIDS+=("$!")
wait_port "$REPLY_PORT" "sealpost gateway" "$WORK/gateway.log"

SHOTS="$ROOT/target/e2e-screenshots"
rm -rf "$SHOTS"
mkdir -p "$SHOTS"
say "running the Playwright suite (Chromium $(chromium --version 2>/dev/null | awk '{print $2}'))"
rm -f "$ROOT/target/e2e-results/report.json"
set +e
(
  cd tests/e2e
  SEALPOST_BIN="$SEALPOST" SEALPOST_E2E_URL="$URL" SEALPOST_E2E_TENANT="$WORK/tenant" \
    SEALPOST_E2E_DATA="$WORK/data" SEALPOST_E2E_SCREENSHOTS="$SHOTS" SEALPOST_E2E_TMP="$WORK/tmp" \
    SEALPOST_E2E_MAILBOXES="$WORK/mailboxes" SEALPOST_E2E_REPLY_URL="$REPLY_URL" \
    npx playwright test "$@"
)
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- last lines of the sealpost serve log ($WORK/serve.log)" >&2
  tail -n 40 "$WORK/serve.log" >&2
  echo "--- last lines of the sealpost gateway log ($WORK/gateway.log)" >&2
  tail -n 40 "$WORK/gateway.log" >&2
  echo "--- last lines of the Postfix log" >&2
  tail -n 20 "$POSTFIX_DIR/log/maillog" >&2 || true
fi
echo "screenshots: $SHOTS ($(find "$SHOTS" -name '*.png' | wc -l) files)"
# One summary line in the plain form CI reads (Playwright's own is "N passed (time)").
REPORT="$ROOT/target/e2e-results/report.json"
if [ -f "$REPORT" ]; then
  node -e '
    const s = require(process.argv[1]).stats;
    const skipped = s.skipped ? `, ${s.skipped} skipped` : "";
    console.log(`e2e: ${s.expected + s.flaky} passed, ${s.unexpected} failed${skipped}`);
  ' "$REPORT"
fi
exit "$rc"
