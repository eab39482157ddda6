# bench/seed.sh, sourced by bench/run.sh and bench/profile.sh: hubbub's data for
# a benchmark. Needs HB (the binary), SEED (a new data directory), TOKENS (a
# file), TMP and MAXCONN; creates one org, plugin ($TMP/plugin.json: its id,
# organization and signing secret, for the presence rows) and API token (API_TOKEN) and
# 20 rooms, one line "event_id session_id connection_token" each in $TOKENS
# (EV0, SE0: the first), and $TMP/hubbub.json, the bench configuration.
# Returns non-zero, having said why, if the CLI fails.
# shellcheck shell=bash
"$HB" init --data "$SEED" >/dev/null || return 1
"$HB" org create bench --data "$SEED" --json >/dev/null || return 1
"$HB" plugin create --org bench p --data "$SEED" --json > "$TMP/plugin.json" || return 1
API_TOKEN=$("$HB" token create --org bench --plugin p --data "$SEED" --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$API_TOKEN" ] || { echo "bench: no API token"; return 1; }
: > "$TOKENS"
for i in $(seq 0 19); do
  ev=$(cat /proc/sys/kernel/random/uuid); se=$(cat /proc/sys/kernel/random/uuid)
  t=$("$HB" connection-token create --org bench --plugin p --event "$ev" --session "$se" \
      --user "u$i" --ttl 7200 --data "$SEED" --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  [ -n "$t" ] || { echo "bench: no connection token"; return 1; }
  echo "$ev $se $t" >> "$TOKENS"
done
read -r EV0 SE0 _ < "$TOKENS"
# Benchmarks measure fan-out, not the abuse limits: publish rates unlimited,
# room for the descriptor-limit run.
cat > "$TMP/hubbub.json" <<JSON
{"conn_publish_rate": 0, "token_publish_rate": 0, "max_connections": $MAXCONN,
 "log_level": "warn"}
JSON
