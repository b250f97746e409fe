#!/usr/bin/env bash
# The main job (the README's first quick-start command): the clickable local Sealpost.
#
# On a fresh Debian machine with Rust it installs what is missing (wasm32 target, Trunk,
# wasm-bindgen-cli, binaryen, brotli: scripts/portal.sh), builds the portal into dist/ and
# `sealpost`, makes a demo tenant (Example Corp, example.com) whose portal and key service are
# http://127.0.0.1:8080, protects three sample mails from tests/fixtures/demo/ into the
# development mailbox (.sealpost-demo/data/demo-mailbox/):
#   lab-results.eml  Do-Not-Forward, with a PDF attachment
#   newsletter.eml   Encrypt-Only, an HTML newsletter with inline (cid:) images
#   contract.eml     Encrypt-Only, a long plain-text mail
# checks that each recovers byte for byte with the tenant's keys, and then runs
# `sealpost serve --demo` (portal at /, API at /v1, mailbox at /dev/mailbox) until Ctrl-C.
# Open http://127.0.0.1:8080/dev/mailbox, open a mail's message.html, sign in as
# bob@example.org and take the passcode from the same mailbox page.
#
# Environment: SEALPOST_DEMO_LISTEN (default 127.0.0.1:8080; the tenant is made for the
# address of the first run: delete .sealpost-demo/ after changing it), SEALPOST_DEMO_DIR
# (default .sealpost-demo), SEALPOST_DEMO_NO_SERVE=1 (prepare everything, do not start the
# service).
set -euo pipefail
cd "$(dirname "$0")/.."

LISTEN=${SEALPOST_DEMO_LISTEN:-127.0.0.1:8080}
URL="http://$LISTEN"
DEMO=${SEALPOST_DEMO_DIR:-.sealpost-demo}
DATA="$DEMO/data"
MAILBOX="$DATA/demo-mailbox"
FIXTURES=tests/fixtures/demo

echo "==> portal: install what is missing, build into dist/"
scripts/portal.sh build

echo "==> building sealpost (release)"
cargo build --release --locked -p sealpost-cli
SEALPOST="$PWD/target/release/sealpost"

if [ ! -f "$DEMO/tenant/tenant.toml" ]; then
  echo "==> creating the demo tenant (Example Corp, example.com) for $URL"
  "$SEALPOST" tenant init --dir "$DEMO/tenant" --domain example.com --name "Example Corp" \
    --key-service-url "$URL" --portal-url "$URL/" --show-subject
fi
if ! grep -qF "portal_url = \"$URL/\"" "$DEMO/tenant/tenant.toml"; then
  echo "demo.sh: $DEMO/tenant was made for another address than $URL; delete $DEMO/ and run again" >&2
  exit 1
fi

echo "==> protecting the sample mails into $MAILBOX"
mkdir -p "$MAILBOX"
rm -f "$MAILBOX"/*.eml
for name in lab-results newsletter contract; do
  template=Encrypt-Only
  [ "$name" = lab-results ] && template=Do-Not-Forward
  "$SEALPOST" encrypt --tenant "$DEMO/tenant" --template "$template" \
    < "$FIXTURES/$name.eml" > "$MAILBOX/$name.eml"
  # The samples have no Bcc, so the protected message is the fixture byte for byte.
  if ! "$SEALPOST" decrypt --tenant "$DEMO/tenant" "$MAILBOX/$name.eml" | cmp -s - "$FIXTURES/$name.eml"; then
    echo "demo.sh: $name.eml does not recover byte for byte" >&2
    exit 1
  fi
  printf '    %-16s %-15s %7d bytes, reference %s\n' "$name.eml" "$template" \
    "$(wc -c < "$MAILBOX/$name.eml")" \
    "$("$SEALPOST" inspect "$MAILBOX/$name.eml" | sed -n 's/.*"reference": "\(.*\)".*/\1/p')"
done

if [ "${SEALPOST_DEMO_NO_SERVE:-0}" = 1 ]; then
  echo "Prepared. Start it with: $SEALPOST serve --demo --portal-dir dist --data $DATA --tenant $DEMO/tenant --listen $LISTEN"
  exit 0
fi
cat <<TXT

==> starting Sealpost in demo mode on $URL (Ctrl-C stops it)

    Open  $URL/dev/mailbox  in your browser:
      1. open a mail's message.html and select "Open the message";
      2. sign in as bob@example.org and select "Send code";
      3. reload the mailbox page: the passcode mail is at the top of "Passcode mails".

    Revoke a message:  $SEALPOST admin token create --data $DATA --tenant-id example.com
                       $SEALPOST revoke --url $URL --token TOKEN MESSAGE_ID
                       (MESSAGE_ID from: $SEALPOST inspect $MAILBOX/contract.eml)
TXT
exec "$SEALPOST" serve --demo --portal-dir dist --data "$DATA" --tenant "$DEMO/tenant" --listen "$LISTEN"
