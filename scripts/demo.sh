#!/usr/bin/env bash
# The main job (the README's first quick-start command): builds `sealpost`, makes a demo
# tenant, protects the sample mails in examples/mail/, shows what a recipient receives, and
# recovers the originals with the tenant's keys. Output goes to .sealpost-demo/.
#
# Then it runs the key service for the demo tenant on http://127.0.0.1:8080 until Ctrl-C
# (set SEALPOST_DEMO_NO_SERVE=1 to skip that). The portal and the gateway are not built yet
# (see ARCHITECTURE.md, "Planned"); this demo grows into the clickable local Sealpost as they land.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO=.sealpost-demo
OUT="$DEMO/out"
echo "==> building sealpost (release)"
cargo build --release --locked -p sealpost-cli
SEALPOST="$PWD/target/release/sealpost"

mkdir -p "$OUT"
if [ ! -f "$DEMO/tenant/tenant.toml" ]; then
  echo "==> creating the demo tenant (Example Corp, example.com)"
  "$SEALPOST" tenant init --dir "$DEMO/tenant" --domain example.com --name "Example Corp"
fi

save_html() { # extract the message.html attachment of a wrapper mail
  python3 - "$1" "$2" <<'PY'
import email, sys
from email import policy
msg = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=policy.default)
for part in msg.iter_attachments():
    if part.get_filename() == "message.html":
        open(sys.argv[2], "wb").write(part.get_payload(decode=True))
PY
}

for mail in examples/mail/*.eml; do
  name=$(basename "$mail" .eml)
  template=Encrypt-Only
  case "$name" in lab-results*) template=Do-Not-Forward ;; esac
  echo
  echo "==> $mail  (template $template)"
  "$SEALPOST" encrypt --tenant "$DEMO/tenant" --template "$template" < "$mail" > "$OUT/$name.wrapper.eml"
  save_html "$OUT/$name.wrapper.eml" "$OUT/$name.message.html"
  "$SEALPOST" inspect "$OUT/$name.wrapper.eml" > "$OUT/$name.header.json"
  "$SEALPOST" decrypt --tenant "$DEMO/tenant" "$OUT/$name.wrapper.eml" > "$OUT/$name.recovered.eml"
  python3 - "$mail" "$OUT/$name.recovered.eml" <<'PY'
import re, sys
orig = open(sys.argv[1], "rb").read()
# The protected copy is the original without its Bcc field(s), byte for byte.
without_bcc = re.sub(rb"(?im)^bcc:.*\r?\n(?:[ \t].*\r?\n)*", b"", orig.split(b"\n\n", 1)[0] + b"\n\n", count=0) + orig.split(b"\n\n", 1)[1] if b"\n\n" in orig else orig
got = open(sys.argv[2], "rb").read()
print("    recovered byte for byte:", "yes" if got == without_bcc else "NO")
sys.exit(0 if got == without_bcc else 1)
PY
  echo "    wrapper mail:   $OUT/$name.wrapper.eml ($(wc -c < "$OUT/$name.wrapper.eml") bytes)"
  echo "    attachment:     $OUT/$name.message.html (open it in a browser)"
  echo "    readable header: $(tr -d '\n ' < "$OUT/$name.header.json" | cut -c1-160)..."
done

echo
echo "Done. What recipients get is in $OUT/*.wrapper.eml; the tenant's keys are in $DEMO/tenant/keys."
echo "Try: $SEALPOST inspect $OUT/contract.message.html"

if [ "${SEALPOST_DEMO_NO_SERVE:-0}" = 1 ]; then
  exit 0
fi
LISTEN=${SEALPOST_DEMO_LISTEN:-127.0.0.1:8080}
cat <<TXT

==> starting the key service for the demo tenant on http://$LISTEN (Ctrl-C stops it)
    tenant info:   curl http://$LISTEN/v1/tenants/example.com
    API document:  curl http://$LISTEN/v1/openapi.json
    admin token:   $SEALPOST admin token create --data $DEMO/data --tenant-id example.com
    revoke:        $SEALPOST revoke --url http://$LISTEN --token TOKEN MESSAGE_ID   (ids in $OUT/*.header.json)
    audit:         $SEALPOST audit --url http://$LISTEN --token TOKEN MESSAGE_ID
    passcode mail: $SEALPOST outbox list --data $DEMO/data
TXT
exec "$SEALPOST" serve --data "$DEMO/data" --tenant "$DEMO/tenant" --listen "$LISTEN"
