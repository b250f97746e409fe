#!/usr/bin/env bash
# The local OpenID provider of the OpenID Connect tests and the demo (tests/oidc/provider.mjs,
# npm oidc-provider, pinned in tests/oidc/package-lock.json). Loopback only; never for real users.
#
#   scripts/oidc-provider.sh install        Node.js and npm from Debian if missing, then `npm ci`
#                                           in tests/oidc/ when its packages are missing
#   scripts/oidc-provider.sh start [PORT]   install, start it in the background on 127.0.0.1:PORT
#                                           (default 9400; log and pid in target/oidc-provider/),
#                                           wait until it answers, print its issuer URL
#   scripts/oidc-provider.sh stop [PORT]    stop the one started on PORT
#
# start passes the environment through: OIDC_REDIRECT_URIS (comma-separated, default
# http://127.0.0.1:8080/), OIDC_ACCOUNTS (default bob@example.org,unverified@example.org:unverified),
# OIDC_CLIENT_SECRET (default sealpost-test-secret); see tests/oidc/provider.mjs for the clients.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "==> $*" >&2; }
have() { command -v "$1" >/dev/null 2>&1; }

install() {
  if ! have node || ! have npm; then
    say "installing Node.js and npm (Debian)"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
  fi
  if [ ! -f tests/oidc/node_modules/oidc-provider/package.json ] || [ ! -f tests/oidc/node_modules/jose/package.json ]; then
    say "installing the test OpenID provider's packages (npm ci in tests/oidc/)"
    (cd tests/oidc && npm ci --no-audit --no-fund --silent)
  fi
}

start() {
  local port="${1:-9400}" dir=target/oidc-provider
  install
  mkdir -p "$dir"
  stop "$port" 2>/dev/null || true
  node tests/oidc/provider.mjs --port "$port" >"$dir/$port.log" 2>&1 &
  echo $! >"$dir/$port.pid"
  local issuer="${OIDC_ISSUER:-http://127.0.0.1:$port}"
  for _ in $(seq 1 100); do
    if grep -q '^oidc-provider listening: ' "$dir/$port.log" 2>/dev/null; then
      sed -n 's/^oidc-provider listening: //p' "$dir/$port.log" | head -n 1
      return 0
    fi
    if ! kill -0 "$(cat "$dir/$port.pid")" 2>/dev/null; then
      say "the OpenID provider did not start:"; cat "$dir/$port.log" >&2; return 1
    fi
    sleep 0.1
  done
  say "the OpenID provider did not answer within 10 s ($issuer); log: $dir/$port.log"
  return 1
}

stop() {
  local port="${1:-9400}" pidfile="target/oidc-provider/${1:-9400}.pid"
  if [ -f "$pidfile" ]; then
    local pid; pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null && grep -q provider.mjs "/proc/$pid/cmdline" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$pidfile"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start [PORT] | stop [PORT]" >&2; exit 2 ;;
esac
