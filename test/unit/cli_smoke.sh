#!/usr/bin/env bash
# cli_smoke.sh [BIN] - the admin commands end to end, in a fresh data directory.
# BIN defaults to $HUBBUB_BIN, then build/hubbub. Exits non-zero on the first
# failure and says which check failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-${HUBBUB_BIN:-build/hubbub}}
DATA=$(mktemp -d /tmp/hb_cli_smoke.XXXXXX)
CHK=$(mktemp -d /tmp/hb_cli_smoke_out.XXXXXX) # outputs kept for the checks: not in DATA, which must hold no secret
trap 'rm -rf "$DATA" "$CHK"' EXIT
EVENT=11111111-2222-4333-8444-555555555555
SESSION=66666666-7777-4888-9999-aaaaaaaaaaaa
UUID_RE='^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$'

hb() { "$BIN" "$@" --data "$DATA"; }
die() { echo "cli_smoke: FAIL: $*" >&2; exit 1; }
# expect_exit CODE STDERR_SUBSTRING -- command...
expect_exit() {
  local code=$1 msg=$2 rc=0 err
  shift 3
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = "$code" ] || die "'$*' exited $rc, expected $code ($err)"
  [[ "$err" == *"$msg"* ]] || die "'$*' said '$err', expected '$msg'"
}
# JSON is checked in one python3 at the end (check_json_docs), not one per
# check: python's start-up is what this script would otherwise spend its
# time on (minutes under ASan on a loaded machine).
# json_doc DOC PY_EXPR WHAT: DOC must be exactly one JSON document and PY_EXPR
# over it (as o) true.
mkdir -p "$CHK/docs"
NDOCS=0
json_doc() {
  NDOCS=$((NDOCS + 1))
  printf '%s' "$1" >"$CHK/docs/$NDOCS.out"
  printf '%s' "$2" >"$CHK/docs/$NDOCS.expr"
  printf '%s' "$3" >"$CHK/docs/$NDOCS.cmd"
}
# json_run EXPECTED_EXIT [PY_EXPR] -- command...: runs it and checks the exit
# code now, the output (json_doc) at the end. Leaves the output in $DOC.
json_run() {
  local want=$1 expr=True rc=0
  shift
  if [ "$1" != -- ]; then expr=$1; shift; fi
  shift
  DOC=$("$@" 2>"$CHK/err") || rc=$?
  [ "$rc" = "$want" ] || die "'$*' exited $rc, expected $want (stderr: $(cat "$CHK/err"))"
  json_doc "$DOC" "$expr" "$*"
}
# field KEY <<<JSON: a string or number member of our compact output, now.
field() { sed -n 's/.*"'"$1"'":"\{0,1\}\([^",}]*\).*/\1/p'; }
check_json_docs() {
  python3 - "$CHK/docs" "$NDOCS" <<'PY' || die "--json output (above)"
import json, sys
d, n, bad = sys.argv[1], int(sys.argv[2]), 0
for i in range(1, n + 1):
    read = lambda ext, errors="strict": open(f"{d}/{i}.{ext}", encoding="utf-8", errors=errors).read()
    out, expr, cmd = read("out", "replace"), read("expr"), read("cmd", "replace")
    if "\ufffd" in out:
        out = None  # not UTF-8: not a JSON document
    try:
        o = json.loads(out)  # one document: a second one is "Extra data"; None: TypeError
        ok = eval("(" + expr + ")")
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
  [ -s "$CHK/err" ] || die "'$*': nothing on stderr"
}

# --- the store: only `init` (and `serve`) create one
expect_exit 1 "hubbub init" -- hb org list
expect_exit 1 "no store" -- hb org create acme
expect_exit 1 "no store" -- hb token list
expect_exit 1 "no store" -- "$BIN" org list --data "$DATA/not-there"
[ ! -e "$DATA/hubbub.db" ] || die "an admin command created a store"
[ ! -e "$DATA/not-there" ] || die "an admin command created a data directory"
# --json is never taken as --data's directory (a slip that once committed
# ./--json/hubbub.db): a usage error, and nothing created
ABS_BIN=$(realpath "$BIN")
for cmd in "org list" "init" "serve"; do
  # shellcheck disable=SC2086 # the command's words
  (cd "$DATA" && expect_exit 2 "option '--data' needs a value" -- "$ABS_BIN" $cmd --data --json)
done
[ ! -e "$DATA/--json" ] || die "--data --json created a directory named --json"
hb init --json | grep -q '"created":true' || die "init creates the store"
[ -f "$DATA/hubbub.db" ] || die "init made no hubbub.db"
[ "$(stat -c %a "$DATA/hubbub.db")" = 600 ] || die "the store is not 0600"
hb init --json | grep -q '"created":false' || die "init again: the store is already there"
"$BIN" init --data "$DATA/new/dir" >/dev/null || die "init creates the data directory"
[ "$(stat -c %a "$DATA/new/dir")" = 700 ] || die "the data directory is not 0700"
rm -rf "$DATA/new"

# --- organizations
json_run 0 'o["name"] == "acme"' -- hb org create acme --json
ORG=$(field id <<<"$DOC")
[[ $ORG =~ $UUID_RE ]] || die "org id '$ORG'"
expect_exit 1 "organization name 'acme' already exists" -- hb org create acme
hb org create globex --json >/dev/null
json_run 0 '[x["name"] for x in o["organizations"]] == ["acme", "globex"] and all(isinstance(x["created_at"], int) for x in o["organizations"])' -- hb org list --json

# --- plugins
json_run 0 'o["organization_id"] == "'"$ORG"'" and o["organization_name"] == "acme"' -- \
  hb plugin create --org acme polls --origins "https://app.example.com" --json
PLUGIN=$(field id <<<"$DOC")
[[ $PLUGIN =~ $UUID_RE ]] || die "plugin id"
[[ "$(field signing_secret <<<"$DOC")" =~ ^hbs_[A-Za-z0-9_-]{43}$ ]] || die "signing secret shape"
expect_exit 1 "already exists" -- hb plugin create --org acme polls
hb plugin create --org "$ORG" other --json >/dev/null # org by UUID
hb plugin create --org globex polls --json >/dev/null  # same name, other org
json_run 0 'len(o["plugins"]) == 2' -- hb plugin list --org acme --json
json_run 0 'len(o["plugins"]) == 3' -- hb plugin list --json
hb plugin list --json | grep -q signing_secret && die "plugin list shows a secret"
expect_exit 1 "org 'nope' not found" -- hb plugin list --org nope
json_run 0 'o["plugins"][0]["allowed_origins"] == "https://app.example.com"' -- hb plugin list --org acme --json
hb plugin update --org acme polls --origins "" --json >/dev/null
json_run 0 'o["plugins"][0]["allowed_origins"] == ""' -- hb plugin list --org acme --json
expect_exit 2 "no path" -- hb plugin update --org acme polls --origins "https://a.example/x"

# --- API tokens
json_run 0 'o["plugin_id"] == "'"$PLUGIN"'" and o["organization_id"] == "'"$ORG"'" and o["name"] == "backend"' -- \
  hb token create --org acme --plugin polls --name backend --json
TOKEN=$(field token <<<"$DOC")
TOKEN_ID=$(field id <<<"$DOC")
[[ $TOKEN =~ ^hbk_[A-Za-z0-9_-]{43}$ ]] || die "token shape '$TOKEN'"
hb token create --org acme --plugin "$PLUGIN" | grep -qi "shown once" || die "human text must say shown once"
expect_exit 1 "already exists" -- hb token create --org acme --plugin polls --name backend
expect_exit 1 "plugin 'nope' not found" -- hb token create --org acme --plugin nope
grep -rqF -e "${TOKEN#hbk_}" "$DATA" && die "the token is stored in clear"
json_run 0 'len(o["tokens"]) == 2 and [t["revoked_at"] for t in o["tokens"]] == [None, None]' -- hb token list --json
grep -q hash <<<"$DOC" && die "token list shows hashes"
json_run 0 'o["revoked"] is True' -- hb token revoke "$TOKEN_ID" --json
json_run 0 'isinstance([t for t in o["tokens"] if t["id"] == "'"$TOKEN_ID"'"][0]["revoked_at"], int)' -- hb token list --json
expect_exit 1 "not found" -- hb token revoke 00000000-0000-4000-8000-000000000000
expect_exit 2 "not a UUID" -- hb token revoke nope

# --- connection tokens
json_run 0 -- hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION \
  --user alice --scopes session,event --ttl 600 --json
NOW=$(date +%s)
EXP=$(field expires_at <<<"$DOC")
[ $((EXP - NOW)) -ge 590 ] && [ $((EXP - NOW)) -le 601 ] || die "expires_at $EXP vs now $NOW"
# The claims: the JWT's middle part, base64url without padding.
P=$(field token <<<"$DOC" | cut -d. -f2 | tr -- '-_' '+/')
while [ $((${#P} % 4)) != 0 ]; do P="$P="; done
json_doc "$(base64 -d <<<"$P")" 'o["organization_id"] == "'"$ORG"'" and o["plugin_id"] == "'"$PLUGIN"'" and
  o["event_id"] == "'"$EVENT"'" and o["sub"] == "alice" and o["scopes"] == ["session", "event"]' "the claims"
json_run 0 -- hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --json
[ $(($(field expires_at <<<"$DOC") - NOW)) -ge 3590 ] || die "default ttl"
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
  out=$("$@" 2>"$CHK/err") || rc=$?
  [ "$rc" = 0 ] || die "'$*' exited $rc"
  [ ! -s "$CHK/err" ] || die "'$*' wrote to stderr: $(cat "$CHK/err")"
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
grep -q 'HUBBUB_THREADS' "$CHK/err" || die "the bad variable is not named: $(cat "$CHK/err")"
json_error 1 invalid_config -- "$BIN" org list --config /nonexistent.json --json

# Text that is not UTF-8 cannot be a name (names travel in JSON); an echo of
# it in an error still makes a JSON document.
expect_exit 2 "must be UTF-8" -- hb org create $'bad\xffname'
expect_exit 2 "printable ASCII" -- hb plugin create --org acme intl --origins $'https://b\xc3\xbccher.example'
expect_exit 2 "--user" -- hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --user $'a\tb'
json_error 1 not_found -- hb plugin list --org $'no\xffpe' --json

# --- connection-token create: the token alone on stdout, the rest on stderr
OUT=$(hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION 2>"$CHK/err")
[ "$(wc -l <<<"$OUT")" = 1 ] || die "connection-token create printed more than the token: '$OUT'"
[[ "$OUT" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]] || die "not a JWT: '$OUT'"
grep -q expires "$CHK/err" || die "the expiry is not on stderr"

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
grep -q "HUBBUB_DATA_DIRR is not a hubbub setting (did you mean HUBBUB_DATA_DIR?)" "$CHK/err" ||
  die "no hint for a misspelt variable: $(cat "$CHK/err")"
check_json_docs
echo "cli_smoke: ok ($NDOCS JSON outputs checked)"
