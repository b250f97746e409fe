#!/usr/bin/env bash
# The project's test command (the README's second quick-start command; .ci/run calls it).
# Installs what is missing (wasm32 target, rustfmt/clippy, PostgreSQL, python3-aiosmtpd, Postfix
# and swaks, the test OpenID provider (npm oidc-provider), schemathesis, Trunk, wasm-bindgen-cli, binaryen, Chromium and chromedriver, the e2e
# npm packages) and starts a private PostgreSQL on 127.0.0.1:55432, then runs formatting and lint
# checks, every cargo test (key-service suites on SQLite and PostgreSQL), a bounded schemathesis
# run, the portal bundle, its wasm-bindgen tests and the Playwright suite in headless Chromium,
# and the fuzz-target build. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# One full build, not kept for edits: incremental caches would add several GB of disk (set
# CARGO_INCREMENTAL=1 to keep them when re-running this script while editing).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step "disk"
# The whole run (debug and release builds, the wasm32 builds, the fuzz targets) needs about
# NEED_GB of free disk on a cold target directory; a full disk shows up as a linker crash.
NEED_GB=8
mkdir -p target
free_gb=$(df -Pk target | awk 'NR == 2 { printf "%d", $4 / 1048576 }')
echo "free disk where target/ is: ${free_gb} GB (a cold run needs about ${NEED_GB} GB)"
if [ "$free_gb" -lt "$NEED_GB" ]; then
  echo "warning: less than ${NEED_GB} GB free; if a build fails with 'Bus error' or 'No space left'," >&2
  echo "free disk (cargo clean, or remove target/debug/incremental) and run this script again" >&2
fi

step "toolchain"
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
if ! command -v openssl >/dev/null; then
  echo "openssl is missing (only bench/throughput.sh needs it); skipping"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "PostgreSQL (private test cluster on 127.0.0.1:55432) for the key-service store tests"
# Under /tmp, not in the checkout: the server runs as the `postgres` user, which cannot reach a
# checkout inside a private home directory. Re-runs (from any checkout) reuse the cluster.
SEALPOST_TEST_POSTGRES_URL=$(bash scripts/postgres.sh start "${SEALPOST_PG_DIR:-/tmp/sealpost-test-pg}")
export SEALPOST_TEST_POSTGRES_URL
echo "using $SEALPOST_TEST_POSTGRES_URL"

step "SMTP sink (python3-aiosmtpd) for the passcode-delivery tests"
bash scripts/smtp-sink.sh

step "the local OpenID provider (npm oidc-provider) for the key service's OpenID Connect tests"
bash scripts/oidc-provider.sh install

step "Postfix and swaks for the gateway's real-MTA test (a private instance per test)"
bash scripts/postfix.sh install

step "cargo test"
cargo test --workspace --locked 2>&1 | tee target/test-output.txt
# Repeat the summary lines together so they are easy to find.
step "test summary"
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' target/test-output.txt

step "schemathesis against the key service's OpenAPI document"
bash scripts/schemathesis.sh

step "wasm32 build of the core without its browser features (the portal's build below has them)"
cargo build --locked --target wasm32-unknown-unknown -p sealpost-core

step "portal: toolchain (installs what is missing), bundle in dist/, size"
bash scripts/portal.sh build

step "portal: wasm-bindgen tests in headless Chromium"
bash scripts/portal.sh test

step "portal: Playwright end-to-end tests against sealpost serve"
cargo build --locked -p sealpost-cli
SEALPOST_E2E_SKIP_BUILD=1 bash scripts/e2e.sh

step "fuzz targets build"
bash scripts/fuzz-build.sh

step "all checks passed"
