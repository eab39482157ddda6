#!/usr/bin/env bash
# `make run`: start hubbub on 127.0.0.1:8080 with ./data, after preparing a demo
# organization, plugin and API token, and print what a newcomer needs next.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/hubbub
DATA=${HUBBUB_DATA:-data}
LISTEN=${HUBBUB_LISTEN:-127.0.0.1:8080}
HOSTPORT=${LISTEN}
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);console.log(process.argv[1].split(".").reduce((a,k)=>a[k],o))})' "$1"; }

# Idempotent: the store, the demo organization and plugin are made once.
"$BIN" init --data "$DATA" >/dev/null
"$BIN" org create demo --data "$DATA" --json >/dev/null 2>&1 || true
if ! "$BIN" plugin create --org demo demo-plugin --data "$DATA" --json >/tmp/hubbub-plugin.$$ 2>/dev/null; then
  rm -f /tmp/hubbub-plugin.$$
fi
rm -f /tmp/hubbub-plugin.$$
# API tokens are shown once, so every `make run` mints a fresh one.
TOKEN=$("$BIN" token create --org demo --plugin demo-plugin --name "make run $(date -u +%FT%TZ)" --data "$DATA" --json | json token)
EVENT=11111111-2222-4333-8444-555555555555
SESSION=66666666-7777-4888-9999-aaaaaaaaaaaa
CONN=$("$BIN" connection-token create --org demo --plugin demo-plugin --event "$EVENT" --session "$SESSION" \
  --user demo --scopes session,event,organization --ttl 86400 --data "$DATA" --json | json token)

cat <<MSG

  hubbub is starting on http://$HOSTPORT  (state in $DATA/, Ctrl-C to stop)

  Your API token for organization "demo", plugin "demo-plugin" (shown once):
    export HUBBUB_TOKEN=$TOKEN

  Open the demo room in two browser tabs:
    http://$HOSTPORT/demo#token=$CONN

  Publish into that room from a terminal:
    curl -sS http://$HOSTPORT/api/v1/pub_subs \\
      -H "Authorization: Bearer \$HUBBUB_TOKEN" -H 'Content-Type: application/json' \\
      -d '{"scope":{"type":"session","event_id":"$EVENT","session_id":"$SESSION"},
           "payload":{"event":{"eventName":"reaction","data":{"emoji":"🎉","from":"curl"}}}}'

  Next: docs/protocol.md (the room protocol), docs/http-api.md, docs/sdk.md.

MSG
exec "$BIN" serve --listen "$LISTEN" --data "$DATA"
