#!/usr/bin/env bash
# cli_smoke.sh [BIN] - the admin commands end to end, in a fresh data directory.
# BIN defaults to $HUBBUB_BIN, then build/hubbub. Exits non-zero on the first
# failure and says which check failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-${HUBBUB_BIN:-build/hubbub}}
DATA=$(mktemp -d /tmp/hb_cli_smoke.XXXXXX)
trap 'rm -rf "$DATA"' EXIT
EVENT=11111111-2222-4333-8444-555555555555
SESSION=66666666-7777-4888-9999-aaaaaaaaaaaa
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

hb() { "$BIN" "$@" --data "$DATA"; }
die() { echo "cli_smoke: FAIL: $*" >&2; exit 1; }
# jq-like: j 'expression over o' < json  (python3 is in every Debian image we use)
j() { python3 -c "import json,sys; o=json.load(sys.stdin); v=($1); print(json.dumps(v) if not isinstance(v,str) else v)"; }
# expect_exit CODE STDERR_SUBSTRING -- command...
expect_exit() {
  local code=$1 msg=$2 rc=0 err
  shift 3
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = "$code" ] || die "'$*' exited $rc, expected $code ($err)"
  [[ "$err" == *"$msg"* ]] || die "'$*' said '$err', expected '$msg'"
}

# --- the store: only `init` (and `serve`) create one
expect_exit 1 "hubbub init" -- hb org list
expect_exit 1 "no store" -- hb org create acme
expect_exit 1 "no store" -- hb token list
expect_exit 1 "no store" -- "$BIN" org list --data "$DATA/not-there"
[ ! -e "$DATA/hubbub.db" ] || die "an admin command created a store"
[ ! -e "$DATA/not-there" ] || die "an admin command created a data directory"
hb init --json | grep -q '"created":true' || die "init creates the store"
[ -f "$DATA/hubbub.db" ] || die "init made no hubbub.db"
[ "$(stat -c %a "$DATA/hubbub.db")" = 600 ] || die "the store is not 0600"
hb init --json | grep -q '"created":false' || die "init again: the store is already there"
"$BIN" init --data "$DATA/new/dir" >/dev/null || die "init creates the data directory"
[ "$(stat -c %a "$DATA/new/dir")" = 700 ] || die "the data directory is not 0700"
rm -rf "$DATA/new"

# --- organizations
ORG_JSON=$(hb org create acme --json)
ORG=$(j 'o["id"]' <<<"$ORG_JSON")
[[ $ORG =~ $UUID_RE ]] || die "org id '$ORG'"
[ "$(j 'o["name"]' <<<"$ORG_JSON")" = acme ] || die "org name"
expect_exit 1 "organization name 'acme' already exists" -- hb org create acme
hb org create globex --json >/dev/null
[ "$(hb org list --json | j '[x["name"] for x in o["organizations"]]')" = '["acme", "globex"]' ] || die "org list"
hb org list --json | j 'all(isinstance(x["created_at"], int) for x in o["organizations"])' | grep -q true || die "created_at"

# --- plugins
PL_JSON=$(hb plugin create --org acme polls --origins "https://app.example.com" --json)
PLUGIN=$(j 'o["id"]' <<<"$PL_JSON")
[[ $PLUGIN =~ $UUID_RE ]] || die "plugin id"
[ "$(j 'o["organization_id"]' <<<"$PL_JSON")" = "$ORG" ] || die "plugin org"
[[ "$(j 'o["signing_secret"]' <<<"$PL_JSON")" =~ ^hbs_[A-Za-z0-9_-]{43}$ ]] || die "signing secret shape"
expect_exit 1 "already exists" -- hb plugin create --org acme polls
hb plugin create --org "$ORG" other --json >/dev/null # org by UUID
hb plugin create --org globex polls --json >/dev/null  # same name, other org
[ "$(hb plugin list --org acme --json | j 'len(o["plugins"])')" = 2 ] || die "plugin list --org"
[ "$(hb plugin list --json | j 'len(o["plugins"])')" = 3 ] || die "plugin list"
hb plugin list --json | grep -q signing_secret && die "plugin list shows a secret"
expect_exit 1 "org 'nope' not found" -- hb plugin list --org nope
[ "$(hb plugin list --org acme --json | j 'o["plugins"][0]["allowed_origins"]')" = "https://app.example.com" ] || die "origins"
hb plugin update --org acme polls --origins "" --json >/dev/null
[ "$(hb plugin list --org acme --json | j 'o["plugins"][0]["allowed_origins"]')" = "" ] || die "origins cleared"
expect_exit 2 "no path" -- hb plugin update --org acme polls --origins "https://a.example/x"

# --- API tokens
TOK_JSON=$(hb token create --org acme --plugin polls --name backend --json)
TOKEN=$(j 'o["token"]' <<<"$TOK_JSON")
TOKEN_ID=$(j 'o["id"]' <<<"$TOK_JSON")
[[ $TOKEN =~ ^hbk_[A-Za-z0-9_-]{43}$ ]] || die "token shape '$TOKEN'"
[ "$(j 'o["plugin_id"]' <<<"$TOK_JSON")" = "$PLUGIN" ] || die "token plugin"
[ "$(j 'o["organization_id"]' <<<"$TOK_JSON")" = "$ORG" ] || die "token org"
[ "$(j 'o["name"]' <<<"$TOK_JSON")" = backend ] || die "token name"
hb token create --org acme --plugin "$PLUGIN" | grep -qi "shown once" || die "human text must say shown once"
expect_exit 1 "already exists" -- hb token create --org acme --plugin polls --name backend
expect_exit 1 "plugin 'nope' not found" -- hb token create --org acme --plugin nope
grep -rqF -e "${TOKEN#hbk_}" "$DATA" && die "the token is stored in clear"
LIST=$(hb token list --json)
[ "$(j 'len(o["tokens"])' <<<"$LIST")" = 2 ] || die "token list"
grep -q hash <<<"$LIST" && die "token list shows hashes"
[ "$(j '[t["revoked_at"] for t in o["tokens"]]' <<<"$LIST")" = '[null, null]' ] || die "revoked_at null"
[ "$(hb token revoke "$TOKEN_ID" --json | j 'o["revoked"]')" = true ] || die "revoke"
hb token list --json | j '[t for t in o["tokens"] if t["id"]==o["tokens"][0]["id"]][0]["revoked_at"]' | grep -Eq '^[0-9]+$' || die "revoked_at set"
expect_exit 1 "not found" -- hb token revoke 00000000-0000-4000-8000-000000000000
expect_exit 2 "not a UUID" -- hb token revoke nope

# --- connection tokens
CT=$(hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION \
  --user alice --scopes session,event --ttl 600 --json)
NOW=$(date +%s)
EXP=$(j 'o["expires_at"]' <<<"$CT")
[ $((EXP - NOW)) -ge 590 ] && [ $((EXP - NOW)) -le 601 ] || die "expires_at $EXP vs now $NOW"
CLAIMS=$(j 'o["token"]' <<<"$CT" | python3 -c '
import sys, json, base64
p = sys.stdin.read().strip().split(".")[1]
print(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)).decode())')
[ "$(j 'o["organization_id"]' <<<"$CLAIMS")" = "$ORG" ] || die "claim org"
[ "$(j 'o["plugin_id"]' <<<"$CLAIMS")" = "$PLUGIN" ] || die "claim plugin"
[ "$(j 'o["event_id"]' <<<"$CLAIMS")" = "$EVENT" ] || die "claim event"
[ "$(j 'o["sub"]' <<<"$CLAIMS")" = alice ] || die "claim sub"
[ "$(j 'o["scopes"]' <<<"$CLAIMS")" = '["session", "event"]' ] || die "claim scopes"
DEF=$(hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --json)
[ $(($(j 'o["expires_at"]' <<<"$DEF") - NOW)) -ge 3590 ] || die "default ttl"
expect_exit 2 "--ttl" -- hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --ttl 86401
expect_exit 2 "not a UUID" -- hb connection-token create --org acme --plugin polls --event nope --session $SESSION
expect_exit 2 "--session" -- hb connection-token create --org acme --plugin polls --event $EVENT
expect_exit 2 "bogus" -- hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --scopes bogus

# --- usage errors and the rest
expect_exit 2 "unknown command" -- "$BIN" frobnicate
expect_exit 2 "unknown option" -- hb org list --bogus
expect_exit 2 "missing NAME" -- hb org create
"$BIN" version | grep -q '^hubbub ' || die "version"
"$BIN" help | grep -q 'connection-token create' || die "help"
echo "cli_smoke: ok"
