#!/usr/bin/env bash
# `make run`: start hubbub on 127.0.0.1:8080 with ./data, after preparing a demo
# organization, plugin and API token, and print what a newcomer needs next.
#
# The demo API token is made once and kept in DATA/demo-api-token (0600, its
# id beside it in demo-api-token.id), so every later `make run` prints the
# same one instead of minting another token that never expires. Revoke it
# (hubbub token revoke ID) or delete the file to get a new one.
#
# Environment: HUBBUB_BIN (default build/hubbub), HUBBUB_DATA or
# HUBBUB_DATA_DIR (default data), HUBBUB_LISTEN (default 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HUBBUB_BIN:-build/hubbub}
DATA=${HUBBUB_DATA:-${HUBBUB_DATA_DIR:-data}}
LISTEN=${HUBBUB_LISTEN:-127.0.0.1:8080}
HOSTPORT=${LISTEN}
[[ $HOSTPORT == :* ]] && HOSTPORT=127.0.0.1$HOSTPORT
[[ $HOSTPORT == 0.0.0.0:* ]] && HOSTPORT=127.0.0.1:${HOSTPORT#0.0.0.0:}
ORG=demo
PLUGIN=demo-plugin
TOKEN_FILE=$DATA/demo-api-token
EVENT=11111111-2222-4333-8444-555555555555
SESSION=66666666-7777-4888-9999-aaaaaaaaaaaa

die() { echo "make run: $*" >&2; exit 1; }
# json KEY.PATH: read one value from the JSON document on stdin.
json() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const o=JSON.parse(s);const v=process.argv[1].split(".").reduce((a,k)=>a==null?a:a[k],o);console.log(v==null?"":typeof v==="object"?JSON.stringify(v):v)})' "$1"; }
# hb ARGS...: an admin command on DATA with --json; its document on stdout
# whether it succeeded or not, its exit code as the function's.
hb() { "$BIN" "$@" --data "$DATA" --json 2>/dev/null; }

# create KIND ARGS...: idempotent creation; "already_exists" is fine.
create() {
  local out rc=0
  out=$(hb "$@") || rc=$?
  [ $rc = 0 ] && return 0
  [ "$(json error.code <<<"$out")" = already_exists ] && return 0
  die "hubbub $* failed: $(json error.message <<<"$out")"
}
# The store first (admin commands never create one); idempotent.
out=$(hb init) || die "hubbub init failed: $(json error.message <<<"$out")"
create org create "$ORG"
create plugin create --org "$ORG" "$PLUGIN"

# The kept token, if it is still there and not revoked.
TOKEN=""
if [ -s "$TOKEN_FILE" ] && [ -s "$TOKEN_FILE.id" ]; then
  id=$(cat "$TOKEN_FILE.id")
  revoked=$(hb token list --org "$ORG" --plugin "$PLUGIN" |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const t=JSON.parse(s).tokens.find(t=>t.id===process.argv[1]);console.log(t?(t.revoked_at===null?"no":"yes"):"gone")})' "$id")
  [ "$revoked" = no ] && TOKEN=$(cat "$TOKEN_FILE")
fi
NEW=""
if [ -z "$TOKEN" ]; then
  out=$(hb token create --org "$ORG" --plugin "$PLUGIN" --name "make run $(date -u +%FT%TZ)") ||
    die "cannot create the demo API token: $(json error.message <<<"$out")"
  TOKEN=$(json token <<<"$out")
  # Written 0600: it is a credential, like the store next to it.
  (umask 077 && printf '%s\n' "$TOKEN" >"$TOKEN_FILE.tmp" && printf '%s\n' "$(json id <<<"$out")" >"$TOKEN_FILE.id" &&
    mv "$TOKEN_FILE.tmp" "$TOKEN_FILE")
  NEW=" (new)"
fi
CONN=$(hb connection-token create --org "$ORG" --plugin "$PLUGIN" --event "$EVENT" --session "$SESSION" \
  --user demo --scopes session,event,organization --ttl 86400 | json token)
[ -n "$CONN" ] || die "cannot mint the demo connection token"

cat <<MSG

  hubbub is starting on http://$HOSTPORT  (state in $DATA/, Ctrl-C to stop)

  1. Open the demo room in two browser tabs:
       http://$HOSTPORT/demo#token=$CONN

  2. Your API token for organization "$ORG", plugin "$PLUGIN"$NEW
     (kept in $TOKEN_FILE: every make run prints this same one):
       export HUBBUB_TOKEN=$TOKEN

  3. Publish into that room from another terminal (both tabs show it):
       curl -sS http://$HOSTPORT/api/v1/pub_subs \\
         -H "Authorization: Bearer \$HUBBUB_TOKEN" -H 'Content-Type: application/json' \\
         -d '{"scope":{"type":"session","event_id":"$EVENT","session_id":"$SESSION"},
              "payload":{"event":{"eventName":"reaction","data":{"emoji":"🎉","from":"curl"}}}}'

  Next: docs/protocol.md (the room protocol), docs/http-api.md, docs/sdk.md,
  and \`$BIN help\` for the admin commands.

MSG
exec "$BIN" serve --listen "$LISTEN" --data "$DATA"
