#!/usr/bin/env bash
# `make bench`: hubbub side by side with nginx+nchan and uWebSockets.js.
#
#   bench/run.sh            the full run (W1..W4, C, the descriptor limit, wrk, presence,
#                           hubbub with 2 threads unpinned); ~25 min; writes
#                           bench/results/<date>.md and <date>.jsonl
#   bench/run.sh --smoke    tiny sizes, one repetition, < 2 min; proves the
#                           harness works (exit non-zero if it breaks). No
#                           timing assertions: it only checks that every run
#                           printed its JSON line and delivered messages.
#
# Environment: HB_BUILD (default build; hubbub and hb_loadgen come from there),
# BENCH_REPS (3), BENCH_DURATION (seconds per measurement, 5), BENCH_OUT
# (bench/results), BENCH_PEERS ("hubbub nchan uws"), BENCH_ONLY (an extended
# regex: only the measurements whose name matches, e.g. 'W1|W4-19k').
#
# Every server is fresh per measurement, on 127.0.0.1 only, pinned to core 0
# (taskset) while the generator runs on core 1; targets alternate within each
# repetition. Everything is bounded by timeout.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
BUILD=${HB_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
HB=$BUILD/hubbub
LG=$BUILD/hb_loadgen
[ -x "$HB" ] || { echo "bench: $HB missing (make build)"; exit 1; }
[ -x "$LG" ] || { echo "bench: $LG missing (make build)"; exit 1; }
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DURATION:-5}
PEERS=${BENCH_PEERS:-hubbub nchan uws}
OUT=${BENCH_OUT:-bench/results}
NCPU=$(nproc)
SRV_CPU=0
GEN_CPU=$((NCPU > 1 ? 1 : 0))
[ $SMOKE = 1 ] && { REPS=1; DUR=1; }

TMP=$(mktemp -d /tmp/hb-bench-run.XXXXXX)
SRV_PID=""
SRV_CPU_PID=""
HOLD_PID=""
stop_server() {
  [ -n "$HOLD_PID" ] && { kill "$HOLD_PID" 2>/dev/null; wait "$HOLD_PID" 2>/dev/null; HOLD_PID=""; }
  if [ -n "$SRV_PID" ]; then
    kill -TERM "$SRV_PID" 2>/dev/null
    for _ in $(seq 1 80); do kill -0 "$SRV_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=""
  fi
}
cleanup() { stop_server; rm -rf "$TMP"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ $SMOKE = 0 ]; then
  mkdir -p "$OUT"
  STAMP=$(date -u +%Y-%m-%d)
  JSONL=$OUT/$STAMP.jsonl
  : > "$JSONL"
else
  JSONL=$TMP/smoke.jsonl
fi
FAIL=0
PORT=$((20000 + RANDOM % 20000))

# --- peers availability ---------------------------------------------------------
have_nchan=0; have_uws=0
[ -x /usr/sbin/nginx ] && [ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] && have_nchan=1
node -e "require('$REPO/node_modules/uwebsockets')" 2>/dev/null && have_uws=1
want() { # target is asked for and available
  case " $PEERS " in *" $1 "*) ;; *) return 1 ;; esac
  case $1 in nchan) [ $have_nchan = 1 ] ;; uws) [ $have_uws = 1 ] ;; *) true ;; esac
}
for p in nchan uws; do
  case " $PEERS " in *" $p "*) want $p || echo "bench: $p is not installed: skipped (scripts/install-deps.sh all)";; esac
done

# --- hubbub data: one org, plugin, API token and 20 room tokens, copied per run --
SEED=$TMP/seed
"$HB" org create bench --data "$SEED" --json >/dev/null || exit 1
"$HB" plugin create --org bench p --data "$SEED" --json > "$TMP/plugin.json" || exit 1
API_TOKEN=$("$HB" token create --org bench --plugin p --data "$SEED" --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$API_TOKEN" ] || { echo "bench: no API token"; exit 1; }
TOKENS=$TMP/tokens.txt
: > "$TOKENS"
for i in $(seq 0 19); do
  ev=$(cat /proc/sys/kernel/random/uuid); se=$(cat /proc/sys/kernel/random/uuid)
  t=$("$HB" connection-token create --org bench --plugin p --event "$ev" --session "$se" \
      --user "u$i" --ttl 7200 --data "$SEED" --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
  [ -n "$t" ] || { echo "bench: no connection token"; exit 1; }
  echo "$ev $se $t" >> "$TOKENS"
done
read -r EV0 SE0 _ < "$TOKENS"
MAXCONN=19900
[ $SMOKE = 1 ] && MAXCONN=60
# Benchmarks measure fan-out, not the abuse limits: publish rates unlimited,
# room for the descriptor-limit run.
cat > "$TMP/hubbub.json" <<JSON
{"conn_publish_rate": 0, "token_publish_rate": 0, "max_connections": $MAXCONN,
 "log_level": "warn"}
JSON
# The same without the fan-out flush window, to show what the window buys.
sed 's/"log_level"/"flush_interval_ms": 0, "log_level"/' "$TMP/hubbub.json" > "$TMP/hubbub-flush0.json"
HB_CONFIG=$TMP/hubbub.json
VARIANT=""

wait_port() {
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$SRV_PID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_server TARGET [threads]: fresh server on a new port; sets SRV_PID
# (what we stop) and SRV_CPU_PID (whose /proc CPU and RSS are measured).
start_server() {
  local target=$1 threads=${2:-1} pin="taskset -c $SRV_CPU"
  PORT=$((PORT + 1)); [ $PORT -gt 60000 ] && PORT=20001
  [ "$threads" != 1 ] && pin=""
  case $target in
    hubbub)
      rm -rf "$TMP/data"; cp -r "$SEED" "$TMP/data"
      $pin "$HB" serve --listen "127.0.0.1:$PORT" --data "$TMP/data" --threads "$threads" \
        --config "$HB_CONFIG" 2>>"$TMP/server.log" &
      SRV_PID=$!; SRV_CPU_PID=$SRV_PID ;;
    nchan)
      local d=$TMP/nginx; rm -rf "$d"; mkdir -p "$d"
      sed -e "s#@DIR@#$d#g" -e "s#@PORT@#$PORT#g" bench/peers/nchan.conf.in > "$d/nginx.conf"
      $pin /usr/sbin/nginx -c "$d/nginx.conf" -p "$d" -e "$d/error.log" 2>>"$TMP/server.log" &
      SRV_PID=$! ;;
    uws)
      $pin node bench/peers/uws.mjs "$PORT" 2>>"$TMP/server.log" &
      SRV_PID=$!; SRV_CPU_PID=$SRV_PID ;;
  esac
  if ! wait_port "$PORT"; then
    echo "bench: $target did not start"; tail -5 "$TMP/server.log"; stop_server; return 1
  fi
  if [ "$target" = nchan ]; then
    # measure the one worker, not the idle master
    SRV_CPU_PID=$(ps --ppid "$SRV_PID" -o pid= | head -1 | tr -d ' ')
  fi
  return 0
}

# measure NAME TARGET THREADS LOADGEN-ARGS...: one fresh server, one loadgen run,
# one JSON line (tagged with name, rep, threads) appended to $JSONL.
measure() {
  local name=$1 target=$2 threads=$3; shift 3
  [[ $name =~ ^(${BENCH_ONLY:-.*})$ ]] || return 0
  start_server "$target" "$threads" || { FAIL=1; return 1; }
  local line gen="taskset -c $GEN_CPU"
  [ "$threads" != 1 ] && gen=""
  line=$(timeout 180 $gen "$LG" --target "$target" --port "$PORT" --pid "$SRV_CPU_PID" \
         --tokens "$TOKENS" --api-token "$API_TOKEN" --label "$name" "$@")
  local rc=$?
  stop_server
  [ -n "$line" ] || { echo "bench: $name $target: no output (rc $rc)"; FAIL=1; return 1; }
  line="{\"measure\":\"$name\",\"rep\":$REP,\"threads\":$threads,\"rc\":$rc,${VARIANT:+\"variant\":\"$VARIANT\",}${line#\{}"
  echo "$line" >> "$JSONL"
  echo "  $name $target${threads:+ t$threads} rep $REP: rc $rc ${line:0:220}..."
  [ $rc = 0 ] || { echo "bench: $name $target failed (rc $rc)"; FAIL=1; }
  return 0
}

# wrk_measure NAME TARGET: W3 with wrk; 10 subscribers held by hb_loadgen.
wrk_measure() {
  local name=$1 target=$2 path body auth=""
  [[ $name =~ ^(${BENCH_ONLY:-.*})$ ]] || return 0
  command -v wrk >/dev/null || { echo "bench: wrk missing: skipped"; return 0; }
  start_server "$target" 1 || { FAIL=1; return 1; }
  taskset -c $GEN_CPU "$LG" --target "$target" --port "$PORT" --workload idle --rooms 1 --subs 10 \
    --tokens "$TOKENS" --hold $((DUR + 3)) >/dev/null &
  HOLD_PID=$!
  sleep 1.5
  if [ "$target" = hubbub ]; then
    path=/api/v1/publish; auth=$API_TOKEN
    body="{\"scope\":{\"type\":\"session\",\"event_id\":\"$EV0\",\"session_id\":\"$SE0\"},\"payload\":{\"event\":{\"eventName\":\"b\",\"data\":{\"s\":1,\"t\":1,\"p\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}}}"
  else
    path=/pub/r0; body='{"s":1,"t":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}'
  fi
  local c0 c1 line
  c0=$(awk '{print $14+$15}' "/proc/$SRV_CPU_PID/stat" 2>/dev/null)
  line=$(HB_WRK_PATH=$path HB_WRK_BODY=$body HB_WRK_AUTH=$auth timeout 60 taskset -c $GEN_CPU \
         wrk -t1 -c32 -d"${DUR}s" -s bench/wrk-publish.lua "http://127.0.0.1:$PORT" | grep '^{"tool"')
  c1=$(awk '{print $14+$15}' "/proc/$SRV_CPU_PID/stat" 2>/dev/null)
  stop_server
  [ -n "$line" ] || { echo "bench: $name $target: wrk printed nothing"; FAIL=1; return 1; }
  local cpu_s; cpu_s=$(awk -v a="$c0" -v b="$c1" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f",(b-a)/hz}')
  line="{\"measure\":\"$name\",\"rep\":$REP,\"threads\":1,\"target\":\"$target\",\"server_cpu_s\":$cpu_s,${line#\{}"
  echo "$line" >> "$JSONL"
  echo "  $name $target rep $REP: ${line:0:200}..."
}

# --- presence (issue 12): hubbub only ---------------------------------------------
# presence_measure NAME LOADGEN-ARGS...: the presence workload of hb_loadgen in
# room 0, members' tokens minted by the generator with the plugin's secret.
presence_measure() {
  local name=$1; shift
  local org plugin secret
  org=$(sed -n 's/.*"organization_id":"\([^"]*\)".*/\1/p' "$TMP/plugin.json")
  plugin=$(sed -n 's/.*"id":"\([^"]*\)","name".*/\1/p' "$TMP/plugin.json")
  secret=$(sed -n 's/.*"signing_secret":"\([^"]*\)".*/\1/p' "$TMP/plugin.json")
  measure "$name" hubbub 1 --workload presence --rooms 1 --secret "$secret" --org "$org" --plugin "$plugin" "$@"
}
# Memory per present member (slope 5,000 -> 10,000, and against the same
# connections all of one user), the server CPU for 10,000 joins, and what an
# observer receives per second while 1 % of the room changes every second:
# flat from 1,000 to 10,000 members (one message per interval, at most
# presence_list_max members listed).
presence_block() {
  want hubbub || return 0
  presence_measure P-1k --subs 1000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-5k --subs 5000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-10k --subs 10000 --observers 10 --churn 1 --duration "$DUR"
  presence_measure P-10k-one-user --subs 10000 --observers 10 --churn 1 --duration "$DUR" --distinct 0
}

# targets in an order that alternates from one repetition to the next
order() {
  local list=() t
  for t in hubbub nchan uws; do want $t && list+=("$t"); done
  local n=${#list[@]} i
  for ((i = 0; i < n; i++)); do echo "${list[$(((i + REP) % n))]}"; done
}

echo "bench: $(date -u '+%F %T') UTC, reps $REPS, $DUR s per measurement, peers: $(REP=0 order | tr '\n' ' ')"
if [ $SMOKE = 1 ]; then
  REP=0
  for t in $(order); do
    measure smoke-W1 "$t" 1 --workload fanout --rooms 1 --subs 20 --inflight 4 --duration "$DUR"
    measure smoke-W2 "$t" 1 --workload fanout --rooms 2 --subs 5 --pub all --per-conn-rate 2 --duration "$DUR"
    measure smoke-W3 "$t" 1 --workload http --rooms 1 --subs 5 --http-conns 2 --duration "$DUR"
    wrk_measure smoke-W3-wrk "$t"
    measure smoke-W4 "$t" 1 --workload idle --rooms 1 --subs 50
    measure smoke-C "$t" 1 --workload connect --rooms 1 --subs 50 --window 16
  done
  want hubbub && VARIANT="subscribe at upgrade" measure smoke-C hubbub 1 --workload connect --rooms 1 --subs 50 --window 16 --subscribe upgrade
  # the smoke server allows 60 connections: 60 held, the 61st refused
  want hubbub && measure smoke-limit hubbub 1 --workload limit --rooms 1 --subs 60 --window 16
  want hubbub && presence_measure smoke-P --subs 40 --observers 2 --churn 5 --duration 2
  lines=$(wc -l < "$JSONL")
  echo "bench smoke: $lines JSON lines"
  # every line parses and every delivery run delivered something
  node -e '
    const fs = require("fs");
    let bad = 0;
    for (const l of fs.readFileSync(process.argv[1], "utf8").trim().split("\n")) {
      const j = JSON.parse(l);
      const ok = j.tool === "wrk" ? j.requests > 0 && j.non2xx === 0 : j.rc === 0;
      if (!ok) { console.error("bench smoke: failed:", l); bad++; }
    }
    process.exit(bad ? 1 : 0);' "$JSONL" || FAIL=1
  exit $FAIL
fi

# --- the full run ------------------------------------------------------------------
W1="--workload fanout --rooms 1 --duration $DUR"
for REP in $(seq 1 "$REPS"); do
  echo "bench: repetition $REP of $REPS"
  for t in $(order); do
    measure W1-1k-if1 "$t" 1 $W1 --subs 1000 --inflight 1
    measure W1-1k-if32 "$t" 1 $W1 --subs 1000 --inflight 32
    measure W1-5k-if1 "$t" 1 $W1 --subs 5000 --inflight 1
    measure W1-5k-if32 "$t" 1 $W1 --subs 5000 --inflight 32
    measure W1-5k-200 "$t" 1 $W1 --subs 5000 --rate 200
    measure W2 "$t" 1 --workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 2 --duration "$DUR"
    measure W3 "$t" 1 --workload http --rooms 1 --subs 10 --http-conns 32 --duration "$DUR"
    wrk_measure W3-wrk "$t"
    measure W4-10k "$t" 1 --workload idle --rooms 1 --subs 10000
    measure W4-19k "$t" 1 --workload idle --rooms 1 --subs 19000
    measure C "$t" 1 --workload connect --rooms 1 --subs 10000 --window 256
  done
  # hubbub with 2 I/O threads, server and generator unpinned
  if want hubbub; then
    measure W1-5k-if32 hubbub 2 $W1 --subs 5000 --inflight 32
    measure W2 hubbub 2 --workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 2 --duration "$DUR"
    measure W3 hubbub 2 --workload http --rooms 1 --subs 10 --http-conns 32 --duration "$DUR"
    # hubbub, one pinned thread, without the flush window
    HB_CONFIG=$TMP/hubbub-flush0.json VARIANT="flush_interval_ms 0"
    measure W1-5k-200 hubbub 1 $W1 --subs 5000 --rate 200
    measure W2 hubbub 1 --workload fanout --rooms 20 --subs 100 --pub all --per-conn-rate 2 --duration "$DUR"
    HB_CONFIG=$TMP/hubbub.json VARIANT=""
    # hubbub, one pinned thread, subscribing at the upgrade (?subscribe=) as
    # the nchan and uWS peers do, instead of with a subscribe message
    VARIANT="subscribe at upgrade"
    measure C hubbub 1 --workload connect --rooms 1 --subs 10000 --window 256 --subscribe upgrade
    VARIANT=""
  fi
  presence_block
done
# the descriptor limit: 19,900 held, the next refused, the server unharmed
REP=1
want hubbub && measure limit-19900 hubbub 1 --workload limit --rooms 1 --subs 19900 --window 256
node bench/report.mjs "$JSONL" > "$OUT/$STAMP.md" || FAIL=1
echo "bench: wrote $JSONL and $OUT/$STAMP.md"
exit $FAIL
