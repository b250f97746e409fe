#!/usr/bin/env bash
# A private PostgreSQL server for the key-service tests.
#
#   scripts/postgres.sh [start] [DIR]   install Debian's postgresql if missing, start a private
#                                       cluster in DIR (default: /tmp/sealpost-test-pg, which the
#                                       postgres user can reach from any checkout)
#                                       on 127.0.0.1:55432,
#                                       create the database sealpost_test, print its URL
#   scripts/postgres.sh stop [DIR]      stop that cluster (the data stays in DIR)
#   scripts/postgres.sh status [DIR]    exit 0 if it is running
#
# Idempotent: re-running `start` reuses the cluster and the database. Works as root on a fresh
# Debian 12 (the server then runs as the `postgres` OS user, which must be able to reach DIR)
# and as an ordinary user once the package is installed. Authentication is `trust` and the
# server listens on loopback only: this is a test fixture, not a deployment.
#
#   export SEALPOST_TEST_POSTGRES_URL=$(scripts/postgres.sh)
#   cargo test -p sealpost-keyservice --test store
set -euo pipefail

PORT=55432
DB=sealpost_test
URL="postgres://postgres@127.0.0.1:${PORT}/${DB}"

cmd=start
case "${1:-}" in
    start|stop|status) cmd=$1; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
dir=${1:-/tmp/sealpost-test-pg}

log() { echo "postgres.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

mkdir -p "$dir"
dir=$(cd "$dir" && pwd -P)
data="$dir/data"
logfile="$dir/postgres.log"

# The Unix socket path must stay under the kernel's ~107-byte limit.
sockdir="$dir"
if [ $((${#sockdir} + 20)) -gt 100 ]; then
    sockdir="/tmp/sealpost-pg-$PORT"
    mkdir -p "$sockdir"
fi

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

# Run a PostgreSQL binary as the cluster's OS user: `postgres` when we are root (the server
# refuses to run as root), ourselves otherwise.
if [ "$(id -u)" -eq 0 ]; then
    pg_user=postgres
    as_pg() { runuser -u "$pg_user" -- "$@"; }
else
    pg_user=$(id -un)
    as_pg() { "$@"; }
fi

running() { [ -f "$data/PG_VERSION" ] && as_pg "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }

bindir=$(find_bindir || true)

if [ "$cmd" = stop ]; then
    if [ -n "$bindir" ] && running; then
        as_pg "$bindir/pg_ctl" -D "$data" -m fast -w stop >&2
    else
        log "not running ($data)"
    fi
    exit 0
fi

if [ "$cmd" = status ]; then
    [ -n "$bindir" ] && running
    exit $?
fi

# --- install ---------------------------------------------------------------------------------
if [ -z "$bindir" ]; then
    [ "$(id -u)" -eq 0 ] || die "PostgreSQL is not installed; run this script as root once, or: sudo apt-get install -y postgresql"
    log "installing Debian's postgresql package"
    start_install=$(date +%s)
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    log "installed in $(($(date +%s) - start_install)) s"
    bindir=$(find_bindir) || die "postgresql installed but no /usr/lib/postgresql/*/bin/initdb found"
fi

if [ "$(id -u)" -eq 0 ]; then
    id -u "$pg_user" >/dev/null 2>&1 || die "OS user '$pg_user' is missing (the postgresql package creates it)"
    chown "$pg_user": "$dir"
    [ "$sockdir" = "$dir" ] || chown "$pg_user": "$sockdir"
    as_pg test -w "$dir" ||
        die "user '$pg_user' cannot write to $dir (a parent directory is not searchable by it); pass a directory it can reach, e.g. /tmp/sealpost-pg"
fi

# --- cluster ---------------------------------------------------------------------------------
if [ ! -f "$data/PG_VERSION" ]; then
    if [ -e "$data" ] && [ -n "$(ls -A "$data" 2>/dev/null)" ]; then
        die "$data exists, is not empty and holds no cluster; remove it"
    fi
    log "creating a cluster in $data"
    as_pg "$bindir/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; die "initdb failed"; }
fi

if ! running; then
    log "starting on 127.0.0.1:$PORT (log: $logfile)"
    # A crash or reboot can leave a stale pid file behind; pg_ctl copes with it itself.
    as_pg "$bindir/pg_ctl" -D "$data" -l "$logfile" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $sockdir -c fsync=on" start >&2 ||
        { tail -n 20 "$logfile" >&2 || true; die "the server did not start (is port $PORT taken by another cluster?)"; }
fi

for _ in $(seq 1 120); do
    if "$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres; then
        break
    fi
    sleep 0.5
done
"$bindir/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres || die "the server does not accept connections"

psql_() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }
if [ "$(psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" != 1 ]; then
    psql_ -d postgres -c "CREATE DATABASE $DB" >&2
fi

echo "$URL"
