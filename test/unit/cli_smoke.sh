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
grep -rqF "${TOKEN#hbk_}" "$DATA" && die "the token is stored in clear"
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

# --- help: on stdout, exit 0, for every command (--help), and the other two
# ways (-h, `hubbub help CMD`) for a few: one process each, and under ASan a
# process is slow.
COMMANDS=("serve" "org create" "org list" "plugin create" "plugin list" "plugin update" "token create"
          "token list" "token revoke" "connection-token create" "admin-token create" "version" "help")
check_help() { # check_help "WORDS" COMMAND...
  local c=$1 rc=0 out
  shift
  out=$("$@" 2>"$DATA/err") || rc=$?
  [ "$rc" = 0 ] || die "'$*' exited $rc"
  [ ! -s "$DATA/err" ] || die "'$*' wrote to stderr: $(cat "$DATA/err")"
  [[ "$out" == "usage: hubbub $c"* ]] || die "'$*' printed '${out:0:80}'"
}
for c in "${COMMANDS[@]}"; do
  read -ra words <<<"$c"
  check_help "$c" "$BIN" "${words[@]}" --help
done
check_help "serve" "$BIN" serve -h
check_help "token revoke" "$BIN" token revoke -h
check_help "serve" "$BIN" help serve
check_help "connection-token create" "$BIN" help connection-token create
"$BIN" token --help | grep -q "^  hubbub token revoke" || die "token --help"
"$BIN" help plugin | grep -q "^  hubbub plugin update" || die "help plugin"
"$BIN" --help | grep -q '^  hubbub serve' || die "--help"
"$BIN" -h | grep -q '^  hubbub serve' || die "-h"
"$BIN" token create --bogus --help | grep -q '^usage: hubbub token create' || die "--help wins over a mistake"
expect_exit 2 "no command 'nope'" -- "$BIN" help nope
expect_exit 2 "unknown option '--bogus'" -- "$BIN" serve --bogus
expect_exit 2 "unknown option '--web'" -- "$BIN" serve --web /tmp
expect_exit 2 "'token' needs a subcommand: create, list or revoke" -- "$BIN" token
expect_exit 2 "no subcommand 'frob'" -- "$BIN" plugin frob
expect_exit 2 "unknown option '--data'" -- "$BIN" version --data "$DATA"

# --- --json: exactly one JSON document on stdout, success or failure
# json_run EXPECTED_EXIT [PY_EXPR] -- command...: runs it and checks the exit
# code now; that stdout is exactly one JSON document and, given, that PY_EXPR
# over it (as o) is true are checked by check_json_docs, all in one python3
# (whose start-up is what this script would otherwise spend its time on).
# Leaves the output in $DOC.
mkdir -p "$DATA/docs"
NDOCS=0
json_run() {
  local want=$1 expr=True rc=0
  shift
  if [ "$1" != -- ]; then expr=$1; shift; fi
  shift
  DOC=$("$@" 2>"$DATA/err") || rc=$?
  [ "$rc" = "$want" ] || die "'$*' exited $rc, expected $want (stderr: $(cat "$DATA/err"))"
  NDOCS=$((NDOCS + 1))
  printf '%s' "$DOC" >"$DATA/docs/$NDOCS.out"
  printf '%s' "$expr" >"$DATA/docs/$NDOCS.expr"
  printf '%s' "$*" >"$DATA/docs/$NDOCS.cmd"
}
check_json_docs() {
  python3 - "$DATA/docs" "$NDOCS" <<'PY' || die "--json output (above)"
import json, sys
d, n, bad = sys.argv[1], int(sys.argv[2]), 0
for i in range(1, n + 1):
    read = lambda ext: open(f"{d}/{i}.{ext}", encoding="utf-8").read()
    out, expr, cmd = read("out"), read("expr"), read("cmd")
    try:
        o = json.loads(out)  # one document: a second one is "Extra data"
        ok = eval(expr)
    except Exception as e:
        ok = f"{type(e).__name__}: {e}"
    if ok is not True:
        bad += 1
        print(f"cli_smoke: '{cmd}' printed {out!r}: not one JSON document where {expr} ({ok})", file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
# json_error EXIT CODE -- command...: one {"error":{"code","message"}} document,
# and the human message on stderr.
json_error() {
  local want=$1 code=$2
  shift 3
  json_run "$want" 'list(o) == ["error"] and o["error"]["code"] == "'"$code"'" and len(o["error"]["message"]) > 0' -- "$@"
  [ -s "$DATA/err" ] || die "'$*': nothing on stderr"
}
json_run 0 -- hb org create jorg --json
json_run 0 -- hb org list --json
json_run 0 -- hb plugin create --org jorg jplug --json
json_run 0 -- hb plugin list --json
json_run 0 -- hb plugin update --org jorg jplug --origins "" --json
json_run 0 -- hb token create --org jorg --plugin jplug --json
JTOK=$(sed -n 's/.*"id":"\([0-9a-f-]*\)".*/\1/p' <<<"$DOC")
json_run 0 'len(o["tokens"]) == 1' -- hb token list --org jorg --plugin jplug --json
json_run 0 -- hb token revoke "$JTOK" --json
json_run 0 -- hb connection-token create --org jorg --plugin jplug --event $EVENT --session $SESSION --json
json_run 0 'len(o["admin_token_sha256"]) == 64 and o["token"].startswith("hba_")' -- "$BIN" admin-token create --json
json_run 0 'o["name"] == "hubbub"' -- "$BIN" version --json
json_run 0 'o["usage"].startswith("usage: hubbub token create")' -- "$BIN" token create --help --json
json_error 1 already_exists -- hb org create jorg --json
json_error 1 not_found -- hb plugin list --org nope --json
json_error 1 not_found -- hb token create --org jorg --plugin nope --json
json_error 1 not_found -- hb token revoke 00000000-0000-4000-8000-000000000000 --json
json_error 2 usage -- hb token revoke nope --json
json_error 2 usage -- hb org list --bogus --json
json_error 2 usage -- hb org create --json
json_error 2 usage -- hb connection-token create --org jorg --plugin jplug --event $EVENT --json
json_error 2 usage -- "$BIN" frobnicate --json
json_error 2 usage -- "$BIN" token --json
json_error 2 usage -- "$BIN" serve --json
json_error 1 store_error -- "$BIN" org list --data /dev/null/nope --json
json_error 1 invalid_config -- env HUBBUB_THREADS=lots "$BIN" org list --data "$DATA" --json
grep -q 'HUBBUB_THREADS' "$DATA/err" || die "the bad variable is not named: $(cat "$DATA/err")"
json_error 1 invalid_config -- "$BIN" org list --config /nonexistent.json --json

# --- connection-token create: the token alone on stdout, the rest on stderr
OUT=$(hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION 2>"$DATA/err")
[ "$(wc -l <<<"$OUT")" = 1 ] || die "connection-token create printed more than the token: '$OUT'"
[[ "$OUT" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] || die "not a JWT: '$OUT'"
grep -q expires "$DATA/err" || die "the expiry is not on stderr"

# --- listings show names beside ids
LIST=$(hb token list)
grep -Eq "^[0-9a-f-]{36} +acme +polls " <<<"$LIST" || die "token list shows no org/plugin names: $LIST"
grep -q "ORGANIZATION" <<<"$LIST" || die "token list header"
grep -Eq "^[0-9a-f-]{36} +acme " <<<"$(hb plugin list)" || die "plugin list shows no org name"
json_run 0 '("acme", "polls") in {(t["organization_name"], t["plugin_name"]) for t in o["tokens"]}' -- hb token list --json
json_run 0 'o["plugins"][0]["organization_name"] == "acme"' -- hb plugin list --org acme --json

# --- the data directory from the environment and the config file; --data wins
HAS_ACME='"acme" in [x["name"] for x in o["organizations"]]'
json_run 0 "$HAS_ACME" -- env HUBBUB_DATA="$DATA" "$BIN" org list --json
json_run 0 "$HAS_ACME" -- env HUBBUB_DATA_DIR="$DATA" "$BIN" org list --json
printf '{"data_dir":"%s"}' "$DATA" >"$DATA/cfg.json"
json_run 0 "$HAS_ACME" -- env HUBBUB_CONFIG="$DATA/cfg.json" "$BIN" org list --json
json_run 0 "$HAS_ACME" -- "$BIN" org list --config "$DATA/cfg.json" --json
json_run 0 "$HAS_ACME" -- env HUBBUB_DATA="$DATA/other" "$BIN" org list --data "$DATA" --json
# A misspelt variable gets a hint on stderr; stdout stays one document.
json_run 0 -- env HUBBUB_DATA_DIRR=x "$BIN" org list --data "$DATA" --json
grep -q "HUBBUB_DATA_DIRR is not a hubbub setting (did you mean HUBBUB_DATA_DIR?)" "$DATA/err" ||
  die "no hint for a misspelt variable: $(cat "$DATA/err")"
check_json_docs
echo "cli_smoke: ok ($NDOCS JSON outputs checked)"
