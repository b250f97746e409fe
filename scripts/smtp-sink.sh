#!/usr/bin/env bash
# The SMTP sink for the key service's delivery tests: Debian's python3-aiosmtpd.
#
#   scripts/smtp-sink.sh     install python3-aiosmtpd if /usr/bin/python3 cannot import it
#
# Idempotent: does nothing when the module is there. Needs root (apt-get) only to install.
# The tests (crates/sealpost-keyservice/tests/smtp.rs, crates/sealpost-cli/tests/cli/smtp.rs)
# start the sink themselves on a free loopback port:
#
#   /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox MAILDIR
set -euo pipefail

log() { echo "smtp-sink.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

case "${1:-}" in
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) die "unknown argument '$1' (see --help)" ;;
esac

if /usr/bin/python3 -c 'import aiosmtpd' 2>/dev/null; then
    exit 0
fi
[ "$(id -u)" -eq 0 ] || die "python3-aiosmtpd is not installed; run this script as root once, or: sudo apt-get install -y python3-aiosmtpd"
log "installing Debian's python3-aiosmtpd package"
apt-get update >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y python3-aiosmtpd >&2
/usr/bin/python3 -c 'import aiosmtpd' || die "python3-aiosmtpd installed but /usr/bin/python3 cannot import aiosmtpd"
log "installed"
