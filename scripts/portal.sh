#!/usr/bin/env bash
# The portal's toolchain and build (see ../shared/TOOLCHAIN.md for why each version).
#
#   scripts/portal.sh install   install what is missing, skip what is there: the wasm32 target,
#                               Trunk 0.21.14, wasm-bindgen-cli 0.2.130 (with
#                               wasm-bindgen-test-runner), binaryen 132 (wasm-opt, from npm
#                               under /opt/binaryen), brotli, the portal's npm package
#                               (DOMPurify, pinned in web/package-lock.json, into
#                               web/node_modules), Chromium and chromedriver
#   scripts/portal.sh build     install the build tools (all but the browser), then
#                               `trunk build --release --offline` into dist/ and print the
#                               bundle's size (raw, gzip, brotli)
#   scripts/portal.sh size      only print the size of what is in dist/ (every .wasm, .js
#                               and .css, DOMPurify's purify.min-*.js included)
#   scripts/portal.sh test      install, then run the portal crate's wasm-bindgen tests in
#                               headless Chromium (CHROMEDRIVER=/usr/bin/chromedriver)
#
# Never Debian's binaryen package (version 108): its wasm-opt writes modules that fail to load.
# Environment: PORTAL_BUDGET_BYTES (default 400000: the target of 400 KB) is the brotli size the
# bundle (wasm + js + css) should stay within; `build` and `size` say when it does not (the check
# is reported, not enforced).
#
# `build` and `test` compile the portal with `--cfg erase_components` (Leptos then type-erases
# each component's view, which makes the bundle about 7 KB smaller, brotli; docs/portal.md,
# "Bundle size"), through CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS unless that or
# RUSTFLAGS is set already.
set -euo pipefail
cd "$(dirname "$0")/.."

BINARYEN_PREFIX=/opt/binaryen
export PATH="$BINARYEN_PREFIX/node_modules/.bin:$HOME/.cargo/bin:$PATH"
TRUNK_VERSION=0.21.14
WASM_BINDGEN_VERSION=0.2.130
BINARYEN_VERSION=132.0.0
# DOMPurify, the HTML sanitizer: the exact version of web/package.json and web/package-lock.json.
DOMPURIFY_VERSION=3.5.0

have() { command -v "$1" >/dev/null 2>&1; }

if [ -z "${RUSTFLAGS:-}" ] && [ -z "${CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS:-}" ]; then
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--cfg erase_components"
fi
say() { echo "==> $*" >&2; }

APT_UPDATED=0
apt_install() { # apt_install PACKAGE... (as root, or through sudo when there is one)
  local sudo=""
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  if [ "$APT_UPDATED" = 0 ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

# Another `cargo install` of the same tool (e.g. started by hand) would fight over the same
# files: wait for it instead of starting a second one.
wait_for_other_install() { # wait_for_other_install CRATE
  local waited=0
  while pgrep -f "cargo install $1( |$)" >/dev/null 2>&1; do
    if [ "$waited" = 0 ]; then say "waiting for a running 'cargo install $1' to finish"; fi
    waited=1
    sleep 10
  done
}

install_tools() {
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "installing the Rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
    wait_for_other_install trunk
    if ! trunk --version 2>/dev/null | grep -q " $TRUNK_VERSION"; then
      say "installing Trunk $TRUNK_VERSION (takes about 8 minutes)"
      cargo install trunk --version "$TRUNK_VERSION" --locked
    fi
  fi
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION" \
    || ! have wasm-bindgen-test-runner; then
    wait_for_other_install wasm-bindgen-cli
    if ! wasm-bindgen --version 2>/dev/null | grep -q " $WASM_BINDGEN_VERSION" \
      || ! have wasm-bindgen-test-runner; then
      # No --locked: the crate's lockfile pins a crate the registry does not have. --force:
      # a missing test runner beside a wasm-bindgen of the right version is reinstalled too.
      say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes about 3 minutes)"
      cargo install --force wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
    fi
  fi
  if ! "$BINARYEN_PREFIX/node_modules/.bin/wasm-opt" --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    if ! have npm; then
      say "installing Node.js and npm (Debian)"
      apt_install nodejs npm
    fi
    say "installing binaryen $BINARYEN_VERSION (wasm-opt) under $BINARYEN_PREFIX"
    mkdir -p "$BINARYEN_PREFIX"
    npm install --silent --no-audit --no-fund --prefix "$BINARYEN_PREFIX" "binaryen@$BINARYEN_VERSION"
  fi
  install_js
  local pkgs=()
  have brotli || pkgs+=(brotli)
  have gzip || pkgs+=(gzip)
  if [ ${#pkgs[@]} -gt 0 ]; then
    say "installing ${pkgs[*]} (Debian)"
    apt_install "${pkgs[@]}"
  fi
}

# The portal's npm package (DOMPurify), which index.html copies into the bundle and the
# wasm-bindgen tests load: `npm ci` in web/ when it is missing or not the pinned version.
install_js() {
  local installed=""
  if [ -f web/node_modules/dompurify/package.json ]; then
    installed=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' web/node_modules/dompurify/package.json | head -n 1)
  fi
  if [ "$installed" != "$DOMPURIFY_VERSION" ] || [ ! -f web/node_modules/dompurify/dist/purify.min.js ]; then
    if ! have npm; then
      say "installing Node.js and npm (Debian)"
      apt_install nodejs npm
    fi
    say "installing DOMPurify $DOMPURIFY_VERSION (npm ci in web/)"
    (cd web && npm ci --omit=optional --no-audit --no-fund --silent)
  fi
}

# Headless Chromium and chromedriver for the wasm-bindgen tests (and the e2e suite).
install_browser() {
  local pkgs=()
  have chromium || pkgs+=(chromium)
  have chromedriver || pkgs+=(chromium-driver)
  if [ ${#pkgs[@]} -gt 0 ]; then
    say "installing ${pkgs[*]} (Debian)"
    apt_install "${pkgs[@]}"
  fi
}

# Prints the size of each wasm, js and css file in dist/ and the total: raw, gzip -9 and
# brotli -q 11 (what a CDN would serve).
print_size() {
  local dist=dist budget=${PORTAL_BUDGET_BYTES:-400000}
  if [ ! -f "$dist/index.html" ]; then
    echo "no portal bundle in $dist/ (run scripts/portal.sh build)" >&2
    return 1
  fi
  local raw=0 gz=0 br=0 r g b f
  printf '%-48s %10s %10s %10s\n' "bundle file" raw gzip brotli
  while IFS= read -r f; do
    r=$(wc -c <"$f")
    g=$(gzip -9 -c "$f" | wc -c)
    b=$(brotli -q 11 -c "$f" | wc -c)
    raw=$((raw + r)); gz=$((gz + g)); br=$((br + b))
    printf '%-48s %10d %10d %10d\n' "${f#"$dist"/}" "$r" "$g" "$b"
  done < <(find "$dist" -type f \( -name '*.wasm' -o -name '*.js' -o -name '*.css' \) | sort)
  printf '%-48s %10d %10d %10d\n' "total (wasm + js + css)" "$raw" "$gz" "$br"
  if [ "$br" -le "$budget" ]; then
    echo "brotli total $br bytes: within the budget of $budget bytes"
  else
    echo "brotli total $br bytes: OVER the budget of $budget bytes"
  fi
}

build() {
  install_tools
  say "fetching crates"
  cargo fetch --locked
  say "building the portal: trunk build --release --offline → dist/"
  trunk build --release --offline
  print_size
}

wasm_tests() {
  install_tools
  install_browser
  say "running the portal's wasm-bindgen tests in headless Chromium"
  CHROMEDRIVER=/usr/bin/chromedriver cargo test --locked -p sealpost-portal --target wasm32-unknown-unknown
}

case "${1:-build}" in
  install)
    install_tools
    install_browser
    ;;
  build) build ;;
  size) print_size ;;
  test) wasm_tests ;;
  -h | --help | help) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' ;;
  *)
    echo "usage: scripts/portal.sh [install|build|size|test]" >&2
    exit 2
    ;;
esac
