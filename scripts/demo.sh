#!/usr/bin/env bash
# The main job (the README's first quick-start command): the clickable local Sealpost.
#
# On a fresh Debian machine with Rust it installs what is missing (wasm32 target, Trunk,
# wasm-bindgen-cli, binaryen, brotli: scripts/portal.sh), builds the portal into dist/ and
# `sealpost`, makes a demo tenant (Example Corp, example.com) whose portal and key service are
# http://127.0.0.1:8080, starts the mail gateway (`sealpost gateway`, SMTP on 127.0.0.1:2525,
# rules from examples/demo-rules.toml, next hop: the development mailbox directory
# .sealpost-demo/data/demo-mailbox/) and sends three sample mails from tests/fixtures/demo/
# through it, from alice@example.com to bob@example.org (outside) and carol@example.com (inside):
#   lab-results.eml  PDF attachment to outside: Do-Not-Forward (rule "PDF attachments to outside")
#   newsletter.eml   an HTML newsletter with inline (cid:) images: Encrypt-Only
#   contract.eml     a long plain-text mail, also to carol: protected for bob, original for carol
# checks that each protected copy recovers byte for byte with the tenant's keys, and then runs
# `sealpost serve --demo` (portal at /, API at /v1, mailbox at /dev/mailbox) until Ctrl-C, which
# also stops the gateway.
# Open http://127.0.0.1:8080/dev/mailbox, open a mail's message.html, sign in as
# bob@example.org and take the passcode from the same mailbox page. Replies written in the
# portal go to the gateway's reply endpoint (127.0.0.1:8090), which has the key service
# authorize them and files them into the same mailbox; the tenant has transport decryption on,
# so alice@example.com (inside) finds them decrypted there. Besides the passcode, the portal
# offers "Sign in with Demo accounts": the local OpenID provider the tests use
# (scripts/oidc-provider.sh, on 127.0.0.1:9400), where you type the address to sign in as.
#
# Environment: SEALPOST_DEMO_SMTP (gateway, default 127.0.0.1:2525), SEALPOST_DEMO_REPLY (the
# gateway's reply endpoint, default 127.0.0.1:8090; fixed in the tenant like the listen
# address), SEALPOST_DEMO_OIDC_PORT (the demo OpenID provider, default 9400),
# SEALPOST_DEMO_METRICS
# (gateway metrics, default 127.0.0.1:9025), SEALPOST_DEMO_LISTEN (default 127.0.0.1:8080; the tenant is made for the
# address of the first run: delete .sealpost-demo/ after changing it), SEALPOST_DEMO_DIR
# (default .sealpost-demo), SEALPOST_DEMO_NO_SERVE=1 (prepare everything, send the samples,
# then stop instead of staying up).
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN=${SEALPOST_DEMO_LISTEN:-127.0.0.1:8080}
URL="http://$LISTEN"
DEMO=${SEALPOST_DEMO_DIR:-.sealpost-demo}
DATA="$DEMO/data"
MAILBOX="$DATA/demo-mailbox"
FIXTURES=tests/fixtures/demo
SMTP=${SEALPOST_DEMO_SMTP:-127.0.0.1:2525}
REPLY=${SEALPOST_DEMO_REPLY:-127.0.0.1:8090}
OIDC_PORT=${SEALPOST_DEMO_OIDC_PORT:-9400}
METRICS=${SEALPOST_DEMO_METRICS:-127.0.0.1:9025}

echo "==> portal: install what is missing, build into dist/"
scripts/portal.sh build

echo "==> building sealpost (release)"
cargo build --release --locked -p sealpost-cli
SEALPOST="$PWD/target/release/sealpost"

if [ ! -f "$DEMO/tenant/tenant.toml" ]; then
  echo "==> creating the demo tenant (Example Corp, example.com) for $URL"
  "$SEALPOST" tenant init --dir "$DEMO/tenant" --domain example.com --name "Example Corp" \
    --key-service-url "$URL" --portal-url "$URL/" --show-subject \
    --reply-url "http://$REPLY" --transport-decryption
fi
if ! grep -qF "portal_url = \"$URL/\"" "$DEMO/tenant/tenant.toml" \
  || ! grep -qF "reply_url = \"http://$REPLY\"" "$DEMO/tenant/tenant.toml"; then
  echo "demo.sh: $DEMO/tenant was made for other addresses than $URL and http://$REPLY (or by an older demo); delete $DEMO/ and run again" >&2
  exit 1
fi
mkdir -p "$MAILBOX"
rm -f "$MAILBOX"/*.eml
# The configuration: a [gateway] table in front of the committed demo rules. Mail
# it accepts is filed into the development mailbox (next hop file://), one .eml per recipient.
{
  cat <<TOML
# Made by scripts/demo.sh; edit examples/demo-rules.toml instead. One file for both services:
# [keyservice] for \`sealpost serve\`, [gateway] and the rules for \`sealpost gateway\`.
[keyservice]

# "Sign in with an account": the local demo OpenID provider (never for real users).
[[keyservice.oidc]]
id = "demo"
preset = "generic"
display_name = "Demo accounts"
issuer = "http://127.0.0.1:$OIDC_PORT"
client_id = "sealpost"
client_secret = "sealpost-test-secret"
redirect_url = "$URL/"

[gateway]
listen = "$SMTP"
hostname = "gateway.example.com"
next_hop = "file://$(cd "$MAILBOX" && pwd)"
tenant = "tenant"
spool_dir = "spool"
metrics_listen = "$METRICS"
# Encrypted replies from the portal: checked by the key service, sent like outbound mail.
reply_listen = "$REPLY"
reply_from = "noreply@example.com"
reply_allowed_origins = ["$URL"]
key_service_url = "$URL"
key_service_token_file = "gateway.token"

TOML
  cat examples/demo-rules.toml
} > "$DEMO/gateway.toml"
"$SEALPOST" rules check --config "$DEMO/gateway.toml" >/dev/null

SERVE_PID=""
GATEWAY_PID=""
stop_all() {
  for pid in $GATEWAY_PID $SERVE_PID; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  scripts/oidc-provider.sh stop "$OIDC_PORT" 2>/dev/null || true
}
trap stop_all EXIT

echo "==> starting the demo OpenID provider on 127.0.0.1:$OIDC_PORT (accounts: bob@example.org, carol@example.com)"
OIDC_REDIRECT_URIS="$URL/" OIDC_ACCOUNTS="bob@example.org,carol@example.com,unverified@example.org:unverified" \
  scripts/oidc-provider.sh start "$OIDC_PORT" >/dev/null

echo "==> starting Sealpost (portal, key service, development mailbox) on $URL, log in $DEMO/serve.log"
"$SEALPOST" serve --demo --portal-dir dist --data "$DATA" --tenant "$DEMO/tenant" --listen "$LISTEN" \
  --config "$DEMO/gateway.toml" 2> "$DEMO/serve.log" &
SERVE_PID=$!
for _ in $(seq 1 150); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$URL/readyz', timeout=1)" 2>/dev/null; then break; fi
  kill -0 $SERVE_PID 2>/dev/null || { cat "$DEMO/serve.log" >&2; echo "demo.sh: sealpost serve did not start (is $LISTEN in use?)" >&2; exit 1; }
  sleep 0.2
done
# The gateway's credential for the key service (made once; the tenant is in the database now).
if [ ! -s "$DEMO/gateway.token" ]; then
  (umask 077; "$SEALPOST" admin token create --data "$DATA" --tenant-id example.com --role gateway \
    > "$DEMO/gateway.token")
fi

echo "==> starting the mail gateway on $SMTP (rules: examples/demo-rules.toml; replies on $REPLY)"
"$SEALPOST" gateway --config "$DEMO/gateway.toml" 2> "$DEMO/gateway.log" &
GATEWAY_PID=$!
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/${SMTP%:*}/${SMTP##*:}") 2>/dev/null; then break; fi
  kill -0 $GATEWAY_PID 2>/dev/null || { cat "$DEMO/gateway.log" >&2; echo "demo.sh: the gateway did not start" >&2; exit 1; }
  sleep 0.1
done

echo "==> sending the sample mails through the gateway (to bob@example.org outside, carol@example.com inside)"
# Python's standard library is the SMTP client: no extra package needed.
python3 - "$SMTP" "$FIXTURES" <<'PY'
import smtplib, sys
host, port = sys.argv[1].rsplit(":", 1)
with smtplib.SMTP(host, int(port)) as s:
    for name, rcpts in [("lab-results", ["bob@example.org"]),
                        ("newsletter", ["bob@example.org"]),
                        ("contract", ["bob@example.org", "carol@example.com"])]:
        raw = open(f"{sys.argv[2]}/{name}.eml", "rb").read()
        s.sendmail("alice@example.com", rcpts, raw)
        print(f"    {name}.eml -> {', '.join(rcpts)}: accepted")
PY
# Four copies: three protected for bob, the original contract for carol.
for _ in $(seq 1 100); do
  [ "$(ls "$MAILBOX"/*.eml 2>/dev/null | wc -l)" -ge 4 ] && break
  sleep 0.1
done
if [ "$(ls "$MAILBOX"/*.eml 2>/dev/null | wc -l)" -lt 4 ]; then
  cat "$DEMO/gateway.log" >&2
  echo "demo.sh: the gateway did not deliver the sample mails (log above)" >&2
  exit 1
fi
for f in "$MAILBOX"/*.eml; do
  to=$(sed -n 's/^Delivered-To: //p' "$f" | head -1 | tr -d '\r')
  if grep -q '^X-Sealpost-Envelope' "$f"; then
    # The samples have no Bcc, so the protected message is the fixture byte for byte.
    subject=$("$SEALPOST" decrypt --tenant "$DEMO/tenant" "$f" | sed -n 's/^Subject: //p' | head -1 | tr -d '\r')
    name=$(grep -l -F "Subject: $subject" "$FIXTURES"/*.eml | head -1)
    if ! "$SEALPOST" decrypt --tenant "$DEMO/tenant" "$f" | cmp -s - "$name"; then
      echo "demo.sh: $f does not recover $name byte for byte" >&2
      exit 1
    fi
    printf '    %-22s protected, for %-18s reference %s\n' "$(basename "$name")" "$to" \
      "$("$SEALPOST" inspect "$f" | sed -n 's/.*"reference": "\(.*\)".*/\1/p')"
  else
    subject=$(sed -n 's/^Subject: //p' "$f" | head -1 | tr -d '\r')
    name=$(grep -l -F "Subject: $subject" "$FIXTURES"/*.eml | head -1)
    printf '    %-22s original,  for %s\n' "$(basename "$name")" "$to"
  fi
done

if [ "${SEALPOST_DEMO_NO_SERVE:-0}" = 1 ]; then
  echo "Prepared (and stopped again). Start it with: $SEALPOST serve --demo --portal-dir dist --data $DATA --tenant $DEMO/tenant --listen $LISTEN --config $DEMO/gateway.toml"
  echo "(and the gateway with: $SEALPOST gateway --config $DEMO/gateway.toml, the OpenID provider with: scripts/oidc-provider.sh start $OIDC_PORT)"
  exit 0
fi
cat <<TXT

==> Sealpost runs in demo mode on $URL (Ctrl-C stops it; logs in $DEMO/serve.log and $DEMO/gateway.log)

    Open  $URL/dev/mailbox  in your browser:
      1. open a mail's message.html and select "Open the message";
      2. sign in as bob@example.org and select "Send code";
      3. reload the mailbox page: the passcode mail is at the top of "Passcode mails".
    Or, in step 2, select "Sign in with Demo accounts" and type bob@example.org in the
    window that opens (the local OpenID provider: no password).

    Reply from the portal (Reply, Reply all, Forward, as the message's rights allow): the
    reply is encrypted in your browser and sent through the gateway's reply endpoint
    (http://$REPLY); alice@example.com is inside Example Corp, so her copy appears in the
    mailbox decrypted by the gateway (transport decryption), threaded under her mail.

    Revoke a message:  $SEALPOST admin token create --data $DATA --tenant-id example.com
                       $SEALPOST revoke --url $URL --token TOKEN MESSAGE_ID
                       (MESSAGE_ID from: $SEALPOST inspect $MAILBOX/FILE.eml)

    Send your own mail through the mail-flow rules (gateway on $SMTP, log in $DEMO/gateway.log):
      swaks --server $SMTP --from alice@example.com --to bob@example.org --header "Subject: [secure] hi"
      python3 -c 'import smtplib; smtplib.SMTP("${SMTP%:*}", ${SMTP##*:}).sendmail("alice@example.com", ["bob@example.org", "carol@example.com"], b"Subject: invoice\r\n\r\nhello\r\n")'
    Mail outside example.com is protected, inside passes as is; a mail with
    "X-Classification: Secret" to outside is refused. Try the rules without sending:
      $SEALPOST rules test --config $DEMO/gateway.toml $FIXTURES/lab-results.eml
    The queue: $SEALPOST queue list --config $DEMO/gateway.toml   Metrics: http://$METRICS/metrics
TXT
wait "$SERVE_PID"
