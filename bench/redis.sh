#!/usr/bin/env bash
# bench/redis.sh: what Redis mode costs, in the terms of `make bench` (W1, W3).
#
#   bench/redis.sh            3 repetitions of each measurement below; one JSON
#                             line each (hb_loadgen's) to stdout and to
#                             bench/results/redis-<date>.jsonl
#   bench/redis.sh --smoke    tiny sizes, one repetition (proves the harness)
#
# Setups (fresh servers and a fresh redis-server per measurement, 127.0.0.1):
#   local    one node, no Redis (the in-process broker)
#   redis1   one node on Redis: publishes go through Redis and come back
#   redis2   two nodes on one Redis: subscribers on node A, publishers (HTTP,
#            and W1's publishing connection) on node B
# Measurements:
#   W1-1     fanout, 1 room x 1 subscriber, one publish in flight: the round
#            trip itself (publish to delivery), without fan-out work
#   W1-if1   fanout, 1 room x 1,000 subscribers, one publish in flight: latency
#   W1-if32  the same with 32 in flight: deliveries/s
#   W3       HTTP publishes on 32 keep-alive connections, 10 subscribers: req/s
#
# Environment: HB (the hubbub binary, default build/hubbub), LG (hb_loadgen,
# default build/hb_loadgen), BENCH_REPS (3), BENCH_DURATION (s, 5),
# BENCH_SETUPS ("local redis1 redis2"), BENCH_OUT (bench/results),
# BENCH_ONLY (an extended regex of measurement names, e.g. 'W1-1|W3'),
# BENCH_FLUSH_MS (flush_interval_ms of the nodes; 0 shows W1-1's round trip
# without the fan-out flush window, which otherwise sets its latency).
# Everything is bounded by timeout; nothing is pinned (2 nodes + Redis +
# the generator share the machine), so compare setups within one run.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
SMOKE=0
[ "${1:-}" = "--smoke" ] && SMOKE=1
HB=${HB:-$REPO/build/hubbub}
LG=${LG:-$REPO/build/hb_loadgen}
REPS=${BENCH_REPS:-3}
DUR=${BENCH_DURATION:-5}
SETUPS=${BENCH_SETUPS:-local redis1 redis2}
OUT=${BENCH_OUT:-bench/results}
SUBS=1000
[ $SMOKE = 1 ] && { REPS=1; DUR=1; SUBS=20; }
command -v redis-server >/dev/null || { echo "bench/redis: redis-server missing (scripts/install-deps.sh all)"; exit 1; }
[ -x "$HB" ] && [ -x "$LG" ] || { echo "bench/redis: $HB or $LG missing (make build)"; exit 1; }

TMP=$(mktemp -d /tmp/hb-bench-redis.XXXXXX)
PIDS=()
stop_all() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  PIDS=()
}
trap 'stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
if [ $SMOKE = 0 ]; then mkdir -p "$OUT"; JSONL=$OUT/redis-$(date -u +%Y-%m-%d).jsonl; else JSONL=$TMP/smoke.jsonl; fi
PORT=$((20000 + RANDOM % 20000))
next_port() { PORT=$((PORT + 1)); [ $PORT -gt 60000 ] && PORT=20001; }
wait_port() {
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  return 1
}

SEED=$TMP/seed
"$HB" org create bench --data "$SEED" --json >/dev/null || exit 1
"$HB" plugin create --org bench p --data "$SEED" --json >/dev/null || exit 1
API_TOKEN=$("$HB" token create --org bench --plugin p --data "$SEED" --json | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
TOKENS=$TMP/tokens.txt
ev=$(cat /proc/sys/kernel/random/uuid); se=$(cat /proc/sys/kernel/random/uuid)
"$HB" connection-token create --org bench --plugin p --event "$ev" --session "$se" --user u --ttl 7200 \
  --data "$SEED" --json | sed -n "s/.*\"token\":\"\([^\"]*\)\".*/$ev $se \1/p" > "$TOKENS"
[ -s "$TOKENS" ] && [ -n "$API_TOKEN" ] || { echo "bench/redis: no tokens"; exit 1; }

# start SETUP: sets SUB_PORT, PUB_PORT and NODE_PID (the subscribers' node).
start() {
  local setup=$1 url="" cfg=$TMP/hubbub.json
  rm -rf "$TMP/data"; cp -r "$SEED" "$TMP/data"
  if [ "$setup" != local ]; then
    next_port; local rport=$PORT
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --protected-mode no >/dev/null 2>&1 &
    PIDS+=($!)
    wait_port "$rport" || return 1
    url="redis://127.0.0.1:$rport"
  fi
  printf '{"conn_publish_rate":0,"token_publish_rate":0,"log_level":"warn"%s%s}\n' \
    "${url:+,\"redis_url\":\"$url\"}" "${BENCH_FLUSH_MS:+,\"flush_interval_ms\":$BENCH_FLUSH_MS}" > "$cfg"
  next_port; SUB_PORT=$PORT
  "$HB" serve --listen "127.0.0.1:$SUB_PORT" --data "$TMP/data" --threads 1 --config "$cfg" 2>>"$TMP/server.log" &
  NODE_PID=$!; PIDS+=($NODE_PID)
  wait_port "$SUB_PORT" || return 1
  PUB_PORT=$SUB_PORT
  if [ "$setup" = redis2 ]; then
    next_port; PUB_PORT=$PORT
    "$HB" serve --listen "127.0.0.1:$PUB_PORT" --data "$TMP/data" --threads 1 --config "$cfg" 2>>"$TMP/server.log" &
    PIDS+=($!)
    wait_port "$PUB_PORT" || return 1
  fi
}

FAIL=0
measure() {
  local name=$1 setup=$2 rep=$3; shift 3
  [[ $name =~ ^(${BENCH_ONLY:-.*})$ ]] || return 0
  start "$setup" || { echo "bench/redis: $setup did not start"; tail -5 "$TMP/server.log"; FAIL=1; stop_all; return; }
  local line
  line=$(timeout 120 "$LG" --target hubbub --port "$SUB_PORT" --pub-port "$PUB_PORT" --pid "$NODE_PID" \
    --tokens "$TOKENS" --api-token "$API_TOKEN" --label "$name-$setup" --duration "$DUR" "$@")
  local rc=$?
  stop_all
  [ -n "$line" ] || { echo "bench/redis: $name $setup: no output (rc $rc)"; FAIL=1; return; }
  line="{\"measure\":\"$name\",\"setup\":\"$setup\",\"rep\":$rep,\"rc\":$rc,${line#\{}"
  echo "$line" | tee -a "$JSONL"
  [ $rc = 0 ] || FAIL=1
}

for rep in $(seq 1 "$REPS"); do
  for setup in $SETUPS; do
    measure W1-1 "$setup" "$rep" --workload fanout --rooms 1 --subs 1 --inflight 1
    measure W1-if1 "$setup" "$rep" --workload fanout --rooms 1 --subs "$SUBS" --inflight 1
    measure W1-if32 "$setup" "$rep" --workload fanout --rooms 1 --subs "$SUBS" --inflight 32
    measure W3 "$setup" "$rep" --workload http --rooms 1 --subs 10 --http-conns 32
  done
done
[ $SMOKE = 0 ] && echo "bench/redis: results in $JSONL"
exit $FAIL
