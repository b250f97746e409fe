#!/usr/bin/env bash
# The portal's end-to-end tests (Playwright, tests/e2e/) against a real `sealpost serve`.
#
# Installs what is missing (Chromium and chromedriver from Debian, Node.js and npm, the npm
# packages of tests/e2e/, and through scripts/portal.sh the portal toolchain), builds
# `sealpost` and the portal (dist/), makes a tenant and a data directory under a temporary
# directory, starts `sealpost serve --demo --portal-dir dist` on a free loopback port, runs the
# suite in headless Chromium (/usr/bin/chromium), and stops the server. Screenshots of each
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
if [ ${#pkgs[@]} -gt 0 ]; then
  say "installing ${pkgs[*]} (Debian)"
  apt_install "${pkgs[@]}"
fi
if [ ! -d tests/e2e/node_modules/@playwright/test ] || [ ! -d tests/e2e/node_modules/@axe-core/playwright ]; then
  say "installing the e2e suite's npm packages"
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi

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
SERVE_PID=""
cleanup() {
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill "$SERVE_PID" 2>/dev/null || true
    wait "$SERVE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"

say "tenant and data directory in $WORK; sealpost serve on $URL"
"$SEALPOST" tenant init --dir "$WORK/tenant" --domain example.com --name "Example Corp" \
  --key-service-url "$URL" --portal-url "$URL/" --show-subject >/dev/null
# A template that expires two seconds after sealing, for the expired-message test.
sed -i '/^templates = \[\]$/d' "$WORK/tenant/tenant.toml"
cat >>"$WORK/tenant/tenant.toml" <<'TOML'

[[templates]]
name = "Expires-Fast"
rights = ["view", "reply", "reply_all", "forward", "print", "copy", "export"]
expires_after_secs = 2
TOML
cat >"$WORK/sealpost.toml" <<'TOML'
[keyservice]
# The suite signs in many times from one address.
per_ip_per_minute = 0
TOML
mkdir -p "$WORK/data/demo-mailbox" "$WORK/tmp"
"$SEALPOST" serve --demo --portal-dir dist --public-url "$URL" --listen "127.0.0.1:$PORT" \
  --data "$WORK/data" --tenant "$WORK/tenant" --config "$WORK/sealpost.toml" \
  >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
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
    npx playwright test "$@"
)
rc=$?
set -e
if [ "$rc" != 0 ]; then
  echo "--- last lines of the sealpost serve log ($WORK/serve.log)" >&2
  tail -n 40 "$WORK/serve.log" >&2
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
