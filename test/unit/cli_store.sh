#!/usr/bin/env bash
# cli_store.sh [BIN] - the store administration commands end to end: store
# locations, org/plugin delete, rotate-secret, user revoke, expiring tokens,
# export and import. Against SQLite by default; against PostgreSQL when run
# through test/pg-harness.sh (HB_PG_URI set: each store is a fresh database),
# where it also moves a SQLite store into PostgreSQL. Exits non-zero on the
# first failure and says which check failed.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-${HUBBUB_BIN:-build/hubbub}}
TMP=$(mktemp -d /tmp/hb_cli_store.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
EVENT=11111111-2222-4333-8444-555555555555
SESSION=66666666-7777-4888-9999-aaaaaaaaaaaa

die() { echo "cli_store: FAIL: $*" >&2; exit 1; }
j() { python3 -c "import json,sys; o=json.load(sys.stdin); v=($1); print(json.dumps(v) if not isinstance(v,str) else v)"; }
expect_exit() {
  local code=$1 msg=$2 rc=0 err
  shift 3
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  [ "$rc" = "$code" ] || die "'$*' exited $rc, expected $code ($err)"
  [[ "$err" == *"$msg"* ]] || die "'$*' said '$err', expected '$msg'"
}

# A fresh store location: a directory, or a new PostgreSQL database. (Called
# as $(new_store), in a subshell: the name cannot come from a counter.)
new_store() {
  local d
  d=$(mktemp -d "$TMP/s.XXXXXX")
  if [ -n "${HB_PG_URI:-}" ]; then
    "$HB_PG_HARNESS" createdb "$HB_PG_DIR" "cli_$(basename "$d" | tr -dc 'a-z0-9' | tr 'A-Z' 'a-z')_$$"
  else
    echo "$d"
  fi
}
STORE=$(new_store)
hb() { "$BIN" "$@" --store "$STORE"; }
echo "cli_store: backend $([ -n "${HB_PG_URI:-}" ] && echo postgresql || echo sqlite)"

# --- locations
expect_exit 2 "not both" -- "$BIN" org list --data "$TMP/x" --store "$TMP/y"
expect_exit 1 "unknown store location scheme 'mysql'" -- "$BIN" org list --store mysql://h/db
expect_exit 1 "malformed store location" -- "$BIN" org list --store sqlite:
expect_exit 3 "cannot connect to PostgreSQL at postgresql://u:***@127.0.0.1:1/db" -- \
  "$BIN" org list --store postgresql://u:hunter2@127.0.0.1:1/db
"$BIN" org create via-file --store "sqlite:$TMP/one.db" --json >/dev/null
[ -f "$TMP/one.db" ] || die "sqlite:FILE did not create the file"

# --- setup
ORG=$(hb org create acme --json | j 'o["id"]')
PL=$(hb plugin create --org acme polls --origins "https://a.example" --json)
PLUGIN=$(j 'o["id"]' <<<"$PL")
SECRET1=$(j 'o["signing_secret"]' <<<"$PL")
KID1=$(j 'o["signing_kid"]' <<<"$PL")
[[ $KID1 =~ ^[A-Za-z0-9_-]{8}$ ]] || die "kid shape '$KID1'"
[ "$(hb plugin list --org acme --json | j 'o["plugins"][0]["allowed_origins"]')" = "https://a.example" ] || die "origins"

# --- connection tokens carry the kid
CT=$(hb connection-token create --org acme --plugin polls --event $EVENT --session $SESSION --json | j 'o["token"]')
HDR=$(python3 -c "import base64,sys; s=sys.argv[1].split('.')[0]; print(base64.urlsafe_b64decode(s+'='*(-len(s)%4)).decode())" "$CT")
[ "$HDR" = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"$KID1\"}" ] || die "minted header '$HDR'"

# --- rotate-secret
expect_exit 2 "--retire-previous takes no --previous-ttl" -- hb plugin rotate-secret --org acme polls --retire-previous --previous-ttl 5
expect_exit 2 "--previous-ttl must be" -- hb plugin rotate-secret --org acme polls --previous-ttl -1
T0=$(date +%s)
ROT=$(hb plugin rotate-secret --org acme polls --previous-ttl 600 --json)
T1=$(date +%s)
SECRET2=$(j 'o["signing_secret"]' <<<"$ROT")
[[ $SECRET2 =~ ^hbs_ ]] && [ "$SECRET2" != "$SECRET1" ] || die "new secret"
[ "$(j 'o["previous_kid"]' <<<"$ROT")" = "$KID1" ] || die "previous kid"
RA=$(j 'o["previous_retire_at"]' <<<"$ROT")
[ "$RA" -ge $((T0 + 600)) ] && [ "$RA" -le $((T1 + 600)) ] || die "retire_at $RA (between $T0 and $T1 + 600)"
LIST=$(hb plugin list --json)
grep -q "$SECRET2" <<<"$LIST" && die "plugin list shows a secret"
[ "$(j 'o["plugins"][0]["previous_kid"]' <<<"$LIST")" = "$KID1" ] || die "list previous_kid"
hb plugin rotate-secret --org acme polls | grep -q "shown once" || die "human rotate text"
[ "$(hb plugin rotate-secret --org acme polls --retire-previous --json | j 'o["retired"]')" = true ] || die "retire"
[ "$(hb plugin rotate-secret --org acme polls --retire-previous --json | j 'o["retired"]')" = false ] || die "retire twice"
[ "$(hb plugin list --json | j 'o["plugins"][0]["previous_kid"]')" = null ] || die "previous gone"

# --- user revoke
R=$(hb user revoke --org acme --plugin polls "alice@example.com" --json)
[ "$(j 'o["user_id"]' <<<"$R")" = "alice@example.com" ] || die "revoke user"
RB=$(j 'o["revoked_before"]' <<<"$R")
[ "$RB" -ge "$T1" ] || die "revoked_before $RB"
expect_exit 1 "plugin 'nope' not found" -- hb user revoke --org acme --plugin nope alice
expect_exit 2 "missing USER_ID" -- hb user revoke --org acme --plugin polls

# --- expiring API tokens
T0=$(date +%s)
T=$(hb token create --org acme --plugin polls --name short --ttl 3600 --json)
T1=$(date +%s)
TOKEN=$(j 'o["token"]' <<<"$T")
EA=$(j 'o["expires_at"]' <<<"$T")
[ "$EA" -ge $((T0 + 3600)) ] && [ "$EA" -le $((T1 + 3600)) ] || die "expires_at $EA (between $T0 and $T1 + 3600)"
[ "$(hb token create --org acme --plugin polls --name forever --json | j 'o["expires_at"]')" = null ] || die "no expiry"
expect_exit 2 "--ttl must be" -- hb token create --org acme --plugin polls --ttl 0
[ "$(hb token list --json | j '[t["expires_at"] is None for t in o["tokens"]]')" = '[false, true]' ] || die "token list expires_at"

# --- export / import
hb export --include-secrets --out "$TMP/full.json" 2>"$TMP/err"
[ "$(stat -c %a "$TMP/full.json")" = 600 ] || die "export file mode"
grep -q "$SECRET2" "$TMP/full.json" && die "an old secret in the export" || true
grep -q "${TOKEN#hbk_}" "$TMP/full.json" && die "a token in clear in the export"
hb export --json 2>"$TMP/err" | j 'o["includes_secrets"]' | grep -q false || die "export without secrets"
grep -q "without signing secrets" "$TMP/err" || die "the export must say what is missing"
[ "$(hb export --json 2>/dev/null | wc -l)" = 1 ] || die "export --json is one line"

TARGET=$(new_store)
IMP=$("$BIN" import "$TMP/full.json" --store "$TARGET" --json)
[ "$(j 'o["created"]["api_tokens"]' <<<"$IMP")" = 2 ] || die "import created ($IMP)"
[ "$(j 'o["new_signing_secrets"]' <<<"$IMP")" = 0 ] || die "import secrets"
IMP=$("$BIN" import "$TMP/full.json" --store "$TARGET" --json)
[ "$(j 'o["unchanged"]["plugins"]' <<<"$IMP")" = 1 ] || die "import again"
diff <(hb token list --json) <("$BIN" token list --store "$TARGET" --json) >/dev/null || die "token lists differ"
sed 's/"name": "acme"/"name": "acme", "colour": "red"/' "$TMP/full.json" >"$TMP/bad.json"
expect_exit 1 "/organizations/0/colour: unknown field" -- "$BIN" import "$TMP/bad.json" --store "$TARGET"
"$BIN" org create other --store "$TARGET" >/dev/null
sed 's/"name": "acme"/"name": "other"/' "$TMP/full.json" >"$TMP/clash.json"
expect_exit 1 "import refused, nothing changed: /organizations/0/" -- "$BIN" import "$TMP/clash.json" --store "$TARGET"
expect_exit 1 "not valid JSON" -- "$BIN" import /dev/null --store "$TARGET"
"$BIN" import - --store "$(new_store)" --json <"$TMP/full.json" | j 'o["imported"]' | grep -q true || die "import from stdin"

# Without secrets: new ones, and a warning saying so.
hb export >"$TMP/nosecrets.json" 2>/dev/null
"$BIN" import "$TMP/nosecrets.json" --store "$(new_store)" 2>"$TMP/err" >/dev/null
grep -q "got new ones" "$TMP/err" || die "import without secrets must warn"

if [ -n "${HB_PG_URI:-}" ]; then
  # SQLite to PostgreSQL, the move an operator makes.
  mkdir "$TMP/lite"
  "$BIN" org create moving --data "$TMP/lite" >/dev/null
  "$BIN" plugin create --org moving p --data "$TMP/lite" >/dev/null
  "$BIN" token create --org moving --plugin p --name t --data "$TMP/lite" >/dev/null
  "$BIN" export --include-secrets --out "$TMP/lite.json" --data "$TMP/lite"
  PGT=$(new_store)
  "$BIN" import "$TMP/lite.json" --store "$PGT" >/dev/null
  diff <("$BIN" token list --data "$TMP/lite" --json) <("$BIN" token list --store "$PGT" --json) >/dev/null ||
    die "SQLite and PostgreSQL token lists differ"
fi

# --- delete
expect_exit 2 "add --yes to confirm" -- hb plugin delete --org acme polls
expect_exit 2 "add --yes to confirm" -- hb org delete acme
[ "$(hb plugin delete --org acme polls --yes --json | j 'o["deleted"]')" = true ] || die "plugin delete"
[ "$(hb token list --json | j 'len(o["tokens"])')" = 0 ] || die "tokens went with the plugin"
expect_exit 1 "plugin 'polls' not found" -- hb plugin delete --org acme polls --yes
hb plugin create --org acme p2 --json >/dev/null
[ "$(hb org delete "$ORG" --yes --json | j 'o["name"]')" = acme ] || die "org delete by id"
[ "$(hb org list --json | j 'len(o["organizations"])')" = 0 ] || die "org gone"
[ "$(hb plugin list --json | j 'len(o["plugins"])')" = 0 ] || die "plugins went with the org"
expect_exit 1 "org 'acme' not found" -- hb org delete acme --yes

echo "cli_store: ok"
