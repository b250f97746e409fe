#!/usr/bin/env bash
# A private Postfix instance for the gateway's end-to-end test and benchmark: Debian's postfix,
# run with its own configuration, queue and data directories under DIR, on loopback ports only.
#
#   scripts/postfix.sh install
#       install Debian's postfix and swaks if missing (debconf "No configuration", so the
#       system instance in /etc/postfix stays unconfigured and is never started)
#   scripts/postfix.sh start DIR --listen PORT --relay PORT [--filter PORT --reinject PORT]
#   scripts/postfix.sh start DIR --listen PORT --relay PORT --proxy PORT --reinject PORT
#                                [--speed-adjust]
#       (installs first when needed) write DIR/etc/{main.cf,master.cf}, run `postfix check`,
#       start the instance and wait until its smtpd ports answer. It accepts mail from
#       127.0.0.0/8 on 127.0.0.1:LISTEN for any domain and relays everything to
#       [127.0.0.1]:RELAY (no local delivery, no DNS). With --filter/--reinject it is the
#       "advanced content filter" of Postfix's FILTER_README (after queue): mail accepted and
#       queued on LISTEN goes to the content filter (the gateway) at 127.0.0.1:FILTER, which
#       re-injects it into the smtpd on 127.0.0.1:REINJECT (no content_filter there), and from
#       there to the relay. With --proxy/--reinject it is the before-queue filter of Postfix's
#       SMTPD_PROXY_README: the smtpd on LISTEN (at most 20 processes) forwards each SMTP
#       session as it happens to the gateway at 127.0.0.1:PROXY (smtpd_proxy_filter) and
#       answers the client with the gateway's reply; the gateway relays into the smtpd on
#       127.0.0.1:REINJECT, the only one that queues. --speed-adjust adds
#       `smtpd_proxy_options = speed_adjust` (the whole message is received before the gateway
#       is contacted). Prints the path of the log file (DIR/log/maillog).
#   scripts/postfix.sh stop DIR
#       stop the instance and wait until none of its processes is left (SIGKILL after 10 s)
#   scripts/postfix.sh postconf DIR ARGS...
#       run postconf against the instance (e.g. `postconf DIR -n`)
#
# Needs root (apt-get, and Postfix's master runs as root). Works without systemd; never
# touches /etc/postfix. DIR and its parents must be searchable by the `postfix` user (the
# script makes DIR itself 0755).
set -euo pipefail

log() { echo "postfix.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

POSTFIX=/usr/sbin/postfix
POSTCONF=/usr/sbin/postconf

install_postfix() {
    if [ -x "$POSTFIX" ] && [ -x /usr/bin/swaks ] && [ -x /usr/sbin/smtp-sink ]; then
        return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "postfix or swaks is missing; run this script as root once, or: sudo apt-get install -y postfix swaks"
    log "installing Debian's postfix and swaks packages"
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postfix swaks >&2
    [ -x "$POSTFIX" ] || die "postfix installed but $POSTFIX is missing"
    log "installed"
}

# PIDs of the processes of the instance whose configuration directory is $1: Postfix passes
# MAIL_CONFIG to the master and every daemon it starts.
instance_pids() {
    local want="MAIL_CONFIG=$1" p
    for p in /proc/[0-9]*; do
        if { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "$want"; then
            echo "${p#/proc/}"
        fi
    done
}

# Waits until 127.0.0.1:$1 greets with 220 (bash's /dev/tcp; no extra tool needed).
wait_smtp() {
    local port=$1 i line
    for i in $(seq 1 200); do
        if exec 3<>"/dev/tcp/127.0.0.1/$port" 2>/dev/null; then
            line=$(timeout 5 head -n 1 <&3 || true)
            printf 'QUIT\r\n' >&3 || true
            exec 3>&- 3<&- || true
            case "$line" in 220*) return 0 ;; esac
        fi
        sleep 0.05
    done
    return 1
}

write_config() {
    local dir=$1 listen=$2 relay=$3 filter=$4 reinject=$5 proxy=$6 speed_adjust=$7
    local etc=$dir/etc
    mkdir -p "$etc" "$dir/queue" "$dir/data" "$dir/log"
    chmod 0755 "$dir" "$etc" "$dir/queue" "$dir/log"
    chown postfix "$dir/data"
    chmod 0700 "$dir/data"
    cat >"$etc/main.cf" <<EOF
# Written by scripts/postfix.sh: a private, loopback-only relay.
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $dir/log/maillog
maillog_file_prefixes = $dir/log
myhostname = postfix-$listen.sealpost.test
mydomain = sealpost.test
myorigin = \$myhostname
smtpd_banner = \$myhostname ESMTP
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
# No local delivery: everything goes to the relay.
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
relay_domains =
relayhost = [127.0.0.1]:$relay
smtpd_relay_restrictions = permit_mynetworks, reject
smtp_dns_support_level = disabled
smtp_tls_security_level = none
smtpd_tls_security_level = none
biff = no
message_size_limit = 104857600
mailbox_size_limit = 0
# A real MTA talks to its next hop over about 20 connections.
default_destination_concurrency_limit = 20
initial_destination_concurrency = 20
# Bounces come back quickly in tests instead of after days.
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
EOF
    if [ -n "$filter" ]; then
        cat >>"$etc/main.cf" <<EOF
# Advanced content filter (FILTER_README): everything received goes through the gateway, and
# address mappings happen after it, on re-injection.
content_filter = sealpost:[127.0.0.1]:$filter
receive_override_options = no_address_mappings
EOF
    fi
    cat >"$etc/master.cf" <<EOF
# Written by scripts/postfix.sh. chroot is off ("n") everywhere: the instance lives in DIR.
# service type  private unpriv  chroot  wakeup  maxproc command + args
EOF
    if [ -n "$proxy" ]; then
        cat >>"$etc/master.cf" <<EOF
# Before-queue filter (SMTPD_PROXY_README): each session is forwarded to the gateway as it
# happens; the client gets the gateway's reply. maxproc 20 = sessions the gateway serves at once.
127.0.0.1:$listen inet n - n - 20 smtpd
  -o smtpd_proxy_filter=127.0.0.1:$proxy
EOF
        if [ -n "$speed_adjust" ]; then
            echo "  -o smtpd_proxy_options=speed_adjust" >>"$etc/master.cf"
        fi
    else
        echo "127.0.0.1:$listen inet n - n - - smtpd" >>"$etc/master.cf"
    fi
    cat >>"$etc/master.cf" <<EOF
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
    if [ -n "$filter" ]; then
        cat >>"$etc/master.cf" <<EOF
# The content filter's transport: the SMTP client that hands mail to the gateway.
sealpost  unix  -       -       n       -       20      smtp
  -o smtp_send_xforward_command=yes
  -o disable_mime_output_conversion=yes
  -o smtp_generic_maps=
# Re-injection from the gateway: no second filtering, mappings done here.
127.0.0.1:$reinject inet n - n - - smtpd
  -o content_filter=
  -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
EOF
    fi
    if [ -n "$proxy" ]; then
        cat >>"$etc/master.cf" <<EOF
# Re-injection from the gateway (before queue): the only smtpd that queues; mappings done here.
127.0.0.1:$reinject inet n - n - - smtpd
  -o smtpd_proxy_filter=
  -o receive_override_options=no_unknown_recipient_checks
  -o smtpd_helo_restrictions=
  -o smtpd_client_restrictions=
  -o smtpd_sender_restrictions=
  -o smtpd_relay_restrictions=
  -o smtpd_recipient_restrictions=permit_mynetworks,reject
  -o smtpd_data_restrictions=
  -o mynetworks=127.0.0.0/8
  -o smtpd_authorized_xforward_hosts=127.0.0.0/8
EOF
    fi
}

start() {
    local dir="" listen="" relay="" filter="" reinject="" proxy="" speed_adjust=""
    [ $# -ge 1 ] || die "start needs DIR (see --help)"
    dir=$1; shift
    while [ $# -gt 0 ]; do
        if [ "$1" = --speed-adjust ]; then
            speed_adjust=yes
            shift
            continue
        fi
        [ $# -ge 2 ] || die "$1 needs a value"
        case "$1" in
            --listen) listen=$2 ;;
            --relay) relay=$2 ;;
            --filter) filter=$2 ;;
            --proxy) proxy=$2 ;;
            --reinject) reinject=$2 ;;
            *) die "unknown option '$1' (see --help)" ;;
        esac
        shift 2
    done
    [ -n "$listen" ] && [ -n "$relay" ] || die "start needs --listen and --relay"
    [ -z "$filter" ] || [ -z "$proxy" ] || die "--filter (after queue) and --proxy (before queue) exclude each other"
    if [ -n "$reinject" ] && [ -z "$filter$proxy" ]; then
        die "--filter and --reinject go together"
    fi
    [ -z "$filter" ] || [ -n "$reinject" ] || die "--filter and --reinject go together"
    [ -z "$proxy" ] || [ -n "$reinject" ] || die "--proxy and --reinject go together"
    [ -z "$speed_adjust" ] || [ -n "$proxy" ] || die "--speed-adjust goes with --proxy"
    local p
    for p in "$listen" "$relay" $filter $proxy $reinject; do
        [[ "$p" =~ ^[0-9]+$ ]] && [ "$p" -ge 1 ] && [ "$p" -le 65535 ] || die "not a port: '$p'"
    done
    install_postfix
    [ "$(id -u)" -eq 0 ] || die "a Postfix instance needs root to start (its master runs as root)"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    local etc=$dir/etc
    if [ -n "$(instance_pids "$etc")" ]; then
        die "an instance with configuration $etc is already running (scripts/postfix.sh stop $dir)"
    fi
    write_config "$dir" "$listen" "$relay" "$filter" "$reinject" "$proxy" "$speed_adjust"
    runuser -u postfix -- test -x "$dir/queue" \
        || die "the postfix user cannot reach $dir: make its parent directories searchable (chmod o+x)"
    # `postfix check` creates the queue's subdirectories and fails on a broken configuration.
    "$POSTFIX" -c "$etc" check >&2 || die "postfix -c $etc check failed"
    "$POSTFIX" -c "$etc" start >&2 || die "postfix -c $etc start failed (log: $dir/log/maillog)"
    for p in "$listen" $reinject; do
        wait_smtp "$p" || { stop "$dir"; die "Postfix did not answer on 127.0.0.1:$p (log: $dir/log/maillog)"; }
    done
    echo "$dir/log/maillog"
}

stop() {
    [ $# -eq 1 ] || die "stop needs exactly DIR"
    local dir=$1
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    local etc=$dir/etc i pids
    [ -n "$(instance_pids "$etc")" ] || return 0
    "$POSTFIX" -c "$etc" stop >&2 2>/dev/null || true
    for i in $(seq 1 100); do
        pids=$(instance_pids "$etc")
        [ -n "$pids" ] || return 0
        sleep 0.1
    done
    log "the instance did not stop within 10 s; killing it"
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.2
    [ -z "$(instance_pids "$etc")" ] || die "processes of $etc are still running: $(instance_pids "$etc" | tr '\n' ' ')"
}

case "${1:-}" in
    -h|--help|"") usage; exit 0 ;;
    install) shift; [ $# -eq 0 ] || die "install takes no arguments"; install_postfix ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    postconf) shift; [ $# -ge 1 ] || die "postconf needs DIR"; d=$1; shift; "$POSTCONF" -c "$d/etc" "$@" ;;
    *) die "unknown command '$1' (see --help)" ;;
esac
